"""What the actigraphy formats share: the device clock, epoch checks, and the native table with its device.

An actigraph counts epochs from the moment it was started; its clock knows
no time zone and no daylight saving time. Every format here writes either
that start and the epoch length (AWD, MTN) or the start plus ``k`` epochs as
a wall-clock time per row (AGD ticks, Actiware and ActTrust date and time
columns), which keeps running straight through a DST change. So a row's
instant is the start, placed in the participant's IANA zone
(:func:`~sensorpipe.sources._toolkit.recording_start.local_start_ns`: a start
in the skipped hour is an error naming the file, one in the repeated hour its
first occurrence), plus the row's elapsed wall-clock time since the start.
Reading each row's wall clock in the zone instead would put a night that
crosses the autumn change an hour off after 03:00 and fold two rows into one
minute.

Epochs must divide a minute (1, 2, 5, 10, 15, 20, 30 or 60 s): the minute
grid then sums a count channel's epochs (``activity_counts``, ``steps``) and
averages ``light`` exactly, by the channel registry's aggregation. Longer
epochs (Actiwatch codes for 2 and 5 minutes) would put several minutes of
counts in one and are refused with the fix.

Counts are per device (an Actiwatch count is no ActiGraph count), so each
native table carries its device's model, epoch and serial (where the file
gives one) in its Arrow schema metadata (:mod:`sensorpipe.core.devices`);
:func:`devices` lists them for a read unit, and the runner carries them per
source into the metadata DB (``unit_devices``, shown by ``sensorpipe lineage``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.core.devices import EPOCH_KEY, MODEL_KEY, Device, device_of, with_device  # noqa: F401 (adapters')
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.sources._toolkit.export_files import list_export_units
from sensorpipe.sources._toolkit.recording_start import local_start_ns
from sensorpipe.sources._toolkit.text_csv import file_bytes
from sensorpipe.sources.base import SourceAdapter, SourceError, check_zone_option, repeat_string

SECOND_NS = 1_000_000_000
_WALL_MIN_NS = -2208988800 * SECOND_NS   # 1900-01-01
_WALL_MAX_NS = 7258118400 * SECOND_NS    # 2200-01-01
_MISSING = ("", "nan", "kz", "n/a", "na")   # localized "no value" (Actiware: NaN / NAN, German kZ = keine Zahl)


def check_epoch(epoch_s: float, path: Path, where: str) -> float:
    """The epoch length, if it divides a minute; else a SourceError naming the file, where it is, and why."""
    if not (epoch_s > 0 and 60 % epoch_s == 0 and float(epoch_s).is_integer()):
        raise SourceError(f"{path}, {where}: epoch length {epoch_s:g} s is not supported: epochs must divide a "
                          f"minute (5, 10, 15, 20, 30 or 60 s) to be summed into minutes; re-export the recording "
                          f"with a 1-minute (or shorter) epoch")
    return float(epoch_s)


def start_utc_ns(wall: dt.datetime, tz: str, path: Path) -> int:
    """The device start (naive local wall clock) as UTC ns in the participant's zone (module docstring)."""
    return local_start_ns(wall, tz, str(path))


def clean_number_text(text: np.ndarray) -> np.ndarray:
    """Number cells as validation parses them: trimmed, decimal comma to point, localized "no value" to "".

    A cell such as ``184,13`` or ``2,35E+02`` (a German export) has no point,
    so its comma is the decimal mark; ``NaN``/``kZ`` become empty, so they
    are quarantined as ``missing_value`` rather than ``wrong_type``.
    """
    out = np.array([s.strip() for s in text.tolist()], dtype=object)
    if out.size == 0:
        return out
    lower = np.char.lower(out.astype(str))
    out[np.isin(lower, _MISSING)] = ""
    comma = np.char.find(out.astype(str), ",") >= 0
    point = np.char.find(out.astype(str), ".") >= 0
    fix = comma & ~point
    if fix.any():
        out[fix] = np.char.replace(out[fix].astype(str), ",", ".").astype(object)
    return out


def native_parts(participant: Participant, path: Path, device: Device, t_ns: np.ndarray, time_text: np.ndarray,
                 lines: np.ndarray, fields: dict[str, np.ndarray], time_error: np.ndarray | None = None
                 ) -> list[pa.Table]:
    """One native table per field (base.NATIVE_COLUMNS), all rows of the file's epochs, device in the metadata.

    ``fields``: native field name -> value text per epoch (same length as
    ``t_ns``); ``time_error``: per epoch, None or the reason its time failed.
    """
    n = int(t_ns.shape[0])
    parts = []
    for name, values in fields.items():
        table = pa.table({
            "participant_id": repeat_string(participant.participant_id, n),
            "field": repeat_string(name, n),
            "time": pa.array(time_text, pa.string()),
            "t_utc_ns": pa.array(t_ns, pa.int64()),
            "time_error": pa.array(time_error, pa.string()) if time_error is not None else pa.nulls(n, pa.string()),
            "value": pa.array(values, pa.string()),
            "unit": pa.nulls(n, pa.string()),
            "source_file": repeat_string(str(path), n),
            "source_row": pa.array(lines, pa.int64()),
        })
        parts.append(with_device(table, device))
    return parts


def linear_times(wall_ns: np.ndarray, tz: str, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """UTC ns of rows whose wall clock (naive ns since 1970, NAT where unparseable) runs on the device clock.

    The first parsed row is the start; each row is the start plus its wall
    time since then (module docstring). Unparseable rows, and wall clocks
    outside 1900-2199 (a damaged tick count), get NAT and ``unparseable_time``.
    """
    bad = (wall_ns == timeparse.NAT) | (wall_ns < _WALL_MIN_NS) | (wall_ns >= _WALL_MAX_NS)
    out = np.full(wall_ns.shape[0], timeparse.NAT, np.int64)
    err = np.where(bad, timeparse.UNPARSEABLE, None).astype(object) if bad.any() else None
    if bad.all():
        return out, err
    first = int(np.flatnonzero(~bad)[0])
    wall0 = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(wall_ns[first]) // 1000)
    out[~bad] = start_utc_ns(wall0, tz, path) + (wall_ns[~bad] - wall_ns[first])
    return out, err


def devices(inp: UnitInput) -> list[Device]:
    """The devices (model, epoch, serial) of a unit's native tables, in file order, each once."""
    out: list[Device] = []
    for part in inp.native:
        d = device_of(part)
        if d is not None and d not in out:
            out.append(d)
    return out


def wall_ns_of(text: np.ndarray, fmt: str) -> np.ndarray:
    """Naive wall-clock ns since 1970 of date-time text in ``fmt``; NAT where it does not parse."""
    import pandas as pd

    if text.size == 0:
        return np.zeros(0, np.int64)
    parsed = pd.to_datetime(pd.Series(text.astype(object)), format=fmt, errors="coerce")
    out = parsed.to_numpy("datetime64[ns]").astype(np.int64)
    out[parsed.isna().to_numpy()] = timeparse.NAT
    return out


def local_text(wall_ns: np.ndarray) -> np.ndarray:
    """ISO local wall-clock text of naive ns (the ``time`` column of formats that write no per-row time)."""
    return np.datetime_as_string(wall_ns.astype("datetime64[ns]"), unit="s").astype(object)


class EpochFileAdapter(SourceAdapter):
    """Base of the actigraphy adapters: one recording file per participant (its stem is the id).

    Subclasses set ``name``, ``suffixes``, ``what`` and implement :meth:`read_file`.
    """

    suffixes: ClassVar[tuple[str, ...]] = ()
    what: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Options:
        participant_id: str | None = None  # when path is one recording file (default: its file stem)
        tz: str | None = None  # IANA zone of participants missing from the participants table

        def validate(self, path: str) -> None:
            check_zone_option(self.tz, f"{path}.tz")

    def list_units(self) -> list[UnitRef]:
        return list_export_units(self, self.suffixes, self.what)

    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts: list[pa.Table] = []
        for f in unit.files:
            parts.extend(self.read_file(Path(f), unit.participant))
        return UnitInput(unit, parts)

    def read_file(self, path: Path, participant: Participant) -> list[pa.Table]:
        raise NotImplementedError


def read_text(path: Path, kind: str) -> str:
    """A text recording, decoded (UTF-8, BOM removed; Latin-1 for older Windows exports); errors name the file."""
    data = file_bytes(path, f"expected {kind}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")
