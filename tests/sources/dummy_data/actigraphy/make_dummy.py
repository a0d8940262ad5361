"""Writes the actigraphy adapters' dummy recordings, one folder per format, from the formats' public descriptions.

Run from the repository root: ``python tests/sources/dummy_data/actigraphy/make_dummy.py``.

Every folder has ``participants.csv`` (p1 Europe/Berlin, p2 America/New_York, p3 Europe/Paris)
and small files whose values follow a seeded pattern (counts 0-600 per epoch,
a night of zeros, light 0-900 lux), so tests recompute them independently.

- ``awd/``: ``p1.AWD`` an Actiwatch-L (serial L...; activity and light), 30-s
  epochs (code 2) from 27-Oct-2024 01:30, 4 h across the Berlin autumn change
  (03:00 CEST -> 02:00 CET); the last line holds ``x`` (not a number).
  ``p2.AWD`` an Actiwatch 4 (serial V..., activity only), 1-min epochs
  (code 4) from 10-Mar-2024 01:00, 2 h across the New York spring change,
  event markers ``M`` on two lines.
- ``agd/``: ``p1.agd`` a wGT3XBT, 10-s epochs from 2024-03-31 01:40 local
  (ticks), 1 h across the Berlin spring change: axis1-3, steps, lux and the
  inclinometer columns; 12 epochs "off", 6 epochs with no inclinometer time.
- ``agd_capsense/``: ``p2.agd`` a wGT3XBT with its wear sensor's ``capsense``
  table (ActiGraph's GT3X format description, CAPSENSE record: signal,
  reference, state 0 = not worn / 1 = worn, bursts; logged once a minute),
  10-s epochs from 2024-05-06 09:00 local, 2 h; capsense state 0 for minutes
  30-44, a damaged state 7 at minute 100, no capsense row for minutes 110-119;
  the inclinometer says "standing" throughout (the capsense decides).
- ``mtn/``: ``p1.mtn`` a MotionWatch 8 (MW8): motion and Light channels,
  15-s epochs from 2024-06-01 22:00:00, 2 h.
- ``actiware/``: ``p1.csv`` English (UK, DD/MM), Spectrum Plus, 30-s epochs,
  Off-Wrist Status column (10 epochs off), a ``NaN`` light cell; ``p2.csv``
  German, ``;`` separators, decimal commas, ``kZ`` activity, 1-min epochs;
  ``p3.csv`` French, Actiwatch 2, 1-min epochs. Preambles of 110-120 lines.
- ``acttrust/``: ``p1.txt`` an ActTrust2, 30-s epochs from 27/10/2024 01:30,
  3 h across the Berlin autumn change; STATE 4 (off-wrist) for 8 epochs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TICKS_1970 = 621_355_968_000_000_000


def counts(n: int, seed: int) -> np.ndarray:
    """Activity counts per epoch: active bouts 0-600, a still stretch of zeros in the middle."""
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 600, n)
    c[n // 3: n // 2] = 0
    return c


def light(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return np.round(rng.uniform(0, 900, n), 2)


def participants(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "participants.csv").write_text("participant_id,tz\np1,Europe/Berlin\np2,America/New_York\n"
                                             "p3,Europe/Paris\n")


def awd() -> None:
    d = HERE / "awd"
    participants(d)
    n = 480
    c, lx = counts(n, 1), light(n, 1)
    lines = ["P1", "27-Oct-2024", "01:30", " 2 ", "34", "L102938", "F"]
    lines += [f"{a} , {x:.2f}" for a, x in zip(c, lx)]
    lines[-1] = "x , 0.00"
    (d / "p1.AWD").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    n = 120
    c = counts(n, 2)
    lines = ["P2", "10-Mar-2024", "01:00", " 4 ", "51", "V664055", "M"]
    lines += [f"{a}" + (" M" if k in (10, 70) else "") for k, a in enumerate(c)]
    (d / "p2.AWD").write_bytes(("\r\n".join(lines) + "\r\n").encode())


def agd_file(path: Path, start: dt.datetime, n: int, serial: str) -> tuple[sqlite3.Connection, int]:
    """A new ActiLife .agd (SQLite) with its settings (a wGT3XBT, 10-s epochs, ``n`` of them from ``start``) and
    an empty data table; returns the open connection and the start's .NET ticks."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE settings (settingID INTEGER PRIMARY KEY, settingName VARCHAR(64), "
                "settingValue VARCHAR(8192))")
    con.execute("CREATE TABLE data (dataTimestamp INTEGER, axis1 REAL, axis2 REAL, axis3 REAL, steps REAL, lux REAL, "
                "inclineOff REAL, inclineStanding REAL, inclineSitting REAL, inclineLying REAL)")
    start_ticks = TICKS_1970 + int((start - dt.datetime(1970, 1, 1)).total_seconds()) * 10**7
    settings = [("softwarename", "ActiLife"), ("softwareversion", "6.13.4"), ("devicename", "wGT3XBT"),
                ("filter", "Normal"), ("deviceserial", serial), ("epochlength", "10"),
                ("startdatetime", str(start_ticks)), ("stopdatetime", str(start_ticks + n * 10**8)),
                ("original sample rate", "30"), ("subjectname", path.stem), ("epochcount", str(n)),
                ("agdversion", "2.0")]
    con.executemany("INSERT INTO settings (settingName, settingValue) VALUES (?, ?)", settings)
    return con, start_ticks


def agd() -> None:
    d = HERE / "agd"
    participants(d)
    n = 360
    con, start_ticks = agd_file(d / "p1.agd", dt.datetime(2024, 3, 31, 1, 40), n, "MOS2E00000000")
    c = counts(n, 3)
    rng = np.random.default_rng(4)
    steps = rng.integers(0, 9, n)
    lx = rng.integers(0, 2000, n)
    rows = []
    for k in range(n):
        incline = [0, 10, 0, 0]
        if 100 <= k < 112:
            incline = [10, 0, 0, 0]      # the device lay off the body
        elif 200 <= k < 206:
            incline = [0, 0, 0, 0]       # no inclinometer time recorded
        rows.append((start_ticks + k * 10**8, float(c[k]), float(c[k] // 2), float(c[k] // 3), float(steps[k]),
                     float(lx[k]), *map(float, incline)))
    con.executemany("INSERT INTO data VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.execute("VACUUM")
    con.close()


def agd_capsense() -> None:
    d = HERE / "agd_capsense"
    participants(d)
    n = 720
    con, start_ticks = agd_file(d / "p2.agd", dt.datetime(2024, 5, 6, 9, 0), n, "MOS2E22222222")
    con.execute("CREATE TABLE capsense (timeStamp INTEGER, signal INTEGER, reference INTEGER, state INTEGER, "
                "bursts INTEGER)")
    c = counts(n, 5)
    rng = np.random.default_rng(6)
    rows = [(start_ticks + k * 10**8, float(c[k]), float(c[k] // 2), float(c[k] // 3), float(rng.integers(0, 9)),
             float(rng.integers(0, 2000)), 0.0, 10.0, 0.0, 0.0) for k in range(n)]
    con.executemany("INSERT INTO data VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    caps = []
    for m in range(110):
        state = 0 if 30 <= m < 45 else 7 if m == 100 else 1
        signal = 310 if state == 0 else 540 + m % 7
        caps.append((start_ticks + m * 60 * 10**7, signal, 400, state, 12))
    con.executemany("INSERT INTO capsense VALUES (?, ?, ?, ?, ?)", caps)
    con.commit()
    con.execute("VACUUM")
    con.close()


def mtn() -> None:
    d = HERE / "mtn"
    participants(d)
    n = 480
    c, lx = counts(n, 5), light(n, 5)

    def data(values) -> str:
        return "\n".join(",".join(values[i:i + 10]) + "," for i in range(0, len(values), 10))

    def change(body: str) -> str:
        return f'  <change user="lab" time="2024-06-03 09:00:00">\n    {body}</change>\n'

    props = [("+UserID", "p1"), ("=Device", "MW8"), ("=SerialNo", "012345"), ("=Compression", "Enabled"),
             ("+Position", "Wrist (Left)"), ("=StartTime", "2024-06-01 22:00:00")]
    body = "".join(change(f"<property><name>{k}</name><content>{v}</content></property>") for k, v in props)
    body += change('<ann type="buttons" id="1" />')
    body += change("<channel><name>motion</name><units>Triaxial-Counts</units><epoch>15</epoch><offset>0</offset>"
                   f'<data encoding="text">{data([str(v) for v in c])}</data></channel>')
    body += change("<channel><name>Light</name><units>lux</units><epoch>15</epoch><offset>0</offset>"
                   f'<data encoding="text">{data([f"{v:g}" for v in lx])}</data></channel>')
    xml = ('\ufeff<?xml version="1.0" encoding="UTF-8"?><motionfile><log2 major="2" minor="1">\n' + body +
           '</log2>\n\n<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignatureValue>AAAA</SignatureValue>'
           '</Signature></motionfile>')
    (d / "p1.mtn").write_bytes(xml.encode())


def preamble(title: str, props: list[tuple[str, ...]], section: str, n_lines: int) -> list[str]:
    """An Actiware preamble of about ``n_lines`` lines: title, properties, analysis statistics, the data section."""
    out = [f'"{title}"', '"Filename:",""', "", "", '"-------------------- Properties --------------------"', ""]
    out += [",".join(f'"{x}"' for x in p) for p in props]
    out += ["", "", '"--------------------- Statistics ----------------------"', ""]
    k = 0
    while len(out) < n_lines - 4:
        k += 1
        out.append(f'"Interval","{k}","Rest","{k * 7}","{k * 3}","{k}"')
    out += ["", f'"-------------------- {section} -------------------"', ""]
    return out


def actiware() -> None:
    d = HERE / "actiware"
    participants(d)
    n = 240
    c, lx = counts(n, 6), light(n, 6)
    start = dt.datetime(2024, 7, 4, 23, 0)
    props = [("Identity:", "P1"), ("Actiwatch Type:", "Spectrum Plus"), ("Data Collection Start Date:", "04/07/2024"),
             ("Data Collection Start Time:", "23:00:00"), ("Epoch Length:", "30", "seconds", ""),
             ("Time Zone Offset:", "+02:00", "hours:minutes")]
    lines = preamble("Actiware Export File  (Version 06.00 )", props, "Epoch-by-Epoch Data", 120)
    lines.append('"Line","Date","Time","Off-Wrist Status","Activity","Marker","White Light","Sleep/Wake",'
                 '"Interval Status",')
    lines.append("")
    for k in range(n):
        t = start + dt.timedelta(seconds=30 * k)
        off = 1 if 60 <= k < 70 else 0
        lxs = "NaN" if k == 5 else f"{lx[k]:.2f}"
        lines.append(f'"{k + 1}","{t:%d/%m/%Y}","{t:%H:%M:%S}","{off}","{c[k]}","0","{lxs}","1","ACTIVE",')
    (d / "p1.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())

    n = 90
    c, lx = counts(n, 7), light(n, 7)
    start = dt.datetime(2024, 11, 3, 0, 30)
    props = [("Identität:", "P2"), ("Actiwatch-Typ:", "Spectrum PRO"), ("Epochenlänge:", "60", "Sekunden", "")]
    lines = [line.replace(",", ";") for line in preamble("Actiware-Exportdatei (Version 06.00 )", props,
                                                         "Daten nach Epochen", 115)]
    lines.append('"Zeile";"Datum";"Zeit";"Status „Nicht am Handgelenk“";"Aktivität";"Markierung";"Weißes Licht";'
                 '"Schlaf/Wach";"Intervallstatus"')
    lines.append("")
    for k in range(n):
        t = start + dt.timedelta(minutes=k)
        act = "kZ" if k == 3 else str(c[k])
        light_text = f"{lx[k]:.2f}".replace(".", ",")
        lines.append(f'{k + 1};{t:%d.%m.%Y};{t:%H:%M:%S};0;{act};0;"{light_text}";1;AKTIV')
    (d / "p2.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())

    n = 60
    c, lx = counts(n, 8), light(n, 8)
    start = dt.datetime(2024, 2, 14, 11, 45)
    props = [("Identité :", "P3"), ("Type d'Actiwatch :", "Actiwatch 2"),
             ("Longueur de la période :", "60", "secondes", "(1 minute)")]
    lines = preamble("Fichier d'exportation Actiware (Version 05.00)", props, "Données période par période", 112)
    lines.append('"Ligne","Secondes","Date","Heure","Activité","Marqueur","Lumière blanche","Sommeil/Éveil",'
                 '"Mobilité","Statut de l’intervalle",')
    lines.append("")
    for k in range(n):
        t = start + dt.timedelta(minutes=k)
        lines.append(f'"{k + 1}","{60 * k}","{t.day}/{t:%m/%Y}","{t:%H:%M:%S}","{c[k]}","0","{lx[k]:.2f}","NAN",'
                     f'"0","ACTIVITÉ",')
    (d / "p3.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())


def acttrust() -> None:
    d = HERE / "acttrust"
    participants(d)
    n = 360
    c, lx = counts(n, 9), light(n, 9)
    head = ["+-------------+ Condor Instruments Report +-------------+", "SOFTWARE_VERSION : 1.1.2",
            "SUBJECT_NAME : p1", "DEVICE_ID : AT2-0001", "DEVICE_MODEL : ActTrust2", "MODE : PIM/TAT/ZCM",
            "INTERVAL : 30", "DATE_TIME : 28/10/2024 09:00:00",
            "+-------------------------------------------------------+",
            "DATE/TIME;MS;EVENT;TEMPERATURE;EXT TEMPERATURE;ORIENTATION;PIM;PIMn;TAT;TATn;ZCM;ZCMn;LIGHT;"
            "AMB LIGHT;STATE"]
    start = dt.datetime(2024, 10, 27, 1, 30)
    rows = []
    for k in range(n):
        t = start + dt.timedelta(seconds=30 * k)
        state = 4 if 200 <= k < 208 else 0
        rows.append(f"{t:%d/%m/%Y %H:%M:%S};0;0;31.20;28.10;0;{c[k]};{c[k] / 30:.4f};{c[k] // 7};0.1;{c[k] // 11};"
                    f"0.2;{lx[k]:.2f};{lx[k] / 2:.2f};{state}")
    (d / "p1.txt").write_bytes(("\r\n".join(head + rows) + "\r\n").encode())


if __name__ == "__main__":
    awd()
    agd()
    agd_capsense()
    mtn()
    actiware()
    acttrust()
