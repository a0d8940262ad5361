"""Writes this folder: two tiny Fitbit Takeout exports, one folder per participant.

``p01`` (America/New_York) spans the 2024-03-10 spring-forward night with a
staged sleep log, ``p02`` (America/New_York) the 2024-11-03 fall-back night
with a classic sleep log. File names, folders, JSON shapes (string values in
steps/calories/distance, nested ``bpm``/``confidence``, resting heart rate's
``date``/``value``/``error``, sleep ``levels.data``/``shortData``), CSV
headers and time formats follow real exports (Fitbit's pretty printer writes
``"key" : value`` and ``},{`` between records). Faults: an impossible heart
rate, an empty step value, an hour 25, a 1,500 m minute, a resting heart rate
of 0 with a null date, a sleep segment and an HRV row in the skipped hour, an
HRV rmssd of 0, the SpO2 50.0 floor value, an SpO2 above 100 (clipped), a CSV
line with an extra column, a sleep log without segments, a heart rate record
without a value.

Run from the repository root: ``python tests/sources/dummy_data/fitbit_takeout/make_dummy.py``.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent


def fitbit_json(obj, indent: int = 0) -> str:
    """Fitbit's export layout: ``[{`` ... ``},{`` ... ``}]``, two-space indents, ``"key" : value``."""
    pad = " " * indent
    if isinstance(obj, list):
        if not obj:
            return "[ ]"
        return "[" + ",".join(fitbit_json(o, indent) for o in obj) + "]"
    if isinstance(obj, dict):
        inner = ",\n".join(f'{pad}  {json.dumps(k)} : {fitbit_json(v, indent + 2)}' for k, v in obj.items())
        return "{\n" + inner + "\n" + pad + "}"
    return json.dumps(obj)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def seg(time: str, level: str, seconds: int) -> dict:
    return {"dateTime": time, "level": level, "seconds": seconds}


def p01(root: Path) -> None:
    g = root / "Takeout" / "Fitbit" / "Global Export Data"
    write(g / "heart_rate-2024-03-10.json", fitbit_json([
        {"dateTime": "03/10/24 06:59:55", "value": {"bpm": 62, "confidence": 2}},
        {"dateTime": "03/10/24 07:00:05", "value": {"bpm": 63, "confidence": 3}},
        {"dateTime": "03/10/24 07:00:20", "value": {"bpm": 300, "confidence": 0}},   # out of range
        {"dateTime": "03/10/24 07:00:35", "value": {"bpm": 64, "confidence": 2}},
    ]))
    write(g / "steps-2024-02-14.json", fitbit_json([
        {"dateTime": "03/10/24 07:00:00", "value": "0"},
        {"dateTime": "03/10/24 07:01:00", "value": "12"},
        {"dateTime": "03/10/24 07:02:00", "value": ""},                             # missing value
        {"dateTime": "03/10/24 07:03:00", "value": "7"},
    ]))
    write(g / "calories-2024-02-14.json", fitbit_json([
        {"dateTime": "03/10/24 07:00:00", "value": "1.17"},
        {"dateTime": "03/10/24 07:01:00", "value": "1.5"},
        {"dateTime": "03/10/24 25:02:00", "value": "1.2"},                          # unparseable time
    ]))
    write(g / "distance-2024-02-14.json", fitbit_json([
        {"dateTime": "03/10/24 07:00:00", "value": "0"},
        {"dateTime": "03/10/24 07:01:00", "value": "1254.2"},                       # cm: 12.542 m
        {"dateTime": "03/10/24 07:02:00", "value": "150000"},                       # 1500 m/min: out of range
    ]))
    write(g / "resting_heart_rate-2024-01-01.json", fitbit_json([
        {"dateTime": "03/09/24 00:00:00", "value": {"date": "03/09/24", "value": 58.2, "error": 7.1}},
        {"dateTime": "03/10/24 00:00:00", "value": {"date": "03/10/24", "value": 57.9, "error": 6.8}},
        {"dateTime": "03/11/24 00:00:00", "value": {"date": None, "value": 0.0, "error": 0.0}},  # no estimate
    ]))
    data = [
        seg("2024-03-10T01:00:00.000", "wake", 300),      # 01:00 EST = 06:00 UTC, 10 epochs
        seg("2024-03-10T01:05:00.000", "light", 1800),    # 60 epochs
        seg("2024-03-10T01:35:00.000", "deep", 1500),     # 50 epochs, to 02:00 EST = 03:00 EDT
        seg("2024-03-10T03:00:00.000", "rem", 600),       # 07:00 UTC, 20 epochs
        seg("2024-03-10T03:10:00.000", "light", 1200),    # 40 epochs
        seg("2024-03-10T02:30:00.000", "wake", 60),       # skipped hour: 2 epochs nonexistent
    ]
    write(g / "sleep-2024-02-14.json", fitbit_json([
        {"logId": 44940631937, "dateOfSleep": "2024-03-10", "startTime": "2024-03-10T01:00:00.000",
         "endTime": "2024-03-10T03:30:00.000", "duration": 5400000, "minutesToFallAsleep": 0,
         "minutesAsleep": 83, "minutesAwake": 7, "minutesAfterWakeup": 0, "timeInBed": 90, "efficiency": 92,
         "type": "stages", "infoCode": 0, "logType": "auto_detected",
         "levels": {"summary": {"deep": {"count": 1, "minutes": 25, "thirtyDayAvgMinutes": 60},
                                "wake": {"count": 2, "minutes": 6, "thirtyDayAvgMinutes": 40},
                                "light": {"count": 2, "minutes": 50, "thirtyDayAvgMinutes": 200},
                                "rem": {"count": 1, "minutes": 10, "thirtyDayAvgMinutes": 80}},
                    "data": data,
                    "shortData": [seg("2024-03-10T01:20:00.000", "wake", 60)]},   # overrides 2 light epochs
         "mainSleep": True},
        {"logId": 44940631938, "dateOfSleep": "2024-03-10", "startTime": "2024-03-10T14:00:00.000",
         "endTime": "2024-03-10T14:30:00.000", "duration": 1800000, "minutesToFallAsleep": 0,
         "minutesAsleep": 30, "minutesAwake": 0, "minutesAfterWakeup": 0, "timeInBed": 30, "efficiency": 100,
         "type": "classic", "infoCode": 0, "logType": "manual",
         "levels": {"summary": {}, "data": [], "shortData": []},                    # no segments
         "mainSleep": False},
    ]))
    write(g / "estimated_oxygen_variation-2024-03-10.csv",
          "timestamp,Infrared to Red Signal Ratio\n03/10/24 06:10:00,1\n03/10/24 06:11:00,-2\n")
    f = root / "Takeout" / "Fitbit"
    write(f / "Oxygen Saturation (SpO2)" / "Minute SpO2 - 2024-03-10.csv",
          "timestamp,value\n2024-03-10T06:10:00Z,95.8\n2024-03-10T06:11:00Z,50.0\n2024-03-10T06:12:00Z,101.2\n"
          "2024-03-10T06:13:00Z,96.4\n2024-03-10T06:14:00Z,97.0,1\n")
    hrv = f / "Heart Rate Variability"
    write(hrv / "Heart Rate Variability Details - 2024-03-10.csv",
          "timestamp,rmssd,coverage,low_frequency,high_frequency\n"
          "2024-03-10T01:05:00,32.1,0.95,812.4,402.7\n"
          "2024-03-10T01:10:00,30.8,0.91,790.1,380.2\n"
          "2024-03-10T02:15:00,31.0,0.9,700.0,300.0\n"       # skipped hour
          "2024-03-10T03:00:00,0.0,0.2,0.0,0.0\n"            # rmssd 0: out of range
          "2024-03-10T03:05:00,28.4,0.93,650.2,310.9\n")
    write(hrv / "Daily Heart Rate Variability Summary - 2024-03-(10).csv",
          "timestamp,rmssd,nremhr,entropy\n2024-03-10T00:00:00,30.5,55.1,2.4\n")
    temp = f / "Temperature"
    write(temp / "Wrist Temperature - 2024-03-10.csv", "recorded_time,temperature\n2024-03-10T01:00,-0.95\n"
          "2024-03-10T01:01,-0.91\n")
    write(temp / "Computed Temperature - 2024-03-01.csv",
          "type,sleep_start,sleep_end,temperature_samples,nightly_temperature,baseline_relative_sample_sum,"
          "baseline_relative_sample_sum_of_squares,baseline_relative_nightly_standard_deviation,"
          "baseline_relative_sample_standard_deviation\n"
          "SKIN,2024-03-10T01:00,2024-03-10T03:30,90,33.1,-12.5,8.1,0.3,0.4\n")


def p02(root: Path) -> None:
    g = root / "Takeout" / "Fitbit" / "Global Export Data"
    data = [                                              # classic log across the 2024-11-03 fall back
        seg("2024-11-03T00:30:00.000", "awake", 120),     # 00:30 EDT = 04:30 UTC, 4 epochs
        seg("2024-11-03T00:32:00.000", "asleep", 3480),   # 116 epochs, to 01:30 EDT
        seg("2024-11-03T01:30:00.000", "restless", 120),  # first 01:30: EDT (05:30 UTC)
        seg("2024-11-03T01:32:00.000", "asleep", 3480),   # to 02:30 EDT = 01:30 EST
        seg("2024-11-03T01:30:00.000", "asleep", 1800),   # second 01:30: EST (06:30 UTC), 60 epochs
        seg("2024-11-03T02:00:00.000", "awake", 60),      # 02:00 EST = 07:00 UTC, 2 epochs
    ]
    write(g / "sleep-2024-10-14.json", fitbit_json([
        {"logId": 46010000001, "dateOfSleep": "2024-11-03", "startTime": "2024-11-03T00:30:00.000",
         "endTime": "2024-11-03T02:01:00.000", "duration": 9060000, "minutesToFallAsleep": 2,
         "minutesAsleep": 146, "minutesAwake": 5, "minutesAfterWakeup": 1, "timeInBed": 151, "efficiency": 97,
         "type": "classic", "infoCode": 0, "logType": "auto_detected",
         "levels": {"summary": {"restless": {"count": 1, "minutes": 2}, "awake": {"count": 2, "minutes": 3},
                                "asleep": {"count": 0, "minutes": 146}},
                    "data": data},
         "mainSleep": True},
    ]))
    write(g / "heart_rate-2024-11-03.json", fitbit_json([
        {"dateTime": "11/03/24 05:30:00", "value": {"bpm": 55, "confidence": 3}},
        {"dateTime": "11/03/24 06:30:00", "value": {"bpm": 54, "confidence": 3}},
        {"dateTime": "11/03/24 06:30:05"},                                           # no value
    ]))
    write(g / "resting_heart_rate-2024-01-01.json", fitbit_json([
        {"dateTime": "11/03/24 00:00:00", "value": {"date": "11/03/24", "value": 61.0, "error": 5.2}},
    ]))


def main() -> None:
    write(HERE / "participants.csv", "participant_id,tz\np01,America/New_York\np02,America/New_York\n")
    p01(HERE / "p01")
    p02(HERE / "p02")


if __name__ == "__main__":
    main()
