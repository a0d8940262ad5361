"""Writes this folder: a tiny Fitabase export in the Kaggle "Fitbit Fitness Tracker Data" layout.

Two participants (Id 1503960366 in America/New_York, 2022484408 in
America/Chicago), US spring-forward day 2024-03-10 and fall-back day
2024-11-03, with the faults merged exports carry: a time in the skipped hour,
an impossible heart rate, an empty cell, an unparseable date, a line with an
extra column, a repeated sleep row, a conflicting intensity row, a sleep code
that is not 1/2/3, and the daily sleepDay summary. File names, headers and the
``M/D/YYYY h:mm:ss AM/PM`` time format follow the Fitabase *_merged.csv files.
``minuteStepsWide_merged.csv`` holds exactly the minutes of
``minuteStepsNarrow_merged.csv`` (so a test can compare the two).

Run from the repository root: ``python tests/sources/dummy_data/fitbit_fitabase/make_dummy.py``.
"""

from pathlib import Path

A, B = "1503960366", "2022484408"
HERE = Path(__file__).parent
DATA = HERE / "Fitabase Data 3.9.24-11.3.24"


def clock(day: str, hour24: int, minute: int, second: int = 0) -> str:
    """Fitabase time text: ``3/10/2024 1:05:00 AM`` (no zero padding of month, day, hour)."""
    ampm = "AM" if hour24 < 12 else "PM"
    h = hour24 % 12 or 12
    return f"{day} {h}:{minute:02d}:{second:02d} {ampm}"


def steps(hour24: int, minute: int) -> int:
    return (hour24 * 13 + minute * 7) % 50


def calories(hour24: int, minute: int) -> str:
    return f"{1.0 + hour24 * 0.1 + minute * 0.01:.4f}"


def write(name: str, lines: list[str]) -> None:
    (DATA / name).write_text("\n".join(lines) + "\n")


def main() -> None:
    DATA.mkdir(exist_ok=True)
    (HERE / "participants.csv").write_text(f"participant_id,tz\n{A},America/New_York\n{B},America/Chicago\n")
    d = "3/10/2024"
    write("heartrate_seconds_merged.csv", [
        "Id,Time,Value",
        f"{A},{clock(d, 1, 59, 50)},61",
        f"{A},{clock(d, 1, 59, 55)},62",
        f"{A},{clock(d, 3, 0, 0)},64",
        f"{A},{clock(d, 2, 30, 0)},63",          # skipped hour: nonexistent_local_time
        f"{A},{clock(d, 3, 0, 5)},255",          # out_of_range
        f"{A},{clock('11/3/2024', 1, 30, 0)},58",  # fall back: first 1:30 is EDT
        f"{A},{clock('11/3/2024', 1, 30, 0)},59",  # the repeat is EST, one hour later
        f"{B},{clock(d, 9, 0, 0)},70",
        f"{B},{clock(d, 9, 0, 5)},",             # missing_value
        f"{B},13/10/2024 9:00:10 AM,71",         # unparseable_time
        f"{B},{clock(d, 9, 0, 15)},72,1",        # extra column: malformed_line
    ])
    hours = {A: (1, 3), B: (9,)}
    narrow = ["Id,ActivityMinute,Steps"]
    wide = ["Id,ActivityHour," + ",".join(f"Steps{m:02d}" for m in range(60))]
    for pid, hs in hours.items():
        for h in hs:
            narrow += [f"{pid},{clock(d, h, m)},{steps(h, m)}" for m in range(60)]
            wide.append(f"{pid},{clock(d, h, 0)}," + ",".join(str(steps(h, m)) for m in range(60)))
    write("minuteStepsNarrow_merged.csv", narrow)
    write("minuteStepsWide_merged.csv", wide)
    cal = ["Id,ActivityHour," + ",".join(f"Calories{m:02d}" for m in range(60))]
    for h in (1, 2, 3):                           # hour 2 AM does not exist on this day: 60 quarantined minutes
        cal.append(f"{A},{clock(d, h, 0)}," + ",".join(calories(h, m) for m in range(60)))
    b = [calories(9, m) for m in range(60)]
    b[10], b[20] = "", "75.5"                     # an empty cell; 75.5 kcal in a minute is out of range
    cal.append(f"{B},{clock(d, 9, 0)}," + ",".join(b))
    write("minuteCaloriesWide_merged.csv", cal)
    write("minuteIntensitiesNarrow_merged.csv", [
        "Id,ActivityMinute,Intensity",
        f"{A},{clock(d, 1, 59)},0",
        f"{A},{clock(d, 3, 0)},1",
        f"{A},{clock(d, 3, 1)},4",                # out_of_range (0-3)
        f"{B},{clock(d, 9, 0)},2",
        f"{B},{clock(d, 9, 1)},3",
        f"{B},{clock(d, 9, 1)},2",                # same minute, other value: conflicting_duplicate (both)
    ])
    la, lb = "11380564589", "11380564590"
    write("minuteSleep_merged.csv", [
        "Id,date,value,logId",
        f"{A},{clock(d, 1, 57, 30)},2,{la}",
        f"{A},{clock(d, 1, 58, 30)},1,{la}",
        f"{A},{clock(d, 1, 59, 30)},1,{la}",
        f"{A},{clock(d, 3, 0, 30)},3,{la}",
        f"{A},{clock(d, 3, 1, 30)},1,{la}",
        f"{A},{clock(d, 3, 1, 30)},1,{la}",       # repeated row: exact_duplicate
        f"{A},{clock(d, 3, 2, 30)},0,{la}",       # not a Fitabase sleep code: minuteSleep.value_not_1_2_3
        f"{B},{clock(d, 21, 10, 30)},3,{lb}",
        f"{B},{clock(d, 21, 11, 30)},1,{lb}",
    ])
    write("sleepDay_merged.csv", [
        "Id,SleepDay,TotalSleepRecords,TotalMinutesAsleep,TotalTimeInBed",
        f"{A},{clock(d, 0, 0)},1,4,6",
        f"{B},{clock(d, 0, 0)},1,1,2",
    ])


if __name__ == "__main__":
    main()
