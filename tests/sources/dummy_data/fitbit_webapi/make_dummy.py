"""Writes this folder: Fitbit Web API responses as research apps save them, one folder per participant.

Shapes follow the Web API reference (dev.fitbit.com, "Get Activity Intraday by
Date", "Get Heart Rate Intraday by Date"): the daily series
``activities-<res>`` with string values, the intraday object
``activities-<res>-intraday`` with ``dataset``/``datasetInterval``/
``datasetType``, calories points carrying ``level`` and ``mets``, and heart
rate's daily ``value`` object with zones and ``restingHeartRate``.

``w01`` (America/New_York) spans the 2024-03-10 spring-forward night:
1-minute steps around 02:00 (two points in the skipped hour), 1-second heart
rate, 15-minute calories and steps (totals spread over 15 minutes), and a
heart-rate series at 15 minutes (a rate, repeated). ``w02`` (Europe/Berlin)
holds one file with an array of two responses: 1-minute steps and distance (km)
in a window across midnight (the times carry no date: the second half is the
next day), a step value ``"abc"``, intraday elevation (no channel) and 15-minute floors.

Run from the repository root: ``python tests/sources/dummy_data/fitbit_webapi/make_dummy.py``.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def minutes(start_h: int, start_m: int, n: int, step: int = 1):
    out = []
    for i in range(n):
        m = start_h * 60 + start_m + i * step
        out.append(f"{(m // 60) % 24:02d}:{m % 60:02d}:00")
    return out


def intraday(res: str, date: str, total: str, points, interval: int = 1, kind: str = "minute") -> dict:
    return {f"activities-{res}": [{"dateTime": date, "value": total}],
            f"activities-{res}-intraday": {"dataset": points, "datasetInterval": interval, "datasetType": kind}}


def main() -> None:
    (HERE / "participants.csv").write_text("participant_id,tz\nw01,America/New_York\nw02,Europe/Berlin\n")
    # w01: spring forward 2024-03-10 (02:00 -> 03:00 local)
    steps = [0, 12, 30, 41, 7, 0, 55, 60, 18, 3]
    times = minutes(1, 55, 5) + ["02:00:00", "02:30:00"] + minutes(3, 0, 3)
    write(HERE / "w01" / "steps_1min_2024-03-10.json",
          intraday("steps", "2024-03-10", str(sum(steps)), [{"time": t, "value": v} for t, v in zip(times, steps)]))
    hr = [{"time": f"10:00:{s:02d}", "value": 70 + s % 7} for s in range(0, 60, 5)] + \
         [{"time": "10:01:03", "value": 74}, {"time": "10:01:08", "value": 260}]  # 260 bpm: out of range
    write(HERE / "w01" / "heart_1sec_2024-03-10.json",
          {"activities-heart": [{"dateTime": "2024-03-10", "value": {
              "customHeartRateZones": [],
              "heartRateZones": [{"caloriesOut": 1540.2, "max": 94, "min": 30, "minutes": 1302, "name": "Out of Range"},
                                 {"caloriesOut": 612.5, "max": 131, "min": 94, "minutes": 121, "name": "Fat Burn"}],
              "restingHeartRate": 61}}],
           "activities-heart-intraday": {"dataset": hr, "datasetInterval": 1, "datasetType": "second"}})
    cal = [{"level": 0, "mets": 10, "time": t, "value": v}
           for t, v in zip(minutes(12, 0, 4, 15), [15.0, 22.5, 30.0, "-"])]  # "-": not a number
    write(HERE / "w01" / "calories_15min_2024-03-11.json", intraday("calories", "2024-03-11", "2210", cal, 15))
    write(HERE / "w01" / "steps_15min.json",
          intraday("steps", "2024-03-11", "6412", [{"time": t, "value": v}
                                                   for t, v in zip(minutes(12, 0, 4, 15), [150, 0, 465, 1201])], 15))
    write(HERE / "w01" / "heart_15min_2024-03-11.json",
          {"activities-heart": [{"dateTime": "2024-03-11", "value": {"customHeartRateZones": [],
                                                                     "heartRateZones": [], "restingHeartRate": 60}}],
           "activities-heart-intraday": {"dataset": [{"time": "12:00:00", "value": 88.5},
                                                     {"time": "12:15:00", "value": 97}],
                                         "datasetInterval": 15, "datasetType": "minute"}})
    # w02: one file, an array of two responses; the second crosses midnight without a date
    day1 = intraday("steps", "2024-06-01", "9021",
                    [{"time": t, "value": v} for t, v in zip(minutes(23, 57, 6), [10, 20, "abc", 0, 5, 9])])
    day1["activities-distance"] = [{"dateTime": "2024-06-01", "value": "6.42"}]
    day1["activities-distance-intraday"] = {"dataset": [{"time": t, "value": v} for t, v in
                                                        zip(minutes(23, 58, 3), [0.0125, 0.0, 0.0306])],
                                            "datasetInterval": 1, "datasetType": "minute"}
    day2 = intraday("elevation", "2024-06-02", "12.19",
                    [{"time": t, "value": v} for t, v in zip(minutes(8, 0, 2), [3.05, 0.0])])
    day2["activities-floors"] = [{"dateTime": "2024-06-02", "value": "3"}]
    day2["activities-floors-intraday"] = {"dataset": [{"time": "08:00:00", "value": 3}, {"time": "08:15:00", "value": 0}],
                                          "datasetInterval": 15, "datasetType": "minute"}
    write(HERE / "w02" / "responses.json", [day1, day2])


if __name__ == "__main__":
    main()
