"""Garmin activity files: FIT, TCX and GPX, one participant per folder.

Layout: ``<root>/<participant_id>/**/*.fit|*.tcx|*.gpx`` (any depth below the
participant folder); files directly in ``<root>`` belong to
``options.participant_id`` (default: the root folder's name). The zone used
for local-time features comes from the participants table, else
``options.tz``; the timestamps themselves are UTC.

Times: FIT ``timestamp`` is seconds since 1989-12-31 00:00 UTC (kept verbatim
in ``time``; values below 0x10000000 are device-relative "system time" and
end up quarantined as ``implausible_time``). TCX and GPX times are ISO-8601
with ``Z``. ``source_row`` is the 1-based ordinal of the FIT ``record``
message or of the TCX/GPX trackpoint.

FIT files are decoded with ``fitdecode`` (MIT) with CRC checking on: a
damaged or truncated file raises :class:`SourceError` instead of giving part
of an activity. Rows and their derivation (distance increments, steps from
running cadence) are described in :mod:`sensorpipe.sources.garmin._common`.
One activity exported twice (e.g. FIT and TCX) in the same participant folder
gives duplicate rows, which validation quarantines as duplicates: keep one
format per activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import UnitRef
from sensorpipe.core.timeparse import NAT, UNPARSEABLE
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.garmin._common import Track, is_step_sport, sport_bouts, to_float, track_tables
from sensorpipe.sources.garmin._xml import read_gpx, read_tcx
from sensorpipe.sources._toolkit.memo import Memo, file_versions
from sensorpipe.sources.base import SourceAdapter, SourceError

#: seconds from 1970-01-01 to the FIT epoch 1989-12-31 00:00 UTC
FIT_EPOCH_S = 631_065_600


def read_fit(path: Path) -> Track:
    """Record messages of a FIT activity file (fitdecode, CRC checked)."""
    try:
        import fitdecode
    except ImportError:  # pragma: no cover - a declared dependency
        raise SourceError(f"{path}: reading FIT files needs the 'fitdecode' package (pip install fitdecode)") from None
    ts, hr, cad, frac, dist, has_dist = [], [], [], [], [], []
    sessions: list[tuple[int, str]] = []
    sports: list[str] = []
    try:
        with fitdecode.FitReader(str(path), processor=None, check_crc=fitdecode.CrcCheck.RAISE,
                                 error_handling=fitdecode.ErrorHandling.IGNORE) as reader:
            for frame in reader:
                if frame.frame_type != fitdecode.FIT_FRAME_DATA:
                    continue
                if frame.name == "record":
                    v = {f.name: f.value for f in frame.fields}
                    ts.append(v.get("timestamp"))
                    hr.append(v.get("heart_rate"))
                    cad.append(v.get("cadence"))
                    frac.append(v.get("fractional_cadence"))
                    dist.append(v.get("distance"))
                    has_dist.append(v.get("distance") is not None)
                elif frame.name in ("session", "sport"):
                    v = {f.name: f.value for f in frame.fields}
                    if frame.name == "sport":
                        sports.append(str(v.get("sport")))
                    elif isinstance(v.get("start_time"), int):
                        sessions.append((v["start_time"], str(v.get("sport"))))
    except Exception as e:  # noqa: BLE001 - any decoder failure means the file is unreadable
        raise SourceError(f"{path}: cannot decode as a FIT file ({type(e).__name__}: {e}); the file is damaged or "
                          f"truncated (its CRC is checked): copy it from the device again, or move it out of the "
                          f"source folder") from None
    n = len(ts)
    raw_ts = np.array([t if isinstance(t, int) else -1 for t in ts], np.int64)
    bad = raw_ts < 0
    t_ns = np.where(bad, NAT, (raw_ts + FIT_EPOCH_S) * 1_000_000_000)
    err = None
    if bad.any():
        err = np.full(n, None, object)
        err[bad] = UNPARSEABLE
    cadence = to_float(cad) + np.nan_to_num(to_float(frac))
    sport = _record_sport(raw_ts, sessions, sports)
    return Track(time=pa.array([t if isinstance(t, int) else None for t in ts], pa.int64()), t_utc_ns=t_ns,
                 time_error=err, heart_rate=_numbers(hr), cadence=cadence,
                 step_sport=_step_flags(sport), distance_m=to_float(dist),
                 has_distance=np.array(has_dist, bool), row=np.arange(1, n + 1, dtype=np.int64), sport=sport)


def _numbers(values: list) -> pa.Array:
    """Decoded FIT values as an int64 column when they are all whole, else float64 (null where invalid)."""
    try:
        return pa.array(values, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array(to_float(values), pa.float64(), from_pandas=True)


def _record_sport(raw_ts: np.ndarray, sessions: list[tuple[int, str]], sports: list[str]) -> np.ndarray:
    """Per record, its sport: the session that started last before it decides (multisport); else the file's."""
    if sessions:
        sessions.sort()
        starts = np.array([s for s, _ in sessions], np.int64)
        names = np.array([sp for _, sp in sessions], dtype=object)
        idx = np.clip(np.searchsorted(starts, raw_ts, side="right") - 1, 0, None)
        return names[idx].astype(str)
    return np.full(raw_ts.shape[0], sports[0] if sports else "", dtype=object).astype(str)


def _step_flags(sport: np.ndarray) -> np.ndarray:
    """Per record: does its sport count steps (one check per distinct sport)."""
    names, inv = np.unique(sport, return_inverse=True)
    return np.array([is_step_sport(n) for n in names.tolist()], bool)[inv.reshape(-1)] if sport.size else \
        np.zeros(0, bool)


READERS = {".fit": read_fit, ".tcx": read_tcx, ".gpx": read_gpx}

#: each file's sport bouts, stored by the read (a few per file): the ``garmin_sport`` labels need them too
_BOUTS = Memo(4096)


def file_sport_bouts(path: Path) -> list[tuple[int, int, str]]:
    """``(start_utc_ns, end_utc_ns, sport)`` of the activity file (see ``sport_bouts``): from the unit's read
    in this process when the file is unchanged since, else parsed here."""
    return _BOUTS.get(file_versions([path]), lambda: sport_bouts(READERS[path.suffix.lower()](path)))


class GarminActivityAdapter(SourceAdapter):
    """Garmin FIT/TCX/GPX activity files; heart rate, distance per minute and running steps."""

    name = "garmin_activity"
    description = "Garmin activity files (.fit via fitdecode, .tcx, .gpx): 1 Hz heart rate, distance, running steps"
    time_convention = ("UTC: FIT timestamps are seconds since 1989-12-31 00:00 UTC; TCX and GPX times are "
                       "ISO-8601 with Z")
    channels = ("heart_rate", "distance", "steps")
    drops = ("position (lat/lon: no canonical channel), altitude, speed (distance comes from the cumulative "
             "distance counter instead), power, cycling cadence (pedal revolutions, not steps), temperature (the "
             "device's ambient temperature, not skin temperature), lap/session summaries (calories, totals, "
             "averages), device, event and HRV messages. A trackpoint without heart rate, distance or cadence "
             "gives no row for it; GPX has no distance counter, so GPX files give no distance")

    @dataclass(frozen=True)
    class Options:
        participant_id: str | None = None  # owner of files directly in the source folder (default: its name)
        tz: str | None = None              # zone for local-time features when the participants table has no row

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(
            FieldSpec("heart_rate", "heart_rate", "bpm"),
            FieldSpec("distance_increment", "distance", "m/min"),  # metres per trackpoint, summed per minute
            FieldSpec("run_steps", "steps", "steps/min"),           # steps per trackpoint, summed per minute
        ))

    def list_units(self) -> list[UnitRef]:
        root = self.root
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in READERS)
        if not files or files[0].suffix.lower() not in READERS:
            raise SourceError(f"source {self.source.name!r}: no .fit, .tcx or .gpx file under {root}; "
                              f"fix sources[].path")
        default_pid = self.options.participant_id or (root.parent.name if root.is_file() else root.name)
        groups: dict[str, list[Path]] = {}
        for f in files:
            rel = f.relative_to(root) if root.is_dir() else Path(f.name)
            groups.setdefault(rel.parts[0] if len(rel.parts) > 1 else default_pid, []).append(f)
        table = self.participants()
        return [self.unit_ref(self.resolve_participant(pid, table, fs[0]), fs) for pid, fs in sorted(groups.items())]

    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts: list[pa.Table] = []
        for f in unit.files:
            path = Path(f)
            track = READERS[path.suffix.lower()](path)
            _BOUTS.put(file_versions([path]), sport_bouts(track))
            parts.extend(track_tables(track, unit.participant, path))
        return UnitInput(unit, parts)

    def sport_bouts(self, unit: UnitRef) -> list[tuple[int, int, str]]:
        """``(start_utc_ns, end_utc_ns, sport)`` of each activity in the unit's files, file by file: what the
        ``garmin_sport`` labels read through the adapter (labels never import an adapter module)."""
        return [bout for f in unit.files for bout in file_sport_bouts(Path(f))]
