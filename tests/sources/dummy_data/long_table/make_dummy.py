"""Writes this folder's generic long/wide files (run from the repository root).

* ``long/readings.csv``: long format, local wall clock with a per-row IANA zone
  column and a per-row unit column, two participants, across the US
  spring-forward change, with faults: an unparseable time, a time in the
  skipped hour, a value that is not a number, an unknown field, a glucose in
  mmol/L next to mg/dL ones.
* ``wide/p3.tsv``: wide format like a watch's sensor dump (tab-separated,
  epoch milliseconds, one column per field), participant = file stem.
"""

from pathlib import Path

HERE = Path(__file__).parent

LONG = """participant,local_time,zone,field,value,unit
p1,2024-03-10 01:58:00,America/New_York,hr,61,bpm
p1,2024-03-10 01:59:00,America/New_York,hr,62,bpm
p1,2024-03-10 02:30:00,America/New_York,hr,63,bpm
p1,2024-03-10 03:00:00,America/New_York,hr,64,bpm
p1,2024-03-10 03:01:00,America/New_York,glucose,5.5,mmol/L
p1,2024-03-10 03:06:00,America/New_York,glucose,101,mg/dL
p1,2024-03-10 03:07:00,America/New_York,hr,abc,bpm
p1,yesterday,America/New_York,hr,60,bpm
p1,2024-03-10 03:08:00,America/New_York,blood_pressure,120,mmHg
p2,2024-03-10 09:00:00,Europe/Berlin,hr,70,bpm
p2,2024-03-10 09:01:00,Europe/Berlin,steps,12,steps/min
p2,2024-03-10 09:02:00,Europe/Berlin,steps,400,steps/min
"""

WIDE_HEADER = "timestamp\thr\tsteps\n"

if __name__ == "__main__":
    (HERE / "long").mkdir(exist_ok=True)
    (HERE / "wide").mkdir(exist_ok=True)
    (HERE / "long" / "readings.csv").write_text(LONG)
    start_ms = 1_710_054_000_000  # 2024-03-10T07:00:00Z
    rows = [f"{start_ms + i * 20_000}\t{70 + i % 5}\t{i % 3}" for i in range(12)]
    (HERE / "wide" / "p3.tsv").write_text(WIDE_HEADER + "\n".join(rows) + "\n")
    (HERE / "participants.csv").write_text("participant_id,tz\np1,America/New_York\np2,Europe/Berlin\n"
                                           "p3,Asia/Kolkata\n")
