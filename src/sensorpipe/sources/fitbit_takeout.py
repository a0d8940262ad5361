"""Fitbit account export (Google Takeout ``Fitbit/`` or ``Google Health/``): one folder per participant.

Each participant's export lies in ``<root>/<participant_id>/`` (any depth
below, e.g. ``Takeout/Fitbit/Global Export Data/``); with
``options.participant_id`` the source path is one export. The path may also
be one export file (``heart_rate-2024-03-10.json``): its participant is
``options.participant_id``, else its folder's name unless that is one of
Takeout's own folders. Files are recognized by name wherever they are:

==========================================================  ===============================  ==================
file                                                        shape                            channel
==========================================================  ===============================  ==================
``heart_rate-YYYY-MM-DD.json``                              ``{"dateTime": "03/10/24         heart_rate
                                                            00:00:05", "value": {"bpm": 62,
                                                            "confidence": 2}}``
``steps-/calories-/distance-YYYY-MM-DD.json`` (~monthly)    ``{"dateTime": ..., "value":     steps, calories,
                                                            "12"}`` per minute, STRING       distance (cm ->
                                                            values                           m, converted here)
``resting_heart_rate-YYYY-MM-DD.json``                      ``{"dateTime": "03/10/24         resting_heart_rate
                                                            00:00:00", "value": {"date":
                                                            "03/10/24", "value": 58.2,
                                                            "error": 7.1}}``
``sleep-YYYY-MM-DD.json``                                   sessions with ``levels.data`` /  sleep_stage
                                                            ``shortData`` segments
``Minute SpO2 - <date>.csv``                                ``timestamp,value``              spo2
``Heart Rate Variability Details - <date>.csv``             ``timestamp,rmssd,coverage,...`` hrv_rmssd
==========================================================  ===============================  ==================

Time conventions (Takeout writes no zone on most of them):

* intraday JSON (heart_rate, steps, calories, distance) and
  ``estimated_oxygen_variation``: ``MM/DD/YY HH:MM:SS`` in **UTC** (each
  day file starts at local midnight, e.g. ``07:00:00`` for a US Pacific
  summer day); ``options.intraday_time: local`` reads them as local wall
  clock instead, for exports that turn out otherwise.
* sleep segments, HRV, temperature CSVs: ISO-8601 without zone = **local**
  wall clock; a timestamp with ``Z`` or an offset (Minute SpO2 writes ``Z``)
  is taken as written.
* resting heart rate: a local date, placed at local midnight.

Local times use the participant's zone (participants table, else
``options.tz``) and the DST rules of :mod:`sensorpipe.core.timeparse`
(skipped hour quarantined, a repeated wall clock's first occurrence is the
earlier instant, per sleep session and segment list).

Sleep segments are expanded into one row per 30-s epoch from each segment's
start (``seconds`` is elapsed time, so a segment across a DST change keeps
its real length): stages ``wake/light/deep/rem`` -> 0/1/2/3, classic
``asleep`` -> 4, ``restless``/``awake`` -> 0 (Fitbit counts restless minutes
as awake). ``shortData`` (short wakes) overrides the ``data`` epochs it
overlaps; the overridden epochs are kept as the unmapped field
``sleep.level_superseded_by_shortData``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe.config import ConfigError
from sensorpipe.core import timeparse
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources._toolkit.text_csv import (csv_columns, implausible_year, is_number, json_text, labels,
                                                  malformed_part, native_part, parse_local_safe, read_json,
                                                  read_text_csv)
from sensorpipe.sources.base import SourceAdapter, SourceError, check_zone_option

MDY = "%m/%d/%y %H:%M:%S"
EPOCH_S = 30
STAGES = {"wake": 0, "light": 1, "deep": 2, "rem": 3, "asleep": 4, "restless": 0, "awake": 0}
SLEEP_FIELDS = ("sleep.level", "sleep.shortData.level", "sleep.level_superseded_by_shortData",
                "sleep.invalid_segment", "sleep.session_without_levels")
SPO2_SENTINEL_FIELD = "minute_spo2.value_sentinel"
GENERIC_FOLDERS = {"Takeout", "Fitbit", "Google Health", "Global Export Data", "Physical Activity"}
_OFFSET_RE = r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$"


@dataclass(frozen=True)
class _Kind:
    pattern: str
    reader: Literal["json", "sleep", "csv"]
    field: str
    path: tuple[str, ...]                  # json: keys of the value; csv: (time column, value column)
    time: Literal["intraday", "local_mdy", "iso"]


KINDS: dict[str, _Kind] = {
    "heart_rate": _Kind(r"heart_rate-\d{4}-\d{2}-\d{2}\.json", "json", "heart_rate.bpm", ("value", "bpm"), "intraday"),
    "steps": _Kind(r"steps-\d{4}-\d{2}-\d{2}\.json", "json", "steps.value", ("value",), "intraday"),
    "calories": _Kind(r"calories-\d{4}-\d{2}-\d{2}\.json", "json", "calories.value", ("value",), "intraday"),
    "distance": _Kind(r"distance-\d{4}-\d{2}-\d{2}\.json", "json", "distance.value", ("value",), "intraday"),
    "resting_heart_rate": _Kind(r"resting_heart_rate-\d{4}-\d{2}-\d{2}\.json", "json", "resting_heart_rate.value",
                                ("value", "value"), "local_mdy"),
    "sleep": _Kind(r"sleep-\d{4}-\d{2}-\d{2}\.json", "sleep", "sleep.level", (), "iso"),
    "minute_spo2": _Kind(r"Minute SpO2 - .+\.csv", "csv", "minute_spo2.value", ("timestamp", "value"), "iso"),
    "hrv_details": _Kind(r"Heart Rate Variability Details - .+\.csv", "csv", "hrv_details.rmssd",
                         ("timestamp", "rmssd"), "iso"),
    # read and counted, but mapped to no channel (see ``drops``)
    "estimated_oxygen_variation": _Kind(r"estimated_oxygen_variation-\d{4}-\d{2}-\d{2}\.csv", "csv",
                                        "estimated_oxygen_variation", ("timestamp", "Infrared to Red Signal Ratio"),
                                        "intraday"),
    "hrv_daily_summary": _Kind(r"Daily Heart Rate Variability Summary - .+\.csv", "csv", "daily_hrv_summary.rmssd",
                               ("timestamp", "rmssd"), "iso"),
    "computed_temperature": _Kind(r"Computed Temperature - .+\.csv", "csv", "computed_temperature.nightly_temperature",
                                  ("sleep_start", "nightly_temperature"), "iso"),
    "wrist_temperature": _Kind(r"Wrist Temperature - .+\.csv", "csv", "wrist_temperature.temperature",
                               ("recorded_time", "temperature"), "iso"),
    "device_temperature": _Kind(r"Device Temperature - .+\.csv", "csv", "device_temperature.temperature",
                                ("recorded_time", "temperature"), "iso"),
}
_MATCHERS = [(name, re.compile(k.pattern)) for name, k in KINDS.items()]

_FIELDS = (
    FieldSpec("heart_rate.bpm", "heart_rate", "bpm"),
    FieldSpec("steps.value", "steps", "steps/min"),
    FieldSpec("calories.value", "calories", "kcal/min"),
    FieldSpec("distance.value", "distance", "cm/min"),         # the export writes centimetres per minute
    FieldSpec("resting_heart_rate.value", "resting_heart_rate", "bpm"),
    FieldSpec("sleep.level", "sleep_stage", "stage code", dict(STAGES)),
    FieldSpec("sleep.shortData.level", "sleep_stage", "stage code", dict(STAGES)),
    FieldSpec("minute_spo2.value", "spo2", "%"),
    FieldSpec("hrv_details.rmssd", "hrv_rmssd", "ms"),
)


_MAPPED = {f.name for f in _FIELDS}


def kind_of(name: str) -> str | None:
    """The export file kind a file name belongs to, or None."""
    return next((k for k, rx in _MATCHERS if rx.fullmatch(name)), None)


class FitbitTakeoutAdapter(SourceAdapter):
    """Fitbit Takeout exports, one participant per export folder."""

    name = "fitbit_takeout"
    description = ("Fitbit account export (Google Takeout 'Global Export Data' JSON + SpO2/HRV/temperature CSVs): "
                   "heart rate, minute steps/calories/distance, resting HR, sleep stages, minute SpO2, HRV rmssd")
    time_convention = ("intraday JSON 'MM/DD/YY HH:MM:SS' in UTC (options.intraday_time: local to change); sleep, "
                       "HRV and temperature ISO without zone = participant's local wall clock; ISO with Z/offset "
                       "as written; resting heart rate = local date at local midnight")
    channels = ("heart_rate", "steps", "calories", "distance", "resting_heart_rate", "sleep_stage", "spo2",
                "hrv_rmssd")
    drops = ("read but mapped to no channel, quarantined as unknown_field: skin/wrist/device temperature and "
             "Computed Temperature (relative to a personal baseline, or one nightly summary; not absolute skin "
             "degC), Daily HRV Summary (a nightly summary), estimated_oxygen_variation (an IR/red ratio, not SpO2), "
             "Minute SpO2 rows equal to options.spo2_sentinel (50.0: Fitbit's floor for invalid readings), sleep "
             "epochs overridden by shortData, sleep segments with invalid seconds, sessions without segments, CSV "
             "lines with the wrong number of columns. Not read: session summaries, daily activity/zone/VO2/"
             "readiness/stress files, Physical Activity_GoogleData CSVs (the same minutes again), GPS, profile")

    @dataclass(frozen=True)
    class Options:
        participant_id: str | None = None     # the source path is this participant's single export
        tz: str | None = None                 # IANA zone when the participants table has no row
        intraday_time: Literal["utc", "local"] = "utc"
        metrics: tuple[str, ...] = ()         # file kinds to read (keys of KINDS); default all
        spo2_sentinel: float | None = 50.0    # Minute SpO2 value meaning "no valid reading"

        def validate(self, path: str) -> None:
            for m in self.metrics:
                if m not in KINDS:
                    raise ConfigError(f"{path}.metrics: unknown {m!r}; known: {', '.join(KINDS)}")
            check_zone_option(self.tz, f"{path}.tz")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=_FIELDS)

    # --- units -----------------------------------------------------------
    def _files_in(self, folder: Path) -> list[Path]:
        wanted = set(self.options.metrics or KINDS)
        return sorted(p for p in folder.rglob("*") if p.is_file() and kind_of(p.name) in wanted)

    def list_units(self) -> list[UnitRef]:
        table, root = self.participants(), self.root
        if root.is_file():
            return [self._single_file_unit(root, table)]
        if self.options.participant_id:
            groups = [(self.options.participant_id, root)]
        else:
            direct = [p for p in sorted(root.iterdir()) if p.is_file() and kind_of(p.name)]
            if direct:
                raise SourceError(f"{direct[0]}: export files directly under {root}; put each participant's export "
                                  f"in a folder named after the participant, or set options.participant_id")
            groups = [(p.name, p) for p in sorted(root.iterdir()) if p.is_dir()]
        units = []
        for pid, folder in groups:
            files = self._files_in(folder)
            if not files:
                continue
            if not self.options.participant_id and pid in GENERIC_FOLDERS:
                raise SourceError(f"{folder}: {pid!r} is Takeout's own folder name, so {root} looks like one "
                                  f"export: set sources[{self.source.name}].options.participant_id, or put each "
                                  f"export in a folder named after its participant")
            units.append(UnitRef(self.source, self.base_dir, self.resolve_participant(pid, table, folder),
                                 tuple(str(f) for f in files)))
        if not units:
            raise SourceError(f"source {self.source.name!r}: no Fitbit export file (heart_rate-*.json, "
                              f"sleep-*.json, ...) under {root}")
        return units

    def _single_file_unit(self, path: Path, table: dict[str, Participant]) -> UnitRef:
        """One export file (``heart_rate-2024-03-10.json``) as its own unit: the participant is
        ``options.participant_id`` (``convert --participant``), else the folder the export lies in unless
        that is one of Takeout's own folder names (``Global Export Data``), which name nobody."""
        kind = kind_of(path.name)
        if kind is None or kind not in set(self.options.metrics or KINDS):
            raise SourceError(f"{path}: not a Fitbit export file this source reads (heart_rate-YYYY-MM-DD.json, "
                              f"sleep-YYYY-MM-DD.json, Minute SpO2 - <date>.csv, ...; options.metrics: "
                              f"{', '.join(self.options.metrics) or 'all'}); give such a file or the export folder")
        pid = self.options.participant_id or path.parent.name
        if not self.options.participant_id and pid in GENERIC_FOLDERS:
            raise SourceError(f"{path}: one export file names no participant (it lies in Takeout's own folder "
                              f"{pid!r}): set sources[{self.source.name}].options.participant_id (convert: "
                              f"--participant ID)")
        return UnitRef(self.source, self.base_dir, self.resolve_participant(pid, table, path), (str(path),))

    # --- reading ---------------------------------------------------------
    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts: list[pa.Table] = []
        for f in unit.files:
            path = Path(f)
            kind = KINDS[kind_of(path.name)]
            reader = {"json": self._read_json, "sleep": self._read_sleep, "csv": self._read_csv}[kind.reader]
            parts.extend(reader(path, kind, unit.participant))
        return UnitInput(unit, parts)

    def _times(self, raw: pa.Array, kind: _Kind, who: Participant, path: Path, stream=None):
        if kind.time == "iso":
            return parse_iso_or_local(raw, who.tz, stream, path)
        tz = "UTC" if kind.time == "intraday" and self.options.intraday_time == "utc" else who.tz
        return parse_local_safe(raw, MDY, tz, stream, path)

    def _read_json(self, path: Path, kind: _Kind, who: Participant) -> list[pa.Table]:
        records = json_records(path)
        time, value = columns(records, [("dateTime",), kind.path])
        t_ns, err = self._times(time, kind, who, path)
        return [native_part(who.participant_id, kind.field, time, t_ns, err, value, path,
                            np.arange(len(records), dtype=np.int64))]

    def _read_csv(self, path: Path, kind: _Kind, who: Participant) -> list[pa.Table]:
        time_col, value_col = kind.path
        header = csv_columns(path)
        if kind.field not in _MAPPED and not {time_col, value_col} <= set(header) and len(set(header[:2])) == 2:
            time_col, value_col = header[:2]  # an unmapped file whose layout drifted: still count its lines
        t, lines, bad = read_text_csv(path, [time_col, value_col])
        time, value = _flat(t.column(time_col)), _flat(t.column(value_col))
        t_ns, err = self._times(time, kind, who, path)
        field: str | pa.Array = kind.field
        sentinel = self.options.spo2_sentinel
        if kind.field == "minute_spo2.value" and sentinel is not None:
            text = pc.utf8_trim_whitespace(value)
            num = is_number(text)
            hit = np.zeros(len(text), bool)
            hit[num] = pc.cast(text.filter(pa.array(num)), pa.float64()).to_numpy(zero_copy_only=False) == sentinel
            field = labels(hit.astype(np.int32), [kind.field, SPO2_SENTINEL_FIELD])
        return [native_part(who.participant_id, field, time, t_ns, err, value, path, lines)] + \
            malformed_part(who.participant_id, bad, path, by_first_cell=False)

    def _read_sleep(self, path: Path, kind: _Kind, who: Participant) -> list[pa.Table]:
        sessions = json_records(path)
        seg: dict[str, list] = {"time": [], "level": [], "seconds": [], "stream": [], "short": [], "row": []}
        empty: list[tuple[int, Any, Any]] = []
        for i, s in enumerate(sessions):  # one pass per session; its segments are plain lists
            levels = s.get("levels") if isinstance(s, dict) else None
            n_before = len(seg["row"])
            for short, key in ((False, "data"), (True, "shortData")):
                items = levels.get(key) if isinstance(levels, dict) else None
                for d in items if isinstance(items, list) else ():
                    d = d if isinstance(d, dict) else {}
                    seg["time"].append(json_text(d.get("dateTime")))
                    seg["level"].append(json_text(d.get("level")))
                    seg["seconds"].append(d.get("seconds"))
                    seg["stream"].append(2 * i + short)
                    seg["short"].append(short)
                    seg["row"].append(i)
            if len(seg["row"]) == n_before:
                empty.append((i, s.get("startTime") if isinstance(s, dict) else None,
                              s.get("type") if isinstance(s, dict) else None))
        parts = []
        if seg["row"]:
            parts.append(self._expand(seg, path, who))
        if empty:
            time = pa.array([json_text(e[1]) for e in empty], pa.string())
            t_ns, err = parse_iso_or_local(time, who.tz, None, path)
            parts.append(native_part(who.participant_id, SLEEP_FIELDS[4], time, t_ns, err,
                                     pa.array([json_text(e[2]) for e in empty], pa.string()), path,
                                     np.array([e[0] for e in empty], np.int64)))
        return parts

    def _expand(self, seg: dict[str, list], path: Path, who: Participant) -> pa.Table:
        """Segments -> one row per 30-s epoch (vectorized over all segments of the file)."""
        stream = np.array(seg["stream"], np.int64)
        short = np.array(seg["short"], bool)
        seg_time = pa.array(seg["time"], pa.string())
        t_seg, err_seg = parse_iso_or_local(seg_time, who.tz, stream, path)
        secs = np.array([s if isinstance(s, (int, float)) and not isinstance(s, bool) else np.nan
                         for s in seg["seconds"]], np.float64)
        valid = np.isfinite(secs) & (secs > 0) & (secs <= 86_400)
        n_ep = np.where(valid, np.ceil(np.where(valid, secs, 1) / EPOCH_S), 1).astype(np.int64)
        rep = np.repeat(np.arange(len(n_ep)), n_ep)
        k = np.arange(rep.size) - np.repeat(np.cumsum(n_ep) - n_ep, n_ep)
        t_ns = np.where(t_seg[rep] == timeparse.NAT, timeparse.NAT, t_seg[rep] + k * EPOCH_S * 10**9)
        code = np.where(short[rep], 1, 0)
        code[~valid[rep]] = 3
        for s in np.unique(stream[short]):  # a short wake overrides the data epochs of its session it overlaps
            session_rows = stream[rep] == s - 1
            hit = session_rows & (code == 0) & np.isin(t_ns, t_ns[(stream[rep] == s) & (code == 1)])
            code[hit & (t_ns != timeparse.NAT)] = 2
        suffix = np.where(k == 0, "", np.char.add(np.char.add(" +", (k * EPOCH_S).astype(str)), "s"))
        time = pc.binary_join_element_wise(seg_time.take(pa.array(rep)), pa.array(suffix, pa.string()), "")
        value = pc.dictionary_encode(pa.array(seg["level"], pa.string())).take(pa.array(rep))  # a few levels
        return native_part(who.participant_id, labels(code, list(SLEEP_FIELDS[:4])), time, t_ns,
                           None if err_seg is None else err_seg[rep], value, path, np.array(seg["row"])[rep])


# --- helpers ------------------------------------------------------------------------------------

def json_records(path: Path) -> list:
    """The top-level JSON array of an export file; a SourceError names the file and line otherwise."""
    records = read_json(path, "a Fitbit export file holds a JSON array of records", "export it again")
    if not isinstance(records, list):
        raise SourceError(f"{path}: expected a JSON array of records at the top level, found "
                          f"{type(records).__name__}")
    return records


def columns(records: list, paths: list[tuple[str, ...]]) -> list[pa.Array]:
    """Leaf values at ``paths`` (keys into each record) as Arrow arrays: numbers stay numbers, others text.

    Fast path: Arrow converts the whole list of dicts at once. Records of mixed
    shapes (a broken file) fall back to a per-record walk.
    """
    try:
        arr = pa.array(records)
        ok = pa.types.is_struct(arr.type)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        ok = False
    out = []
    for keys in paths:
        if ok:
            cur = arr
            for key in keys:
                if pa.types.is_struct(cur.type) and cur.type.get_field_index(key) >= 0:
                    cur = pc.struct_field(cur, key)
                else:
                    cur = pa.nulls(len(records))
                    break
            out.append(_leaf(cur.to_pylist() if not _plain(cur.type) else cur))
        else:
            out.append(_leaf([_walk(r, keys) for r in records]))
    return out


def _walk(obj: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _plain(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t) or pa.types.is_null(t)


def _leaf(values: pa.Array | list) -> pa.Array:
    """A value column: int/float/string as they are, nulls as null text, anything else as JSON text."""
    if isinstance(values, pa.Array):
        return pc.cast(values, pa.string()) if pa.types.is_null(values.type) else values
    try:
        arr = pa.array(values)
        if _plain(arr.type):
            return pc.cast(arr, pa.string()) if pa.types.is_null(arr.type) else arr
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        pass
    return pa.array([json_text(v) for v in values], pa.string())


def _flat(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def parse_iso_or_local(raw: pa.Array, tz: str, stream: np.ndarray | None,
                       path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """ISO-8601 times: with ``Z``/an offset as written (UTC), without one as local wall clock in ``tz``."""
    raw = pc.cast(raw, pa.string())
    n = len(raw)
    if n == 0:
        return np.zeros(0, np.int64), None
    has_offset = pc.fill_null(pc.match_substring_regex(raw, _OFFSET_RE), False).to_numpy(zero_copy_only=False)
    local = np.flatnonzero(~has_offset)
    if local.size == n:
        return parse_local_safe(raw, "ISO8601", tz, stream, path)
    out = np.full(n, timeparse.NAT, np.int64)
    err = np.full(n, None, dtype=object)
    if local.size:
        t, e = parse_local_safe(raw.take(pa.array(local)), "ISO8601", tz,
                                None if stream is None else stream[local], path)
        out[local], err[local] = t, (e if e is not None else None)
    off = np.flatnonzero(has_offset)
    sane = off[~implausible_year(raw.take(pa.array(off)))]
    err[np.setdiff1d(off, sane)] = timeparse.UNPARSEABLE
    if sane.size:
        try:
            t, e = timeparse.parse_iso(raw.take(pa.array(sane)))
        except (ValueError, TypeError, OverflowError) as ex:
            raise SourceError(f"{path}: ISO-8601 times could not be read ({str(ex)[:120]})") from None
        out[sane], err[sane] = t, (e if e is not None else None)
    return out, (err if np.not_equal(err, None).any() else None)
