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
``options.tz``. DST rules are :mod:`sensorpipe.processing.timeparse`'s: a
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
import pyarrow.csv as pacsv

from sensorpipe._arrow import dictionary_codes
from sensorpipe.config import ConfigError
from sensorpipe.processing import timeparse
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.base import (NATIVE_COLUMNS, Participant, SourceAdapter, SourceError, UnitInput, UnitRef,
                                     check_zone_option, repeat_string)
from sensorpipe.sources.partition import partition_file, read_stream

FITABASE_TIME = "%m/%d/%Y %I:%M:%S %p"
MALFORMED = "malformed_line"      # unmapped field: a line with the wrong number of columns
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
        ids = set(pc.unique(_trimmed(t.column("Id"))).to_pylist()) | {_first_cell(x) for _, x in bad}
        return [(pid, "", "") for pid in sorted(ids)]

    def _batches(self, path: Path, kind: _Kind):
        """The whole file as partition batches: every line in order (row number = line number), a malformed
        line as a row holding its text in MALFORMED_TEXT and its first cell as ``Id``."""
        t, lines, bad = read_text_csv(path, _columns(kind), optional=_optional(kind))
        t = t.append_column(MALFORMED_TEXT, pa.nulls(t.num_rows, pa.string()))
        if bad:
            cells = {c: pa.nulls(len(bad), pa.string()) for c in t.column_names}
            cells["Id"] = pa.array([_first_cell(x) for _, x in bad], pa.string())
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


# --- shared helpers (also used by fitbit_takeout) ---------------------------------------------

def read_text_csv(path: Path, columns: list[str],
                  optional: tuple[str, ...] = ()) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
    """Read ``columns`` (and those of ``optional`` present) of a header CSV as text.

    Returns (table, 1-based line number per row, malformed lines). A line with
    the wrong number of columns is returned as ``(line, text)`` instead of
    failing the file; blank lines are rows of nulls (so every line is
    accounted for). Raises :class:`SourceError` naming the file when it is
    empty, is not UTF-8 text, or lacks a column.
    """
    data = _utf8_bytes(path, columns)
    header = _header(path, data, columns)
    columns = list(columns) + [c for c in optional if c in header and c not in columns]
    types = {c: pa.string() for c in columns}
    convert = pacsv.ConvertOptions(include_columns=columns, column_types=types, strings_can_be_null=True)
    for threads in (True, False):  # threaded parsing does not number bad lines: re-read in order if any
        bad: list[tuple[int | None, str]] = []

        def handler(row, bad=bad):
            bad.append((row.number, row.text))
            return "skip"

        try:
            t = pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(use_threads=threads),
                               parse_options=pacsv.ParseOptions(invalid_row_handler=handler, ignore_empty_lines=False),
                               convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowKeyError) as e:
            msg = str(e).splitlines()[0][:200]
            raise SourceError(f"{path}: cannot read as CSV with header {','.join(header)} ({msg}); "
                              f"the file must be comma-separated with columns {', '.join(columns)}") from None
        if not bad or all(b[0] is not None for b in bad):
            break
    bad_lines = np.array([b[0] for b in bad], np.int64)
    n = t.num_rows
    lines = np.arange(2, 2 + n + len(bad), dtype=np.int64)
    if len(bad):
        lines = lines[~np.isin(lines, bad_lines)]
    return t, lines, [(int(b[0]), b[1]) for b in bad]


def _utf8_bytes(path: Path, columns: list[str]) -> bytes:
    """The file's bytes, checked to be UTF-8 text (an error names the line of the first bad byte)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"{path}: cannot be read ({e.strerror})") from None
    if not data.strip():
        raise SourceError(f"{path}: the file is empty; expected a header line with {', '.join(columns)}, then data")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SourceError(f"{path}, line {line}: byte 0x{data[e.start]:02x} is not UTF-8 text; re-save the file "
                          f"as UTF-8") from None
    return data


def csv_columns(path: Path) -> list[str]:
    """The column names on a CSV file's first line ([] when it cannot be read)."""
    try:
        with path.open("rb") as fh:
            return _split_header(fh.readline(1 << 16))
    except OSError:
        return []


def _split_header(first: bytes) -> list[str]:
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    return [h.strip().strip('"') for h in text.split(",")]


def _header(path: Path, data: bytes, columns: list[str]) -> list[str]:
    header = _split_header(data[: data.find(b"\n") if b"\n" in data else len(data)])
    missing = [c for c in columns if c not in header]
    if missing:
        raise SourceError(f"{path}, line 1: header lacks column(s) {', '.join(missing)}; found {header[:8]}"
                          f"{' ...' if len(header) > 8 else ''}; is this the right file?")
    return header


def native_part(pid: str, field: str | pa.Array, time: pa.Array, t_ns: np.ndarray, err: np.ndarray | None,
                value: pa.Array, path: Path, rows: np.ndarray) -> pa.Table:
    """One native table part in :data:`NATIVE_COLUMNS` order."""
    n = len(t_ns)
    return pa.table({
        "participant_id": repeat_string(pid, n),
        "field": repeat_string(field, n) if isinstance(field, str) else field,
        "time": time,
        "t_utc_ns": pa.array(t_ns, pa.int64()),
        "time_error": pa.array(err, pa.string()) if err is not None else pa.nulls(n, pa.string()),
        "value": value,
        "unit": pa.nulls(n, pa.string()),
        "source_file": repeat_string(str(path), n),
        "source_row": pa.array(rows, pa.int64()),
    }).select(list(NATIVE_COLUMNS))


def malformed_part(pid: str, bad: list[tuple[int, str]], path: Path, by_first_cell: bool) -> list[pa.Table]:
    """Malformed lines as unmapped rows (quarantined as unknown_field with their text and line)."""
    mine = [b for b in bad if not by_first_cell or _first_cell(b[1]) == pid]
    if not mine:
        return []
    n = len(mine)
    return [native_part(pid, MALFORMED, pa.nulls(n, pa.string()), np.full(n, timeparse.NAT, np.int64),
                        np.full(n, timeparse.UNPARSEABLE, dtype=object), pa.array([b[1] for b in mine], pa.string()),
                        path, np.array([b[0] for b in mine], np.int64))]


def parse_local_safe(raw: pa.Array, fmt: str, tz: str, stream: np.ndarray | None,
                     path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`timeparse.parse_local`, with years outside 1900-2200 marked unparseable first.

    (Such years overflow pandas' nanosecond range and would abort the whole file.)
    """
    raw = pc.cast(raw, pa.string())
    bad = implausible_year(raw)
    n = len(raw)
    if not bad.any():
        sub, sub_stream = raw, stream
    else:
        ok = np.flatnonzero(~bad)
        sub, sub_stream = raw.take(pa.array(ok)), (None if stream is None else stream[ok])
    try:
        t, e = timeparse.parse_local(sub, fmt, tz, sub_stream) if len(sub) else (np.zeros(0, np.int64), None)
    except (ValueError, TypeError, OverflowError) as ex:
        raise SourceError(f"{path}: times could not be read as {fmt!r} ({str(ex)[:120]})") from None
    if not bad.any():
        return t, e
    out = np.full(n, timeparse.NAT, np.int64)
    err = np.full(n, timeparse.UNPARSEABLE, dtype=object)
    out[ok] = t
    err[ok] = e if e is not None else None
    return out, err


def implausible_year(raw: pa.Array) -> np.ndarray:
    """True where the first run of 4+ digits (the year) is not a year in 1900-2200."""
    if len(raw) == 0:
        return np.zeros(0, bool)
    years = pc.struct_field(pc.extract_regex(raw, r"(?P<y>\d{4,})"), [0])
    four = pc.equal(pc.utf8_length(years), 4)
    y = pc.cast(pc.if_else(four, years, pa.scalar(None, pa.string())), pa.int32())
    bad = pc.or_kleene(pc.invert(four), pc.or_kleene(pc.less(y, 1900), pc.greater(y, 2200)))
    return pc.fill_null(bad, False).to_numpy(zero_copy_only=False)


def is_number(text: pa.Array) -> np.ndarray:
    """True where a text value is a plain decimal number (``7``, ``-1.5``, ``2e3``)."""
    hit = pc.match_substring_regex(pc.utf8_trim_whitespace(pc.cast(text, pa.string())),
                                   r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def labels(codes: np.ndarray, names: list[str]) -> pa.Array:
    """A dictionary-encoded string column from integer codes into ``names``."""
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names, pa.string()))


def _flat(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _trimmed(col: pa.ChunkedArray) -> pa.Array:
    return pc.fill_null(pc.utf8_trim_whitespace(_flat(col)), "")


def _codes(col: pa.ChunkedArray) -> np.ndarray:
    return dictionary_codes(col)[0]


def _first_cell(text: str) -> str:
    return text.split(",", 1)[0].strip().strip('"')
