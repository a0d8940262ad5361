"""What "one export file per participant" adapters share (Dexcom Clarity, LibreView): units, ragged CSV/XLSX columns.

An export is a CSV (or an XLSX workbook) with a header line, maybe below a
few title lines, whose rows may be ragged. :func:`read_csv_columns` and
:func:`read_xlsx_columns` give every column as text with exact line numbers;
fields past the header land in ``__extra<i>`` columns, which
:func:`malformed_rows` flags. :func:`native_table` assembles the adapter's
``base.NATIVE_COLUMNS`` table.
"""

from __future__ import annotations

import csv
import datetime as dt
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.sources._toolkit import limits as _limits
from sensorpipe.sources.base import SourceAdapter, SourceError, repeat_string

EXTRA_FIELDS = 8  # fields tolerated past the header before a line is an error


def list_export_units(adapter: SourceAdapter, suffixes: tuple[str, ...], what: str) -> list[UnitRef]:
    """Units of a "one export file per participant" source: a file, or a folder of ``<participant>.<ext>``."""
    root = adapter.root
    table = adapter.participants()
    opts = adapter.options
    if root.is_file():
        groups = {opts.participant_id or root.stem: [root]}
    else:
        if opts.participant_id:
            raise SourceError(f"source {adapter.source.name!r}: options.participant_id applies to a single export "
                              f"file, but {root} is a folder (participant id = file stem); remove the option")
        skip = adapter.resolve(adapter.source.participants) if adapter.source.participants else None
        groups = {}
        for p in sorted(root.iterdir()):
            hidden = p.name.startswith((".", "~$"))  # macOS "._x.csv", Excel lock files
            if p.is_file() and p.suffix.lower() in suffixes and not hidden and p.resolve() != skip:
                groups.setdefault(p.stem, []).append(p)
    if not groups:
        raise SourceError(f"source {adapter.source.name!r}: no {what} ({'/'.join(suffixes)}) in {root}")
    units = []
    for pid in sorted(groups):
        participant = table.get(pid)
        if participant is None:
            if not opts.tz:
                raise SourceError(f"{groups[pid][0]}: participant {pid!r} has no time zone: add it to the "
                                  f"participants table or set sources[{adapter.source.name}].options.tz")
            participant = Participant(pid, opts.tz)
        units.append(adapter.unit_ref(participant, groups[pid]))
    return units


def read_head(path: Path, n_lines: int) -> list[str]:
    """The first ``n_lines`` lines of a text export (BOM removed); errors name the file."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
            head = [line.rstrip("\r\n") for _, line in zip(range(n_lines), fh)]
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror})") from None
    if not head or not any(head):
        raise SourceError(f"{path}: the file is empty; expected an export with a header line")
    return head


def read_csv_columns(path: Path, header_line: str, header_index: int):
    """Text columns of a CSV whose header is line ``header_index + 1``: ``(header, columns, line numbers)``.

    Ragged rows are allowed: short rows are padded with ``""``; fields past
    the header land in ``__extra<i>`` columns (the row is then malformed).
    Blank lines are not rows; line numbers stay exact (unless a quoted field
    spans lines).
    """
    import pandas as pd

    try:
        header = [h.strip() for h in next(csv.reader([header_line]))]
    except (csv.Error, StopIteration):
        header = []
    if len(set(header)) != len(header) or not header:
        raise SourceError(f"{path}, line {header_index + 1}: the header line is empty or repeats a column name")
    names = header + [f"__extra{i}" for i in range(EXTRA_FIELDS)]
    try:
        with warnings.catch_warnings():  # pandas only warns when it truncates a too-long first row: an error here
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, header=None, names=names, skiprows=header_index + 1, dtype=str, na_filter=False,
                             skip_blank_lines=False, encoding="utf-8-sig", encoding_errors="replace", engine="c",
                             index_col=False)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame({n: pd.Series([], dtype=object) for n in names})
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, OSError) as e:
        raise SourceError(f"{path}: cannot read as CSV ({str(e).splitlines()[0][:200]}); a line has more than "
                          f"{len(names)} fields or an unclosed quote") from None
    cols = {n: df[n].to_numpy(object) for n in names}
    blank = np.ones(len(df), bool)
    for v in cols.values():
        blank &= v == ""
    lines = np.arange(header_index + 2, header_index + 2 + len(df), dtype=np.int64)
    if blank.any():
        keep = ~blank
        cols = {n: v[keep] for n, v in cols.items()}
        lines = lines[keep]
    return header, cols, lines


def read_xlsx_columns(path: Path, time_format: str):
    """Text columns of the first sheet (header in row 1), like :func:`read_csv_columns`.

    Date cells are written with ``time_format`` so the same parser reads them;
    whole floats lose their ``.0``. One pass over the cells (XLSX is per-cell).

    Memory follows the cells the sheet holds, not what it claims: the workbook
    is checked against the decompression limits first
    (:mod:`sensorpipe.sources._toolkit.limits`), the sheet's declared dimension is
    ignored (``A1:XFD1048576`` would make openpyxl pad every row to 16,384
    cells and the sheet to a million rows), and rows are reduced to their
    header's cells as they stream: the non-empty cells past the header (up to
    ``EXTRA_FIELDS`` of them, which make the row malformed) land in
    ``__extra<i>`` columns.
    """
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty; expected an XLSX export with the header in row 1")
    try:
        import openpyxl
    except ImportError:
        raise SourceError(f"{path}: reading XLSX needs openpyxl: pip install openpyxl") from None
    header: list[str] = []
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []   # each kept row's sheet row number
    extras: dict[int, list[str]] = {}   # data row index -> its non-empty cells past the header
    try:
        with zipfile.ZipFile(path) as z:   # the limits, before openpyxl inflates shared strings or a sheet
            _limits.check_zip(path, z)
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb.worksheets[0]
            ws.reset_dimensions()
            it = ws.iter_rows(values_only=True)
            first = next(it, None)
            if first is None:
                raise SourceError(f"{path}: the first sheet is empty; expected the header in row 1")
            header = [_cell_text(v, time_format).strip() for v in first]
            while header and header[-1] == "":
                header.pop()
            width = len(header)
            for line, r in enumerate(it, start=2):
                cells = tuple(_cell_text(v, time_format) for v in r[:width])
                more = []
                if len(r) > width and r[width:].count(None) < len(r) - width:
                    more = [t for t in (_cell_text(v, time_format) for v in r[width:] if v is not None) if t]
                if not more and not any(cells):
                    continue   # a blank row is not a row (rows missing from the sheet come as blank rows)
                if more:
                    extras[len(rows)] = more[:EXTRA_FIELDS]
                rows.append(cells)
                lines.append(line)
        finally:
            wb.close()
    except SourceError:
        raise
    except Exception as e:  # openpyxl/zipfile/XML raise many kinds for a damaged workbook
        raise SourceError(f"{path}: cannot read as XLSX ({type(e).__name__}: {str(e)[:200]}); re-export the "
                          f"file or save it as CSV") from None
    if not header or len(set(header)) != len(header):
        raise SourceError(f"{path}, row 1: the header row is empty or repeats a column name")
    n_extra = max((len(v) for v in extras.values()), default=0)
    names = header + [f"__extra{i}" for i in range(n_extra)]
    grid = np.full((len(rows), len(names)), "", object)
    for i, r in enumerate(rows):
        grid[i, :len(r)] = r
    for i, more in extras.items():
        grid[i, len(header):len(header) + len(more)] = more
    return header, {n: grid[:, j] for j, n in enumerate(names)}, np.array(lines, np.int64)


def _cell_text(v, time_format: str) -> str:
    if v is None:
        return ""
    if isinstance(v, (dt.datetime, dt.date)):
        return v.strftime(time_format)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def native_table(participant: Participant, field: np.ndarray, time_text: np.ndarray, t_ns: np.ndarray, err,
                 value: np.ndarray, unit_col: pa.Array, path: Path, lines: np.ndarray) -> pa.Table:
    """Assemble the base.NATIVE_COLUMNS table of one export file."""
    n = lines.shape[0]
    return pa.table({
        "participant_id": repeat_string(participant.participant_id, n),
        "field": pa.array(field.astype(object), pa.string()).dictionary_encode(),
        "time": pa.array(time_text, pa.string()),
        "t_utc_ns": pa.array(t_ns, pa.int64()),
        "time_error": pa.array(err, pa.string()) if err is not None else pa.nulls(n, pa.string()),
        "value": pa.array(value, pa.string()),
        "unit": unit_col,
        "source_file": repeat_string(str(path), n),
        "source_row": pa.array(lines, pa.int64()),
    })


def strip_text(v: np.ndarray) -> np.ndarray:
    """Trimmed text of an object array of strings (None becomes an empty string)."""
    arr = pc.utf8_trim_whitespace(pa.array(v, pa.string())).fill_null("")
    return arr.to_numpy(zero_copy_only=False)


def malformed_rows(cols: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Rows with text in a field past the header (the ``__extra<i>`` columns)."""
    bad = np.zeros(n, bool)
    for name, v in cols.items():
        if name.startswith("__extra"):
            hit = np.flatnonzero(v != "")
            if hit.size:
                bad[hit[strip_text(v[hit]) != ""]] = True
    return bad
