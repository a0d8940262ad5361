"""Writes CGM readings as a Dexcom Clarity CSV export, for the demo's metabolic study.

The layout is the one :mod:`sensorpipe.sources.dexcom_clarity` documents and
reads (as in public Clarity exports): UTF-8 with a BOM, every field quoted,
CRLF line ends, the 14-column header (``mmol/L`` in the glucose columns for
mmol/L accounts), an untimed preamble (patient info, device, alert
settings), then EGV rows every 5 minutes on the local wall clock. Readings
beyond the sensor's 40-400 mg/dL reporting range are written as the text
``Low`` / ``High``, and the transmitter's clock drifts by a second now and
then, so consecutive readings can land 6 minutes apart on the minute grid
(``22:11:59`` then ``22:17:00``), as in real exports.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

LOW_LIMIT_MGDL, HIGH_LIMIT_MGDL = 40, 400
MMOL_PER_MGDL = 1 / 18.0156   # the inverse of sensorpipe.units' mmol/L -> mg/dL factor


def clarity_header(mmol: bool) -> list[str]:
    unit = "mmol/L" if mmol else "mg/dL"
    return ["Index", "Timestamp (YYYY-MM-DDThh:mm:ss)", "Event Type", "Event Subtype", "Patient Info",
            "Device Info", "Source Device ID", f"Glucose Value ({unit})", "Insulin Value (u)", "Carb Value (grams)",
            "Duration (hh:mm:ss)", f"Glucose Rate of Change ({unit}/min)", "Transmitter Time (Long Integer)",
            "Transmitter ID"]


def _preamble(device: str, first_name: str, mmol: bool) -> list[list[str]]:
    """Untimed rows: patient info (synthetic), the device and the alert settings (13 fields each)."""
    low, high, urgent = ("3.9", "11.1", "3.1") if mmol else ("70", "200", "55")

    def row(ev="", sub="", pinfo="", dinfo="", glu="", dur="", rate=""):
        return ["", ev, sub, pinfo, dinfo, "iOS G6", glu, "", "", dur, rate, ""]

    return [row("FirstName", pinfo=first_name), row("LastName", pinfo="Demo"), row("DateOfBirth", pinfo="1980-01-01"),
            row("Device", dinfo=device), row("Alert", "High", glu=high), row("Alert", "Low", glu=low),
            row("Alert", "Urgent Low", glu=urgent), row("Alert", "Signal Loss", dur="00:20:00"),
            row("Alert", "Rise", rate="3"), row("Alert", "Fall", rate="3")]


def clarity_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after the minute of each reading: a random start, drifting +1 s at 2 % of readings."""
    return int(rng.integers(0, 60)) + np.cumsum(rng.random(n) < 0.02)


def write_clarity_csv(path: Path, local_s: np.ndarray, mgdl: np.ndarray, mmol: bool, transmitter: str,
                      first_name: str) -> None:
    """One participant's export: ``local_s`` wall-clock seconds (as UTC-naive epoch seconds), ``mgdl`` readings
    (unclipped: beyond 40-400 they are written as ``Low``/``High``)."""
    stamps = np.datetime_as_string(np.asarray(local_s, np.int64).astype("datetime64[s]"), unit="s")
    low, high = mgdl < LOW_LIMIT_MGDL, mgdl > HIGH_LIMIT_MGDL
    shown = np.round(mgdl * MMOL_PER_MGDL, 1) if mmol else np.round(mgdl).astype(np.int64)
    text = np.where(low, "Low", np.where(high, "High", shown.astype(str)))
    sub = np.where(low, "Low", np.where(high, "High", ""))
    rows = _preamble("Dexcom G6 Mobile App", first_name, mmol)
    ttime = 4_000_000 + 300 * np.arange(stamps.size)
    rows += [[ts, "EGV", s, "", "", "iOS G6", v, "", "", "", "", str(tt), transmitter]
             for ts, s, v, tt in zip(stamps.tolist(), sub.tolist(), text.tolist(), ttime.tolist())]
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(clarity_header(mmol))
    w.writerows([str(i), *r] for i, r in enumerate(rows, start=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode())
