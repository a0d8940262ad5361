"""Writes this folder's Dexcom Clarity exports, byte for byte in Clarity's layout.

Run from the repository root: ``python tests/sources/dummy_data/dexcom_clarity/make_dummy.py``.

Layout (no public specification; as measured in public exports): UTF-8 with a
BOM, every field double-quoted, CRLF line endings, the 14-column header, an
untimed preamble (FirstName, LastName, DateOfBirth, Device, seven Alert
settings), then timed rows in time order. EGV and Calibration rows have 14
fields, every other row 13 (no Transmitter ID field).

- ``dx01.csv``: mg/dL, Dexcom G6 (iOS), America/New_York, 2024-06-01. 24 EGVs
  of transmitter 8AB1CD every 5 min from 08:02:41 (one ``High``, one ``Low``,
  one empty value, one impossible date), then a transmitter switch to 8XY9ZW
  whose first readings overlap: 09:47:41 repeats the old transmitter's value
  (exact duplicate), 09:52:41 disagrees with it (conflicting duplicate), then
  four more readings. Also a calibration, insulin, carbs, exercise and health row.
- ``dx02.xlsx``: mmol/L, Dexcom G7 (Android), Europe/Berlin, 2024-06-01: a
  short preamble, 12 EGVs every 5 min from 07:01:15 (one ``Low``, one with an
  empty timestamp cell), one carbs row. Timestamps are date cells.
"""

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

HEADER = ["Index", "Timestamp (YYYY-MM-DDThh:mm:ss)", "Event Type", "Event Subtype", "Patient Info",
          "Device Info", "Source Device ID", "Glucose Value (mg/dL)", "Insulin Value (u)", "Carb Value (grams)",
          "Duration (hh:mm:ss)", "Glucose Rate of Change (mg/dL/min)", "Transmitter Time (Long Integer)",
          "Transmitter ID"]


def row13(ts="", ev="", sub="", pinfo="", dinfo="", src="", glu="", ins="", carb="", dur="", rate="", ttime=""):
    return [ts, ev, sub, pinfo, dinfo, src, glu, ins, carb, dur, rate, ttime]


def preamble(src, device, alerts):
    rows = [row13(ev="FirstName", pinfo="Jane"), row13(ev="LastName", pinfo="Doe"),
            row13(ev="DateOfBirth", pinfo="1985-04-12"), row13(ev="Device", dinfo=device, src=src)]
    for sub, glu, rate, dur in alerts:
        rows.append(row13(ev="Alert", sub=sub, src=src, glu=glu, rate=rate, dur=dur))
    return rows


def dx01_rows():
    alerts = [("Fall", "", "3", ""), ("High", "200", "", ""), ("Low", "70", "", ""),
              ("Signal Loss", "", "", "00:20:00"), ("Rise", "", "3", ""), ("Urgent Low", "55", "", ""),
              ("Urgent Low Soon", "55", "", "")]
    rows = preamble("iOS G6", "Dexcom G6 Mobile App", alerts)
    a_values = [180, 215, 250, 290, 330, 365, 390, "", 398, "High", 392, 370, 340, 300, 255, 210, 170, 130, 95,
                48, "Low", 45, 58, 75]
    start = dt.datetime(2024, 6, 1, 8, 2, 41)
    timed = []  # (sort key, row)
    for k, v in enumerate(a_values):
        t = start + dt.timedelta(minutes=5 * k)
        ts = "2024-06-31T09:17:41" if k == 15 else t.strftime("%Y-%m-%dT%H:%M:%S")  # June has 30 days
        sub = v if v in ("High", "Low") else ""
        timed.append((t, row13(ts, "EGV", sub, src="iOS G6", glu=str(v), ttime=str(5_000_000 + 300 * k)) + ["8AB1CD"]))
    b = [(dt.datetime(2024, 6, 1, 9, 47, 41), 45), (dt.datetime(2024, 6, 1, 9, 52, 41), 61),
         (dt.datetime(2024, 6, 1, 9, 55, 10), 66), (dt.datetime(2024, 6, 1, 10, 0, 10), 80),
         (dt.datetime(2024, 6, 1, 10, 5, 10), 92), (dt.datetime(2024, 6, 1, 10, 10, 10), 101)]
    for j, (t, v) in enumerate(b):
        timed.append((t + dt.timedelta(microseconds=1), row13(t.strftime("%Y-%m-%dT%H:%M:%S"), "EGV", src="iOS G6",
                                                              glu=str(v), ttime=str(200 + 300 * j)) + ["8XY9ZW"]))
    def at(hh, mm):
        return dt.datetime(2024, 6, 1, hh, mm), f"2024-06-01T{hh:02d}:{mm:02d}:00"

    events = [
        (at(8, 15)[0], row13(at(8, 15)[1], "Insulin", "Fast-Acting", src="iOS G6", ins="4.5")),
        (at(8, 16)[0], row13(at(8, 16)[1], "Carbs", src="iOS G6", carb="45")),
        (at(8, 30)[0], row13(at(8, 30)[1], "Calibration", src="iOS G6", glu="118") + ["8AB1CD"]),
        (at(9, 0)[0], row13(at(9, 0)[1], "Exercise", "Medium", src="iOS G6", dur="00:30:00")),
        (at(9, 30)[0], row13(at(9, 30)[1], "Health", "Illness", src="iOS G6")),
    ]
    timed += events
    rows += [r for _, r in sorted(timed, key=lambda x: x[0])]
    return rows


def write_clarity_csv(path, rows, header=HEADER):
    lines = [",".join(f'"{f}"' for f in header)]
    for i, r in enumerate(rows, start=1):
        lines.append(",".join(f'"{f}"' for f in [str(i)] + r))
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))


def dx02_sheet():
    header = [h.replace("mg/dL", "mmol/L") for h in HEADER]
    alerts = [("Fall", "", "0.2", ""), ("High", "12.0", "", ""), ("Low", "5.0", "", ""),
              ("Signal Loss", "", "", "00:20:00"), ("Rise", "", "0.2", ""), ("Urgent Low", "3.1", "", ""),
              ("Urgent Low Soon", "3.1", "", "")]
    rows = [r for r in preamble("android G7", "Dexcom G7 Mobile App", alerts) if r[1] != "DateOfBirth"]
    values = [4.2, 3.6, 3.0, 2.5, "Low", 2.4, 3.1, 3.9, 4.6, 5.5, 6.1, 6.8]
    start = dt.datetime(2024, 6, 1, 7, 1, 15)
    timed = []
    for k, v in enumerate(values):
        t = start + dt.timedelta(minutes=5 * k)
        cell_t = None if k == 6 else t
        sub = v if v == "Low" else None
        timed.append((t, [cell_t, "EGV", sub, None, None, "android G7", v, None, None, None, None, 900 + 300 * k,
                          "312345678901"]))
    timed.append((dt.datetime(2024, 6, 1, 7, 20), [dt.datetime(2024, 6, 1, 7, 20), "Carbs", None, None, None,
                                                    "android G7", None, None, 15, None, None, None]))
    out = [[c if c != "" else None for c in r] for r in rows]
    out += [r for _, r in sorted(timed, key=lambda x: x[0])]
    return header, [[i] + r for i, r in enumerate(out, start=1)]


def write_xlsx(path, header, rows):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Clarity_Export"
    ws.append(header)
    for r in rows:
        ws.append(r)
    for cell in ws["B"][1:]:
        if isinstance(cell.value, dt.datetime):
            cell.number_format = "yyyy-mm-ddThh:mm:ss"
    fixed = dt.datetime(2024, 6, 2, 0, 0, 0)
    wb.properties.created = wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    # openpyxl stamps the zip entries and docProps' "modified" with the current time: fix both (same bytes each run)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2024-06-02T00:00:00Z", data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(2024, 6, 2, 0, 0, 0)), data,
                         compress_type=zipfile.ZIP_DEFLATED)


if __name__ == "__main__":
    here = Path(__file__).parent
    (here / "participants.csv").write_text("participant_id,tz\ndx01,America/New_York\ndx02,Europe/Berlin\n")
    write_clarity_csv(here / "dx01.csv", dx01_rows())
    write_xlsx(here / "dx02.xlsx", *dx02_sheet())
