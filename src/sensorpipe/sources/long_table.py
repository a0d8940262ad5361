"""Generic long-format CSV/Parquet adapter: the escape hatch for any source.

Each file group names its columns (participant, field, time, value and
optionally unit and IANA time zone); ``fields`` maps native field names onto
canonical channels with their native units. Wide files (one column per field,
``value_columns``) are read column by column as if they were long. The demo
cohorts use it, and so can any export that is already "one row per reading".

Time conventions: ``epoch_ms``/``epoch_s`` (UTC), ``iso`` (offset required),
``local`` (wall clock in the participant's zone; DST rules in
:mod:`sensorpipe.core.timeparse`; a ``local_time_format`` with ``%z``
reads times that carry their own offset, placed as written). Row numbers are
1-based text line numbers for CSV (the header is line 1) and 0-based row
indices for Parquet. The source path is the folder the globs are relative to.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import functools
import io
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sensorpipe import channels as _channels
from sensorpipe._arrow import dictionary_codes
from sensorpipe.core import timeparse
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.sources._toolkit import limits as _limits
from sensorpipe.sources._toolkit.intervals import spread_table
from sensorpipe.schema.registry import TIME_CONVENTIONS, FieldSpec, SourceSchema, TimeFormat
from sensorpipe.sources.base import NATIVE_COLUMNS, SourceAdapter, SourceError, input_source, repeat_string
from sensorpipe.sources.partition import iter_stream, partition_file, read_stream

CSV_BLOCK_BYTES = 16 << 20   # what the CSV reader parses at a time (one batch); a CSV range is at least one


@dataclass(frozen=True)
class FileSpec:
    """One group of files with the same column layout."""

    glob: str
    time_column: str
    value_column: str | None = None
    value_columns: tuple[str, ...] = ()
    time_format: TimeFormat = "iso"
    participant_column: str | None = None
    field_column: str | None = None
    field: str | None = None
    local_time_format: str | None = None
    unit_column: str | None = None
    tz_column: str | None = None
    delimiter: str = ","
    #: CSV text encoding (Python codec name: ``cp1252``, ``latin-1``, ``utf-16`` ...)
    encoding: str = "utf-8"
    #: CSV lines before the header line (a device or export preamble)
    skip_rows: int = 0
    #: or: the header is the first line matching this regular expression (searched in the first 2,000 lines)
    header_regex: str | None = None
    #: configured column name -> the names it has in other exports (languages, vendor versions)
    column_aliases: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # (`field` is a column)
    #: a separate date column: the time parsed is ``<date> <time>`` (local_time_format covers both)
    date_column: str | None = None
    #: ``,`` for a decimal comma in the value columns (with ``;`` or tab as the delimiter)
    decimal: Literal[".", ","] = "."
    #: each reading stands for this many seconds from its time: above a minute it is spread or repeated
    interval_s: int | None = None
    #: ``auto``: totals (channels aggregated by sum) spread evenly, others repeated on each minute
    interval_fill: Literal["auto", "spread", "repeat"] = "auto"

    def validate(self, path: str) -> None:
        from sensorpipe.config import ConfigError

        if self.skip_rows < 0:
            raise ConfigError(f"{path}.skip_rows: {self.skip_rows} lines; give 0 or more")
        if self.skip_rows and self.header_regex:
            raise ConfigError(f"{path}: give skip_rows or header_regex, not both")
        if self.header_regex is not None:
            try:
                re.compile(self.header_regex)
            except re.error as e:
                raise ConfigError(f"{path}.header_regex: not a regular expression ({e})") from None
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"{path}.encoding: unknown text encoding {self.encoding!r} (e.g. utf-8, cp1252)") from None
        if self.decimal == "," and self.delimiter == ",":
            raise ConfigError(f"{path}: decimal ',' needs another delimiter (';' or a tab)")
        if self.interval_s is not None and (self.interval_s <= 0 or (self.interval_s > 60 and self.interval_s % 60)):
            raise ConfigError(f"{path}.interval_s: {self.interval_s}; give a positive number of seconds, a whole "
                              f"number of minutes above 60")

        if bool(self.value_column) == bool(self.value_columns):
            raise ConfigError(f"{path}: give value_column (long format) or value_columns (wide: one column per "
                              f"field), not both or neither")
        if self.value_columns and (self.field_column or self.field):
            raise ConfigError(f"{path}: with value_columns the column names are the fields; drop field/field_column")
        if not self.value_columns and not (self.field_column or self.field):
            raise ConfigError(f"{path}: name the field: field_column (a column) or field (one name for all rows)")


@dataclass(frozen=True)
class FieldMap:
    """A native field name mapped to a canonical channel, with its native unit."""

    channel: str
    unit: str
    categories: dict[str, int] = field(default_factory=dict)


class LongTableAdapter(SourceAdapter):
    """Long-format CSV or Parquet files with a column mapping from the config."""

    name = "long_table"
    description = "Generic long-format CSV/Parquet (participant, field, time, value[, unit])"
    time_convention = ("per file group: epoch_ms | epoch_s | iso (with offset) | local (participant's IANA zone) | "
                       "timestamp (typed column; naive = UTC)")
    drops = "nothing: rows of fields not mapped in options.fields are quarantined as unknown_field"

    @dataclass(frozen=True)
    class Options:
        files: tuple[FileSpec, ...]
        fields: dict[str, FieldMap]
        tz: str | None = None  # IANA zone for participants missing from the participants table
        participant_id: str | None = None  # for files without a participant column (default: the file stem)
        activities: str | None = None  # exercise log CSV (relative to the path) for the activity label

    def schema(self) -> SourceSchema:
        conv = "; ".join(f"{f.glob}: {TIME_CONVENTIONS[f.time_format]}" for f in self.options.files)
        specs = tuple(FieldSpec(n, m.channel, m.unit, dict(m.categories)) for n, m in sorted(self.options.fields.items()))
        return SourceSchema(adapter=self.name, version=1, time_convention=conv, fields=specs)

    # --- units -----------------------------------------------------------
    def list_units(self) -> list[UnitRef]:
        table = self.participants()
        root = self.folder_root("the files that options.files[].glob patterns match, relative to it")
        # participant -> {(file, group, partition stream or "", fingerprint or "")}
        files_of: dict[str, set[tuple[str, int, str, str]]] = {}
        for spec_i, spec in enumerate(self.options.files):
            paths = sorted(root.glob(spec.glob))
            if not paths:
                raise SourceError(f"source {self.source.name!r}: no file matches {spec.glob!r} under {root}")
            for p in paths:
                for pid, stream, fp in self._participants_in(p, spec):
                    files_of.setdefault(pid, set()).add((str(p), spec_i, stream, fp))
        units = []
        for pid in sorted(files_of):
            entries = sorted(files_of[pid])
            participant = self.resolve_participant(pid, table, entries[0][0])
            units.append(UnitRef(self.source, self.base_dir, participant, tuple(e[0] for e in entries),
                                 tuple(e[1] for e in entries), partitions=tuple(e[2] for e in entries),
                                 fingerprints=tuple(e[3] for e in entries)))
        return units

    def _participants_in(self, path: Path, spec: FileSpec) -> list[tuple[str, str, str]]:
        """(participant id, partition stream or "", file fingerprint or "") of every participant in the file.

        A file whose Parquet statistics prove one participant is read whole by
        its unit, as is every file outside a run. Any other file with a
        participant column is partitioned once (:mod:`sensorpipe.sources.partition`),
        so no unit reads or hashes the whole file again.
        """
        if spec.participant_column is None:
            return [(self.options.participant_id or path.stem, "", "")]
        if path.suffix == ".parquet":
            single = _single_value_from_statistics(path, spec.participant_column)
            if single is not None:
                return [(single, "", "")]
        if self.work_dir is not None:
            part = partition_file(path, Path(self.work_dir) / "partitions" / self.source.name,
                                  spec.participant_column, lambda: self._batches(path, spec),
                                  functools.partial(self._ranges, path, spec))
            return [(pid, stream, part.fingerprint) for pid, (stream, _) in sorted(part.streams.items())]
        col = self._read(path, spec, columns=[spec.participant_column]).column(0)
        ids = pc.unique(pc.cast(col, pa.string())).to_pylist()
        # rows with no participant form their own unit, so validation quarantines them (never lost)
        return [(pid, "", "") for pid in sorted({(i or "").strip() for i in ids})]

    # --- reading ---------------------------------------------------------
    def _read(self, path: Path, spec: FileSpec, columns: list[str]) -> pa.Table:
        try:
            if path.suffix == ".parquet":  # ParquetFile.read: the dataset layer of read_table costs ~10 %
                return self._parquet(path, spec, columns).read(columns=columns)
            with _csv_input(path) as src:
                return pacsv.read_csv(src, read_options=self._csv_read_options(path, spec),
                                      parse_options=pacsv.ParseOptions(delimiter=spec.delimiter),
                                      convert_options=self._csv_convert(spec, columns))
        except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError, OSError) as e:
            raise self._unreadable(path, columns, e) from None

    def _parquet(self, path: Path, spec: FileSpec, columns: list[str]) -> pq.ParquetFile:
        """The file (from memory when pass 1 holds its bytes), its label columns dictionary-encoded (no per-row
        strings downstream), after checking it has ``columns`` (a Parquet read would skip missing ones)."""
        labels = [c for c in (spec.participant_column, spec.field_column, spec.unit_column) if c in columns]
        pf = pq.ParquetFile(input_source(path), read_dictionary=labels)
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            raise pa.ArrowInvalid(f"no column {', '.join(map(repr, missing))} (it has "
                                  f"{', '.join(pf.schema_arrow.names)})")
        return pf

    def _unreadable(self, path: Path, columns: list[str], e: Exception) -> SourceError:
        return SourceError(f"{path}: cannot read as {'Parquet' if path.suffix == '.parquet' else 'CSV'} with columns "
                           f"{columns} ({str(e).splitlines()[0]}); check the file and "
                           f"sources[{self.source.name}].options.files")

    def _columns(self, spec: FileSpec, with_participant: bool = True) -> list[str]:
        value_cols = list(spec.value_columns) or [spec.value_column]
        return [c for c in (spec.participant_column if with_participant else None, spec.field_column,
                            spec.date_column, spec.time_column, *value_cols, spec.unit_column, spec.tz_column) if c]

    def _batches(self, path: Path, spec: FileSpec):
        """The file in batches, each with the row number of its first row: Parquet row group by row group, CSV
        block by block, with the column types a whole-file read gives (so a unit's rows are the same)."""
        if path.suffix == ".parquet":
            yield from self._row_group_batches(path, spec, 0, None, 0)
            return
        # the first row is the line after the header (line 1 unless a preamble comes before it)
        yield from self._csv_batches(path, spec, lambda: _csv_input(path), 2 + self._layout(path, spec).preamble_lines)

    def _csv_range_batches(self, path: Path, spec: FileSpec, lo: int, hi: int, first: int):
        """:meth:`_batches` of a plain CSV file's bytes ``lo`` to ``hi`` (whole lines), read after its header
        line, ``first`` being the row number of the range's first row (0: counted within the range)."""
        head = self._layout(path, spec).header_offset
        yield from self._csv_batches(path, spec, lambda: _ByteRange(path, lo, hi, head), first, in_range=True)

    def _csv_batches(self, path: Path, spec: FileSpec, opened, first: int, in_range: bool = False):
        """The CSV that ``opened()`` gives (a context manager: a path or a file object) block by block, each
        block with the row number of its first row, counted from ``first``; ``in_range``: ``opened()`` gives
        the header line then a range's lines (:class:`_ByteRange`), with no preamble."""
        cols = self._columns(spec)
        read_options = self._csv_read_options(path, spec, in_range)
        read_options.block_size = CSV_BLOCK_BYTES
        try:
            with opened() as src, pacsv.open_csv(src, read_options=read_options,
                                                 parse_options=pacsv.ParseOptions(delimiter=spec.delimiter),
                                                 convert_options=self._csv_convert(spec, cols)) as reader:
                for batch in reader:
                    yield batch, first
                    first += batch.num_rows
        except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError, OSError) as e:
            raise self._unreadable(path, cols, e) from None

    def _row_group_batches(self, path: Path, spec: FileSpec, lo: int, hi: int | None, first: int):
        """:meth:`_batches` of a Parquet file's row groups ``lo`` to ``hi`` (None: the last), ``first`` being
        the row number of row group ``lo``'s first row."""
        cols = self._columns(spec)
        try:
            pf = self._parquet(path, spec, cols)
            for g in range(lo, pf.num_row_groups if hi is None else hi):
                for batch in pf.read_row_group(g, columns=cols).to_batches():
                    yield batch, first
                    first += batch.num_rows
        except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError, OSError) as e:
            raise self._unreadable(path, cols, e) from None

    def _ranges(self, path: Path, spec: FileSpec, n: int) -> list:
        """The file in at most ``n`` ranges, for the partition step to read on ``n`` workers
        (:func:`~sensorpipe.sources.partition.partition_file`): a Parquet file's whole row groups with about as
        many rows each, a plain CSV file's lines cut into about equal bytes (at least one CSV block each);
        none for a compressed CSV, which is partitioned as it is decompressed, in one process."""
        if path.suffix != ".parquet":
            return self._csv_ranges(path, spec, n)
        try:
            meta = pq.ParquetFile(path).metadata
        except (pa.ArrowInvalid, OSError) as e:
            raise self._unreadable(path, self._columns(spec), e) from None
        starts = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
        # range k starts at the first row group at or after k/n of the rows
        cuts = sorted(set(np.searchsorted(starts[:-1], starts[-1] * np.arange(n) / n, side="left").tolist()))
        bounds = [*cuts, meta.num_row_groups] if cuts and cuts[0] == 0 else [0, *cuts, meta.num_row_groups]
        return [(functools.partial(self._row_group_batches, path, spec, lo, hi, int(starts[lo])), int(starts[lo]))
                for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]

    def _csv_ranges(self, path: Path, spec: FileSpec, n: int) -> list:
        """:meth:`_ranges` of a CSV file: borders just after a line end (the reader, which allows no line end
        inside a value, cuts its blocks there too), the first range numbered from line 2, the others from 0
        (the partition step adds the rows of the ranges before)."""
        if _limits.compression_of(path) is not None:
            return []
        size = os.path.getsize(path)
        layout = self._layout(path, spec)
        with open(path, "rb") as fh:
            fh.seek(layout.header_offset)
            body = layout.header_offset + len(fh.readline())   # the header line: every range is read after it
            cuts, m = [body], min(n, (size - body) // CSV_BLOCK_BYTES)
            for k in range(1, m):
                fh.seek(max(body + (size - body) * k // m - 1, cuts[-1]))
                fh.readline()            # the border moves to the next line's start
                if fh.tell() >= size:
                    break
                cuts.append(fh.tell())
        cuts.append(size)
        first = 2 + layout.preamble_lines
        return [(functools.partial(self._csv_range_batches, path, spec, lo, hi, first if k == 0 else 0),
                 first if k == 0 else None) for k, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])) if hi > lo]

    def _layout(self, path: Path, spec: FileSpec) -> "_CsvLayout":
        """Where the header is and what the configured columns are called in this file (cached per file
        version); a plain CSV's header is its first line, read by the CSV reader itself."""
        if not (spec.skip_rows or spec.header_regex or spec.column_aliases) and spec.encoding == "utf-8":
            return _PLAIN_LAYOUT
        st = os.stat(path)
        return _csv_layout(path, st.st_size, st.st_mtime_ns, spec.skip_rows, spec.header_regex, spec.delimiter,
                           spec.encoding, tuple(sorted((k, tuple(v)) for k, v in spec.column_aliases.items())))

    def _csv_read_options(self, path: Path, spec: FileSpec, in_range: bool = False) -> pacsv.ReadOptions:
        """The reader's options: the default for a plain CSV; for one with a preamble, another encoding or
        column aliases, the header line read here and the configured names given to the reader."""
        if not (spec.skip_rows or spec.header_regex or spec.column_aliases) and spec.encoding == "utf-8":
            return pacsv.ReadOptions()
        layout = self._layout(path, spec)
        return pacsv.ReadOptions(skip_rows=1 if in_range else layout.preamble_lines + 1,
                                 column_names=list(layout.names), encoding=spec.encoding)

    def _csv_convert(self, spec: FileSpec, columns: list[str]) -> pacsv.ConvertOptions:
        """Labels dictionary-encoded, every other column as its text, except epoch times (numbers)."""
        labels = [c for c in (spec.participant_column, spec.field_column, spec.unit_column) if c in columns]
        types = {c: pa.dictionary(pa.int32(), pa.string()) if c in labels else pa.string() for c in columns
                 if c != spec.time_column or spec.time_format in ("iso", "local")}
        return pacsv.ConvertOptions(include_columns=columns, column_types=types, strings_can_be_null=True)

    def decodes_from_memory(self, path: str) -> bool:
        return path.endswith(".parquet")   # CSV stays a path (compressed CSV streams through _csv_input)

    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts = []
        streams = unit.partitions or ("",) * len(unit.files)
        for path, spec_i, stream in zip(unit.files, unit.file_groups, streams):
            parts.extend(self._read_file(Path(path), self.options.files[spec_i], unit.participant, stream))
        return UnitInput(unit, parts)

    def iter_native_chunks(self, unit: UnitRef, span_ns: int):
        """A unit's native rows (files with one value column) in the order :meth:`read_unit` returns them, a
        table per stretch of about ``span_ns`` of time within a file (Parquet row groups, CSV blocks or
        partition batches joined until they span it), without holding them all
        (:mod:`sensorpipe.runners.chunked`)."""
        participant = unit.participant
        streams = unit.partitions or ("",) * len(unit.files)
        for name, group, stream in zip(unit.files, unit.file_groups, streams):
            path, spec = Path(name), self.options.files[group]
            buffer: list[pa.Table] = []
            lo = hi = None
            for t, rows in (iter_stream(stream) if stream else self._file_batches(path, spec)):   # per batch
                if spec.participant_column and not stream:
                    codes, ids = dictionary_codes(t.column(spec.participant_column))
                    keep = np.array([(i or "").strip() == participant.participant_id for i in ids] +
                                    [participant.participant_id == ""])[codes]
                    if not keep.all():
                        t, rows = t.filter(pa.array(keep)), rows[keep]
                if not t.num_rows:
                    continue
                (part,) = self._native_parts(t, rows, path, spec, participant, [spec.value_column])
                buffer.append(part)
                times = part.column("t_utc_ns").to_numpy(zero_copy_only=False)
                times = times[times != timeparse.NAT]
                if times.size:
                    lo = int(times.min()) if lo is None else min(lo, int(times.min()))
                    hi = int(times.max()) if hi is None else max(hi, int(times.max()))
                if lo is not None and hi - lo >= span_ns:
                    yield pa.concat_tables(buffer)
                    buffer, lo, hi = [], None, None
            if buffer:   # a file's last rows: tables of two files are never joined (their columns' types may differ)
                yield pa.concat_tables(buffer)

    def _file_batches(self, path: Path, spec: FileSpec):
        for batch, first in self._batches(path, spec):
            yield pa.Table.from_batches([batch]), np.arange(first, first + batch.num_rows, dtype=np.int64)

    def _read_file(self, path: Path, spec: FileSpec, participant: Participant, stream: str = "") -> list[pa.Table]:
        value_cols = list(spec.value_columns) or [spec.value_column]
        if stream:   # this participant's rows of a shared file, as the partition step routed them
            t, rows = read_stream(stream)
            return self._native_parts(t, rows, path, spec, participant, value_cols)
        # a Parquet file whose statistics prove it holds only this participant: no need to read the ids
        by_stats = (spec.participant_column is not None and path.suffix == ".parquet" and bool(participant.participant_id)
                    and _single_value_from_statistics(path, spec.participant_column) == participant.participant_id)
        cols = self._columns(spec, with_participant=not by_stats)
        t = self._read(path, spec, columns=cols)
        first_row = 0 if path.suffix == ".parquet" else 2 + self._layout(path, spec).preamble_lines
        rows = np.arange(first_row, first_row + t.num_rows, dtype=np.int64)
        if spec.participant_column and not by_stats:
            codes, ids = dictionary_codes(t.column(spec.participant_column))
            keep = np.array([(i or "").strip() == participant.participant_id for i in ids] +
                            [participant.participant_id == ""])[codes]
            if not keep.all():
                t = t.filter(pa.array(keep))
                rows = rows[keep]
        return self._native_parts(t, rows, path, spec, participant, value_cols)

    def _native_parts(self, t: pa.Table, rows: np.ndarray, path: Path, spec: FileSpec, participant: Participant,
                      value_cols: list[str]) -> list[pa.Table]:
        """One participant's rows of one file as native table parts (one per value column)."""
        n = t.num_rows
        raw_time = _time_text(t, spec)
        common = {
            "participant_id": repeat_string(participant.participant_id, n),
            "time": raw_time,
            "unit": pc.cast(t.column(spec.unit_column), pa.string()) if spec.unit_column else pa.nulls(n, pa.string()),
            "source_file": repeat_string(str(path), n),
            "source_row": pa.array(rows),
        }
        parts = []
        for value_col in value_cols:  # one pass per column of a wide file; a long file has one
            fields = (t.column(spec.field_column) if spec.field_column else
                      repeat_string(spec.field or value_col, n))
            t_ns, err = self._parse_time(raw_time, t, spec, participant, fields, path)
            value = t.column(value_col)
            if spec.decimal == "," and (pa.types.is_string(value.type) or pa.types.is_dictionary(value.type)):
                value = pc.replace_substring(pc.cast(value, pa.string()), ",", ".")
            part = pa.table({**common, "field": fields, "t_utc_ns": pa.array(t_ns, pa.int64()),
                             "time_error": pa.array(err, pa.string()) if err is not None else pa.nulls(n, pa.string()),
                             "value": value}).select(list(NATIVE_COLUMNS))
            if spec.interval_s and spec.interval_s > 60:
                part = spread_table(part, spec.interval_s // 60, self._totals(part.column("field"), spec))
            parts.append(part)
        return parts

    def _totals(self, fields: pa.ChunkedArray | pa.Array, spec: FileSpec) -> np.ndarray:
        """Per row: is the reading a total to spread over its interval (``interval_fill``, or by its channel's
        minute aggregation) rather than a rate to repeat."""
        codes, names = dictionary_codes(fields)
        if spec.interval_fill != "auto":
            return np.full(len(codes), spec.interval_fill == "spread")
        mapped = self.options.fields
        total = [n in mapped and _channels.known(mapped[n].channel)
                 and _channels.get(mapped[n].channel).aggregation == "sum" for n in names]
        return np.array(total + [False], bool)[codes]

    def _parse_time(self, raw, t: pa.Table, spec: FileSpec, participant: Participant, fields, path: Path):
        try:
            if spec.time_format == "epoch_ms":
                return timeparse.parse_epoch(raw, 1_000_000)
            if spec.time_format == "epoch_s":
                return timeparse.parse_epoch(raw, 1_000_000_000)
            zoned = _zone_suffix(raw) if spec.time_format in ("iso", "local") else None
            if zoned is not None:   # 2024-03-10T01:30:00-05:00[America/New_York]: the zone names the rules
                text, zones = zoned
                stream = dictionary_codes(fields)[0] if spec.field_column else None
                if spec.time_format == "local":
                    return _parse_local_per_zone(text, spec.local_time_format, zones, stream, path)
                return _parse_iso_in_zones(text, zones, stream, path)
            if spec.time_format == "iso":
                return timeparse.parse_iso(raw)
            if spec.time_format == "timestamp":
                return timeparse.parse_timestamp(raw)
            stream = dictionary_codes(fields)[0] if spec.field_column else None
            if spec.tz_column:
                return _parse_local_per_zone(raw, spec.local_time_format, t.column(spec.tz_column), stream, path)
            return timeparse.parse_local(raw, spec.local_time_format, participant.tz, stream)
        except ValueError as e:
            raise SourceError(f"{path}: column {spec.time_column!r}: {e}; check time_format in the source options") from None



class _ByteRange(io.RawIOBase):
    """A CSV file's header line followed by its bytes ``lo`` to ``hi`` (whole lines): one range of the file
    read as if it were a file of its own, from disk a buffer at a time."""

    def __init__(self, path: Path, lo: int, hi: int, header_offset: int = 0) -> None:
        self._fh = open(path, "rb")
        self._fh.seek(header_offset)
        self._head = self._fh.readline()
        self._fh.seek(lo)
        self._left = hi - lo

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n], self._head = self._head[:n], self._head[n:]
            return n
        n = self._fh.readinto(view[:min(len(view), self._left)]) if self._left else 0
        self._left -= n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


@contextmanager
def _csv_input(path: Path):
    """What the CSV reader reads: the path of a plain CSV, or a compressed CSV (``.gz``, ``.bz2``, ``.zst``,
    ``.lz4``) decompressed as a stream counted against the decompression limits (:mod:`sensorpipe.sources._toolkit.limits`)."""
    if _limits.compression_of(path) is None:
        yield path
        return
    with _limits.open_decompressed(path) as stream:
        yield stream


def _parse_local_per_zone(raw, fmt: str, zones: pa.ChunkedArray | pa.Array, stream, path: Path):
    """Local wall clock with a per-row IANA zone: parse each zone's rows with its own rules (a row whose time
    carries an offset, with ``%z`` or ISO, is placed by its offset)."""
    codes, names = dictionary_codes(zones)
    out = np.full(len(raw), timeparse.NAT, np.int64)
    err = np.full(len(raw), None, dtype=object)
    flat = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    for z, zone in enumerate(names + [None]):  # one pass per distinct zone
        rows = np.flatnonzero(codes == (z if zone is not None else -1))
        if not rows.size:
            continue
        if zone is None or not _is_zone(zone):
            err[rows] = timeparse.UNPARSEABLE
            continue
        t, e = timeparse.parse_local(flat.take(pa.array(rows)), fmt, zone, None if stream is None else stream[rows])
        out[rows] = t
        if e is not None:
            err[rows] = e
    return out, (err if np.not_equal(err, None).any() else None)


_OFFSET = r"(Z|[+-]\d{2}(:?\d{2})?)$"


def _parse_iso_in_zones(text: pa.Array, zones: pa.Array, stream, path: Path):
    """ISO times that had a ``[Zone]`` suffix: one with an offset is placed by its offset (the zone only
    names the rules it was written under); one without is local wall clock in its zone."""
    has_offset = pc.fill_null(pc.match_substring_regex(text, _OFFSET), False).to_numpy(zero_copy_only=False)
    out = np.full(len(text), timeparse.NAT, np.int64)
    err = np.full(len(text), None, dtype=object)
    for rows, parse in ((np.flatnonzero(has_offset), lambda r: timeparse.parse_iso(text.take(pa.array(r)))),
                        (np.flatnonzero(~has_offset), lambda r: _parse_local_per_zone(
                            text.take(pa.array(r)), "ISO8601", zones.take(pa.array(r)),
                            None if stream is None else stream[r], path))):
        if rows.size:
            t, e = parse(rows)
            out[rows] = t
            if e is not None:
                err[rows] = e
    return out, (err if np.not_equal(err, None).any() else None)


def _is_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def _single_value_from_statistics(path: Path, column: str) -> str | None:
    """The column's only value when Parquet row-group statistics prove there is one (no data read)."""
    try:
        meta = pq.ParquetFile(input_source(path)).metadata
        idx = meta.schema.names.index(column)
        values = set()
        for g in range(meta.num_row_groups):
            st = meta.row_group(g).column(idx).statistics
            if st is None or not st.has_min_max or st.null_count:
                return None
            values.update((st.min, st.max))
        if len(values) == 1:
            (v,) = values
            v = v.decode() if isinstance(v, bytes) else str(v)
            return v.strip() or None
    except (ValueError, OSError, pa.ArrowException):
        return None  # fall back to reading the column, which reports errors properly
    return None


@dataclass(frozen=True)
class _CsvLayout:
    """A CSV file's header: lines before it, its byte offset, and its column names under the configured names."""

    preamble_lines: int
    header_offset: int
    names: tuple[str, ...]


HEADER_SEARCH_LINES = 2000
_PLAIN_LAYOUT = _CsvLayout(0, 0, ())


@functools.lru_cache(maxsize=256)
def _csv_layout(path: Path, size: int, mtime_ns: int, skip_rows: int, header_regex: str | None, delimiter: str, encoding: str,
                aliases: tuple[tuple[str, tuple[str, ...]], ...]) -> _CsvLayout:
    """Find the header line (after ``skip_rows`` lines, or the first matching ``header_regex``) and rename its
    columns: a name listed among a configured column's aliases becomes that column's name. ``size`` and
    ``mtime_ns`` only key the cache, so a rewritten file is looked at again."""
    rx = re.compile(header_regex) if header_regex else None
    offset = 0
    with _csv_input(path) as src, (open(src, "rb") if isinstance(src, Path) else src) as fh:
        for line_no in range(HEADER_SEARCH_LINES if rx else skip_rows + 1):
            raw = fh.readline()
            if not raw:
                break
            text = raw.decode(encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")
            if (rx is None and line_no == skip_rows) or (rx is not None and rx.search(text)):
                names = next(csv.reader([text], delimiter=delimiter))
                rename = {alt: name for name, alts in aliases for alt in alts}
                return _CsvLayout(line_no, offset, tuple(rename.get(n.strip(), n.strip()) for n in names))
            offset += len(raw)
    where = f"no line matches header_regex {header_regex!r} in the first {HEADER_SEARCH_LINES} lines" if rx else \
        f"it has fewer than {skip_rows + 1} lines (skip_rows {skip_rows} + the header)"
    raise SourceError(f"{path}: no header line found: {where}; check options.files[].skip_rows / header_regex")


def _time_text(t: pa.Table, spec: FileSpec):
    """The time column, or ``<date> <time>`` when the file has a separate date column."""
    time = t.column(spec.time_column)
    if spec.date_column is None:
        return time
    date = pc.cast(t.column(spec.date_column), pa.string())
    return pc.binary_join_element_wise(pc.utf8_trim_whitespace(date),
                                       pc.utf8_trim_whitespace(pc.cast(time, pa.string())), " ")


def _zone_suffix(raw) -> tuple[pa.Array, pa.Array] | None:
    """``(times without the suffix, zone per row)`` when the times end in an IANA ``[Zone]`` (RFC 9557, Java's
    ZonedDateTime), else None. A row without a suffix gets a null zone (unparseable)."""
    if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
        return None
    flat = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    if not pc.any(pc.ends_with(flat, "]")).as_py():
        return None
    parts = pc.extract_regex(flat, r"^(?P<time>.*?)\[(?P<zone>[^\]]+)\]$")
    return pc.fill_null(pc.struct_field(parts, "time"), ""), pc.struct_field(parts, "zone")

