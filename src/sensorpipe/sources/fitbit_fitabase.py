"""Fitabase / Kaggle "Fitbit Fitness Tracker Data" exports: the ``*_merged.csv`` files.

One folder (or several, e.g. the Kaggle set's two month folders, found
recursively) holds one CSV per metric with every participant in it, keyed by
the ``Id`` column:

=====================================  =====================================  ==========================
file                                   columns                                canonical channel
=====================================  =====================================  ==========================
``heartrate_seconds_merged.csv``       Id,Time,Value (bpm, ~5 s)              heart_rate
``minuteStepsNarrow_merged.csv``       Id,ActivityMinute,Steps                steps
``minuteCaloriesNarrow_merged.csv``    Id,ActivityMinute,Calories (kcal)      calories
``minuteIntensitiesNarrow_merged.csv`` Id,ActivityMinute,Intensity (0-3)      activity_intensity
``minuteSleep_merged.csv``             Id,date,value,logId                    sleep_stage
``minute{Steps,Calories,Intensities}   Id,ActivityHour,Steps00..Steps59 ...   as their narrow twins
Wide_merged.csv``                      (melted to one row per minute)
``sleepDay_merged.csv``                Id,SleepDay,TotalSleepRecords,...      none (daily summary)
=====================================  =====================================  ==========================

Times are the participant's local wall clock with no zone, written
``M/D/YYYY h:mm:ss AM/PM`` (``4/12/2016 7:21:00 AM``); minuteSleep rows sit
at ``:30`` seconds. The zone comes from the participants table, else
``options.tz``. DST rules are :mod:`sensorpipe.core.timeparse`'s: a
skipped-hour time is quarantined as ``nonexistent_local_time``, a repeated
hour's first occurrence is the earlier instant (per file; per ``logId`` for
sleep). A wide row's minute ``k`` is its ``ActivityHour`` instant plus ``k``
minutes (every DST change falls on a whole hour).

Sleep values: 1 asleep -> 4 "asleep (unstaged)"; 2 restless and 3 awake -> 0
"awake / not asleep", as Fitbit itself counts them (a classic log's
``minutesAsleep`` excludes restless minutes: ``minutesAwake`` = awake +
restless duration). Numbers other than 1/2/3 are not guessed at: they get the
field ``minuteSleep.value_not_1_2_3`` and are quarantined as unknown_field.

The CSV helpers here (line-exact reading, malformed lines kept as rows, safe
local-time parsing) are shared with :mod:`sensorpipe.sources.fitbit_takeout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe._arrow import dictionary_codes
from sensorpipe.config import ConfigError
from sensorpipe.core import timeparse
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources._toolkit.text_csv import (first_cell, is_number, labels, malformed_part, native_part,
                                                  parse_local_safe, read_text_csv)
from sensorpipe.sources.base import SourceAdapter, SourceError, check_zone_option
from sensorpipe.sources.partition import partition_file, read_stream

FITABASE_TIME = "%m/%d/%Y %I:%M:%S %p"
MALFORMED_TEXT = "__malformed_text"   # in a partition: a malformed line's text (null on a well-formed row)
SLEEP_OTHER = "minuteSleep.value_not_1_2_3"
SLEEP_CODES = {"1": 4, "2": 0, "3": 0}   # asleep -> asleep (unstaged); restless, awake -> awake


@dataclass(frozen=True)
class _Kind:
    time_column: str
    value_column: str        # narrow: the value column; wide: the prefix of the 60 minute columns
    field: str
    wide_of: str = ""        # a wide file: the name of its narrow twin


KINDS: dict[str, _Kind] = {
    "heartrate_seconds_merged.csv": _Kind("Time", "Value", "heartrate_seconds.Value"),
    "minuteStepsNarrow_merged.csv": _Kind("ActivityMinute", "Steps", "minuteStepsNarrow.Steps"),
    "minuteCaloriesNarrow_merged.csv": _Kind("ActivityMinute", "Calories", "minuteCaloriesNarrow.Calories"),
    "minuteIntensitiesNarrow_merged.csv": _Kind("ActivityMinute", "Intensity", "minuteIntensitiesNarrow.Intensity"),
    "minuteSleep_merged.csv": _Kind("date", "value", "minuteSleep.value"),
    "sleepDay_merged.csv": _Kind("SleepDay", "TotalMinutesAsleep", "sleepDay.TotalMinutesAsleep"),
    "minuteStepsWide_merged.csv": _Kind("ActivityHour", "Steps", "minuteStepsWide.Steps",
                                        "minuteStepsNarrow_merged.csv"),
    "minuteCaloriesWide_merged.csv": _Kind("ActivityHour", "Calories", "minuteCaloriesWide.Calories",
                                           "minuteCaloriesNarrow_merged.csv"),
    "minuteIntensitiesWide_merged.csv": _Kind("ActivityHour", "Intensity", "minuteIntensitiesWide.Intensity",
                                              "minuteIntensitiesNarrow_merged.csv"),
}

_FIELDS = (
    FieldSpec("heartrate_seconds.Value", "heart_rate", "bpm"),
    FieldSpec("minuteStepsNarrow.Steps", "steps", "steps/min"),
    FieldSpec("minuteStepsWide.Steps", "steps", "steps/min"),
    FieldSpec("minuteCaloriesNarrow.Calories", "calories", "kcal/min"),
    FieldSpec("minuteCaloriesWide.Calories", "calories", "kcal/min"),
    FieldSpec("minuteIntensitiesNarrow.Intensity", "activity_intensity", "level 0-3"),
    FieldSpec("minuteIntensitiesWide.Intensity", "activity_intensity", "level 0-3"),
    FieldSpec("minuteSleep.value", "sleep_stage", "stage code", dict(SLEEP_CODES)),
)


class FitbitFitabaseAdapter(SourceAdapter):
    """Fitabase ``*_merged.csv`` files, every participant in each file (``Id`` column)."""

    name = "fitbit_fitabase"
    description = ("Fitabase / Kaggle 'Fitbit Fitness Tracker Data' _merged.csv files: heart rate (seconds), "
                   "minute steps, calories, intensity (narrow or wide) and minute sleep")
    time_convention = ("local wall clock 'M/D/YYYY h:mm:ss AM/PM' with no zone, in the participant's IANA zone "
                       "(participants table, else options.tz); wide files: ActivityHour + column minute")
    channels = ("heart_rate", "steps", "calories", "activity_intensity", "sleep_stage")
    drops = ("sleepDay_merged.csv daily totals (rows kept as unmapped field sleepDay.TotalMinutesAsleep, "
             "quarantined as unknown_field: a daily total is no minute reading); a minute...Wide_merged.csv file "
             "whose narrow twin is in the same folder is not read (same minutes; list both in options.files to "
             "read both, the repeats are then quarantined as duplicates); minuteSleep values other than 1/2/3 "
             "(field minuteSleep.value_not_1_2_3) and lines with the wrong number of columns (field "
             "malformed_line), both quarantined as unknown_field; daily..., hourly..., minuteMETs and weightLogInfo files "
             "are not read (summaries of the minute files, or no canonical channel)")

    @dataclass(frozen=True)
    class Options:
        files: tuple[str, ...] = ()   # file names to read; default: every known file present
        tz: str | None = None         # IANA zone of participants missing from the participants table

        def validate(self, path: str) -> None:
            for f in self.files:
                if f not in KINDS:
                    raise ConfigError(f"{path}.files: unknown file {f!r}; known: {', '.join(KINDS)}")
            check_zone_option(self.tz, f"{path}.tz")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=_FIELDS)

    # --- units -----------------------------------------------------------
    def _files(self) -> list[Path]:
        root = self.root
        if root.is_file():  # one merged CSV: its Id column still names the participants
            if root.name not in (self.options.files or KINDS):
                raise SourceError(f"source {self.source.name!r}: {root.name!r} is not a Fitabase file read here (known: "
                                  f"{', '.join(self.options.files or KINDS)}); give the file or its folder")
            return [root]
        paths = []
        for name in self.options.files or tuple(KINDS):
            for p in sorted(root.rglob(name)):
                twin = KINDS[name].wide_of
                if twin and not self.options.files and (p.parent / twin).exists():
                    continue  # narrow preferred: the same minutes, without the melt
                paths.append(p)
        if not paths:
            raise SourceError(f"source {self.source.name!r}: no Fitabase file ({', '.join(KINDS)}) under {root}")
        return sorted(paths)

    def list_units(self) -> list[UnitRef]:
        table = self.participants()
        files_of: dict[str, set[tuple[str, str, str]]] = {}   # participant -> {(file, partition stream, fingerprint)}
        for p in self._files():
            for pid, stream, fp in self._participants_in(p):
                files_of.setdefault(pid, set()).add((str(p), stream, fp))
        units = []
        for pid in sorted(files_of):
            entries = sorted(files_of[pid])
            units.append(UnitRef(self.source, self.base_dir, self.resolve_participant(pid, table, entries[0][0]),
                                 tuple(e[0] for e in entries), partitions=tuple(e[1] for e in entries),
                                 fingerprints=tuple(e[2] for e in entries)))
        return units

    def _participants_in(self, path: Path) -> list[tuple[str, str, str]]:
        """(participant id, partition stream or "", fingerprint or "") of every participant of a merged file.

        In a run every merged file is read once and partitioned per ``Id``
        (:mod:`sensorpipe.sources.partition`), malformed lines going with the
        participant their first cell names; outside a run only the ids are read.
        """
        if self.work_dir is not None:
            part = partition_file(path, Path(self.work_dir) / "partitions" / self.source.name, "Id",
                                  lambda: self._batches(path, KINDS[path.name]))
            return [(pid, stream, part.fingerprint) for pid, (stream, _) in sorted(part.streams.items())]
        t, _, bad = read_text_csv(path, ["Id"])
        ids = set(pc.unique(_trimmed(t.column("Id"))).to_pylist()) | {first_cell(x) for _, x in bad}
        return [(pid, "", "") for pid in sorted(ids)]

    def _batches(self, path: Path, kind: _Kind):
        """The whole file as partition batches: every line in order (row number = line number), a malformed
        line as a row holding its text in MALFORMED_TEXT and its first cell as ``Id``."""
        t, lines, bad = read_text_csv(path, _columns(kind), optional=_optional(kind))
        t = t.append_column(MALFORMED_TEXT, pa.nulls(t.num_rows, pa.string()))
        if bad:
            cells = {c: pa.nulls(len(bad), pa.string()) for c in t.column_names}
            cells["Id"] = pa.array([first_cell(x) for _, x in bad], pa.string())
            cells[MALFORMED_TEXT] = pa.array([x for _, x in bad], pa.string())
            t = pa.concat_tables([t, pa.table(cells, schema=t.schema)])
            lines = np.r_[lines, [b[0] for b in bad]]
            t = t.take(pa.array(np.argsort(lines, kind="stable")))
        first = 2   # line 1 is the header; every later line is a row here (read_text_csv numbers them all)
        for batch in t.to_batches():
            yield batch, first
            first += batch.num_rows

    # --- reading ---------------------------------------------------------
    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts: list[pa.Table] = []
        streams = unit.partitions or ("",) * len(unit.files)
        for f, stream in zip(unit.files, streams):
            path = Path(f)
            kind = KINDS[path.name]
            parts.extend(self._read_wide(path, kind, unit.participant, stream) if kind.wide_of
                         else self._read_narrow(path, kind, unit.participant, stream))
        return UnitInput(unit, parts)

    def _rows_of(self, path: Path, kind: _Kind, who: Participant, stream: str):
        """(table, line numbers, malformed lines) of one participant: their partition, else the whole file
        filtered (``bad`` holds every malformed line then; :func:`malformed_part` keeps theirs)."""
        if stream:
            t, rows = read_stream(stream)
            text = t.column(MALFORMED_TEXT)
            bad_rows = text.is_valid().to_numpy(zero_copy_only=False)
            bad = list(zip(rows[bad_rows].tolist(), text.filter(pa.array(bad_rows)).to_pylist()))
            keep = ~bad_rows
            return t.drop_columns([MALFORMED_TEXT]).filter(pa.array(keep)), rows[keep], bad
        t, lines, bad = read_text_csv(path, _columns(kind), optional=_optional(kind))
        keep = pc.equal(_trimmed(t.column("Id")), who.participant_id).to_numpy(zero_copy_only=False)
        return t.filter(pa.array(keep)), lines[keep], bad

    def _read_narrow(self, path: Path, kind: _Kind, who: Participant, stream: str = "") -> list[pa.Table]:
        sleep = kind.field == "minuteSleep.value"
        t, lines, bad = self._rows_of(path, kind, who, stream)
        raw_time = _flat(t.column(kind.time_column))
        log_ids = _codes(t.column("logId")) if sleep and "logId" in t.column_names else None
        t_ns, err = parse_local_safe(raw_time, FITABASE_TIME, who.tz, log_ids, path)
        value = _flat(t.column(kind.value_column))
        field: str | pa.Array = kind.field
        if sleep:  # a number other than 1/2/3 is no known sleep code: never read it as a stage
            text = pc.utf8_trim_whitespace(value)
            other = is_number(text) & ~pc.is_in(text, value_set=pa.array(list(SLEEP_CODES))).to_numpy(
                zero_copy_only=False)
            field = labels(other.astype(np.int32), [kind.field, SLEEP_OTHER])
        parts = [native_part(who.participant_id, field, raw_time, t_ns, err, value, path, lines)]
        return parts + malformed_part(who.participant_id, bad, path, by_first_cell=True)

    def _read_wide(self, path: Path, kind: _Kind, who: Participant, stream: str = "") -> list[pa.Table]:
        minute_cols = _minute_columns(kind)
        t, lines, bad = self._rows_of(path, kind, who, stream)
        n = t.num_rows
        hours = _flat(t.column(kind.time_column))
        t_hour, err_hour = parse_local_safe(hours, FITABASE_TIME, who.tz, None, path)
        row = np.repeat(np.arange(n), 60)          # row-major melt: hour row, then its 60 minutes
        minute = np.tile(np.arange(60), n)
        t_ns = np.where(t_hour[row] == timeparse.NAT, timeparse.NAT, t_hour[row] + minute * 60_000_000_000)
        stacked = pa.concat_arrays([_flat(t.column(c)) for c in minute_cols]) if n else pa.array([], pa.string())
        value = stacked.take(pa.array(minute * n + row))
        time = pc.binary_join_element_wise(hours.take(pa.array(row)), pa.array(np.array(minute_cols)[minute]), " ")
        parts = [native_part(who.participant_id, kind.field, time, t_ns,
                             None if err_hour is None else err_hour[row], value, path, lines[row])]
        return parts + malformed_part(who.participant_id, bad, path, by_first_cell=True)


def _minute_columns(kind: _Kind) -> list[str]:
    return [f"{kind.value_column}{m:02d}" for m in range(60)]


def _columns(kind: _Kind) -> list[str]:
    """The columns a file of this kind is read with (a wide file: its 60 minute columns)."""
    return ["Id", kind.time_column, *(_minute_columns(kind) if kind.wide_of else [kind.value_column])]


def _optional(kind: _Kind) -> tuple[str, ...]:
    return ("logId",) if kind.field == "minuteSleep.value" else ()


def _flat(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _trimmed(col: pa.ChunkedArray) -> pa.Array:
    return pc.fill_null(pc.utf8_trim_whitespace(_flat(col)), "")


def _codes(col: pa.ChunkedArray) -> np.ndarray:
    return dictionary_codes(col)[0]
