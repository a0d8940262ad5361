"""ActiGraph ``.agd`` files (ActiLife epoch files of the GT3X, GT3X+, wGT3X-BT, GT9X): an SQLite database.

What is read (ActiGraph's published AGD description, "AGD file format"):

- table ``settings`` (``settingName``, ``settingValue``): ``devicename``
  (model), ``deviceserial``, ``epochlength`` (seconds), ``startdatetime``;
- table ``data``, one row per epoch: ``dataTimestamp`` (.NET ticks: 100 ns
  since 0001-01-01, the device's local wall clock), ``axis1`` (vertical-axis
  counts) -> ``activity_counts``, ``steps`` -> ``steps``, ``lux`` ->
  ``light``, and the inclinometer's seconds per epoch ``inclineOff``,
  ``inclineStanding``, ``inclineSitting``, ``inclineLying`` -> ``on_wrist``:
  0 where the epoch's inclinometer time is all "off" (the device was taken
  off), 1 where any of it is standing, sitting or lying; an epoch whose four
  incline columns are all 0 (no inclinometer recorded) gives no ``on_wrist``
  row. Columns an older file lacks are skipped.
- table ``capsense`` (devices with a capacitive wear sensor: wGT3X-BT,
  GT9X), present only where the device has one (actigraph.sleepr's AGD
  reader): ``timeStamp`` (.NET ticks, as ``dataTimestamp``) and ``state``,
  one row a minute; the other columns (``signal``, ``reference``,
  ``bursts``) are the sensor's raw readings. ``state`` -> ``on_wrist`` as
  ActiGraph's GT3X format description of the CAPSENSE record defines it
  (0 = not worn, 1 = worn; another value is quarantined as out of range).
  Where a file has capsense rows they alone give ``on_wrist``: the sensor
  touches the skin, while the inclinometer only infers wear from the
  device's angle (``on_wrist`` takes a minute's maximum, so an inclinometer
  "standing" would otherwise hide a capsense "not worn"). Older firmware
  logged the state only when it changed (the same description); such a file
  gives ``on_wrist`` at those minutes only, nothing is carried forward.

Counts, steps and lux per epoch are summed (counts, steps) or averaged (lux)
into minutes by the channel registry. Times: the first epoch's wall clock in
the participant's zone plus each epoch's ticks since then (:mod:`._epochs`).
Row numbers are the ``data`` (or ``capsense``) table's SQLite ``rowid``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.core.refs import Participant
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.actigraphy._epochs import Device, EpochFileAdapter, check_epoch, linear_times, native_parts
from sensorpipe.sources.base import SourceError

#: .NET ticks (100 ns since 0001-01-01) of 1970-01-01
TICKS_1970 = 621_355_968_000_000_000
INCLINE = ("inclineOff", "inclineStanding", "inclineSitting", "inclineLying")
#: data column -> native field; the field is the column's name
COLUMNS = {"axis1": "activity_counts", "steps": "steps", "lux": "light"}
UNITS = {"activity_counts": "counts/min", "steps": "steps/min", "light": "lux"}
ON_WRIST = "incline_worn"
CAPSENSE = "capsense_state"


class ActiGraphAgdAdapter(EpochFileAdapter):
    """ActiGraph ``.agd`` epoch files, one per participant; axis-1 counts, steps, lux and inclinometer wear."""

    name = "actigraph_agd"
    description = ("ActiGraph .agd epoch file (ActiLife SQLite; GT3X/GT3X+/wGT3X-BT/GT9X): axis-1 counts, steps, "
                   "lux and inclinometer off-wrist per epoch of 1 s to 1 min; the wear sensor's capsense state "
                   "per minute")
    time_convention = (".NET ticks of the device's local wall clock; the first epoch in the participant's IANA zone "
                       "(participants table, else options.tz), later epochs by their ticks since it (no DST jumps)")
    channels = ("activity_counts", "steps", "light", "on_wrist")
    suffixes = (".agd",)
    what = "ActiGraph .agd file"
    drops = ("axis2, axis3 and vector-magnitude counts (activity_counts is the vertical axis 1, as cut-points use); "
             "sleep, awakenings, filters and log tables; the capsense signal, reference and bursts columns; subject "
             "settings (name, sex, height, mass, age, birth date)")

    def schema(self) -> SourceSchema:
        fields = [FieldSpec(col, ch, UNITS[ch]) for col, ch in COLUMNS.items()]
        return SourceSchema(adapter=self.name, version=2, time_convention=self.time_convention,
                            fields=(*fields, FieldSpec(ON_WRIST, "on_wrist", "flag"),
                                    FieldSpec(CAPSENSE, "on_wrist", "flag")))

    def read_file(self, path: Path, participant: Participant) -> list[pa.Table]:
        settings, cols, rows, caps = _read(path)
        model = settings.get("devicename", "").strip() or "ActiGraph (model not recorded)"
        try:
            epoch = float(settings.get("epochlength", ""))
        except ValueError:
            raise SourceError(f"{path}: settings.epochlength is {settings.get('epochlength')!r}, not a number of "
                              f"seconds; the file is not a complete ActiLife .agd export") from None
        device = Device(model, check_epoch(epoch, path, "settings.epochlength"),
                        settings.get("deviceserial", "").strip())
        rowid = np.array([r[0] for r in rows], np.int64)
        n = len(rows)
        # one device clock for both tables: the first timed epoch (else capsense row) is the start
        t_all, err_all = linear_times(np.concatenate([_wall_ns(rows), _wall_ns(caps)]), participant.tz, path)
        t_ns, err = t_all[:n], None if err_all is None else err_all[:n]
        time_text = np.array([str(r[1]) for r in rows], dtype=object)
        fields = {}
        for j, col in enumerate(cols, start=2):
            if col in COLUMNS:
                fields[col] = np.array([_text(r[j]) for r in rows], dtype=object)
        parts = native_parts(participant, path, device, t_ns, time_text, rowid, fields, err)
        if caps:   # the wear sensor decides on_wrist (module docstring)
            state = np.array([_text(r[2]) for r in caps], dtype=object)
            parts += native_parts(participant, path, device, t_all[n:], np.array([str(r[1]) for r in caps], object),
                                  np.array([r[0] for r in caps], np.int64), {CAPSENSE: state},
                                  None if err_all is None else err_all[n:])
            return parts
        incline = [cols.index(c) + 2 for c in INCLINE if c in cols]
        if len(incline) == len(INCLINE):
            sec = np.array([[_num(r[j]) for j in incline] for r in rows], np.float64).reshape(len(rows), 4)
            seen = np.nansum(sec, axis=1) > 0
            worn = np.nansum(sec[:, 1:], axis=1) > 0
            flag = np.where(worn, "1", "0").astype(object)
            parts += native_parts(participant, path, device, t_ns[seen], time_text[seen], rowid[seen],
                                  {ON_WRIST: flag[seen]}, None if err is None else err[seen])
        return parts


def _read(path: Path) -> tuple[dict[str, str], list[str], list[tuple], list[tuple]]:
    """(settings, data columns read, data rows as (rowid, dataTimestamp, *columns), capsense rows as (rowid,
    timeStamp, state): none when the file has no such table), read-only."""
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty; expected an ActiGraph .agd (SQLite) file")
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as e:
        raise SourceError(f"{path}: cannot open as SQLite ({e}); expected an ActiGraph .agd file") from None
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"settings", "data"} <= tables:
            raise SourceError(f"{path}: not an ActiGraph .agd file: it lacks the settings and data tables (found "
                              f"{sorted(tables) or 'none'}); export the epoch file from ActiLife again")
        settings = {str(k).strip().lower(): str(v) for k, v in
                    con.execute("SELECT settingName, settingValue FROM settings") if k is not None}
        have = [r[1] for r in con.execute("PRAGMA table_info(data)")]
        if "dataTimestamp" not in have:
            raise SourceError(f"{path}: the data table has no dataTimestamp column; not an ActiLife .agd epoch file")
        cols = [c for c in (*COLUMNS, *INCLINE) if c in have]
        select = ", ".join(f'"{c}"' for c in ("dataTimestamp", *cols))
        rows = con.execute(f"SELECT rowid, {select} FROM data ORDER BY rowid").fetchall()
        caps = []
        if "capsense" in tables:
            have = {r[1] for r in con.execute("PRAGMA table_info(capsense)")}
            if not {"timeStamp", "state"} <= have:
                raise SourceError(f"{path}: the capsense table lacks its timeStamp or state column (found "
                                  f"{', '.join(sorted(have)) or 'none'}); export the file from ActiLife again")
            caps = con.execute('SELECT rowid, "timeStamp", "state" FROM capsense ORDER BY rowid').fetchall()
    except sqlite3.Error as e:
        raise SourceError(f"{path}: cannot read the SQLite database ({e}); the .agd file is damaged or truncated: "
                          f"export it from ActiLife again") from None
    finally:
        con.close()
    return settings, cols, rows, caps


def _wall_ns(rows: list[tuple]) -> np.ndarray:
    """Naive wall-clock ns of rows whose second item is .NET ticks; NAT where the ticks are no integer in range."""
    ticks = np.array([_int_or_none(r[1]) for r in rows], dtype=object)
    bad = np.array([t is None or not (0 <= t < 2**62) for t in ticks.tolist()], bool)
    wall = np.full(len(rows), timeparse.NAT, np.int64)
    if (~bad).any():
        wall[~bad] = (np.array(ticks[~bad].tolist(), np.int64) - TICKS_1970) * 100
    return wall


def _int_or_none(v) -> int | None:
    if isinstance(v, int):
        return v
    if isinstance(v, float) and np.isfinite(v) and v.is_integer():
        return int(v)
    return None


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) else np.nan
