"""What adapters of plain header CSVs share (Fitabase, Fitbit Takeout): text columns with line numbers, native parts.

:func:`read_text_csv` reads the named columns as text and returns malformed
lines (a wrong number of fields) instead of failing the file;
:func:`malformed_part` turns them into unmapped rows (quarantined as
``unknown_field`` with their text and line). :func:`parse_local_safe` parses
local wall-clock times without letting one absurd year abort the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sensorpipe.core import timeparse
from sensorpipe.sources.base import NATIVE_COLUMNS, SourceError, repeat_string

MALFORMED = "malformed_line"      # unmapped field: a line with the wrong number of columns


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


def file_bytes(path: Path, expected: str) -> bytes:
    """The bytes of an export file that must not be empty; ``expected`` says what it should hold."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"{path}: cannot be read ({e.strerror})") from None
    if not data.strip():
        raise SourceError(f"{path}: the file is empty; {expected}")
    return data


def read_json(path: Path, expected: str, fix: str) -> Any:
    """The parsed JSON of an export file; a SourceError names the file, the line and ``fix`` (what to do, e.g.
    "export it again") when it is empty, not UTF-8 or not valid JSON (a file cut short)."""
    data = file_bytes(path, expected)
    try:
        return json.loads(data)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SourceError(f"{path}, line {line}: not UTF-8 text; {fix}") from None
    except (json.JSONDecodeError, RecursionError) as e:
        where = f", line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
        raise SourceError(f"{path}{where}: not valid JSON ({getattr(e, 'msg', e)}); the file may be cut short: "
                          f"{fix}") from None


def json_text(v: Any) -> str | None:
    """A JSON leaf as quarantine shows it: text as it is, objects and lists as JSON, numbers as written."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (dict, list, bool)):
        return json.dumps(v)
    return str(v)


def _utf8_bytes(path: Path, columns: list[str]) -> bytes:
    """The file's bytes, checked to be UTF-8 text (an error names the line of the first bad byte)."""
    data = file_bytes(path, f"expected a header line with {', '.join(columns)}, then data")
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
    mine = [b for b in bad if not by_first_cell or first_cell(b[1]) == pid]
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


def first_cell(text: str) -> str:
    """The first field of a CSV line's text (a participant id), unquoted."""
    return text.split(",", 1)[0].strip().strip('"')
