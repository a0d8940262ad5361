"""Dexcom Clarity exports (CSV or XLSX): continuous glucose (EGV rows).

One export per participant. ``sources[].path`` is either one export file (its
participant is ``options.participant_id`` or the file stem) or a folder of
exports, one per participant, named ``<participant_id>.csv`` / ``.xlsx``
(files with the same stem form one unit). Clarity names its files
``Clarity_Export_<Last>_<First>_...``: rename them, or the file stem (a name)
becomes the participant id.

Layout, as Clarity writes it (UTF-8 with a BOM, every field quoted in exports
since 2023): line 1 is the header ``Index,Timestamp (YYYY-MM-DDThh:mm:ss),
Event Type,Event Subtype,Patient Info,Device Info,Source Device ID,Glucose
Value (mg/dL),Insulin Value (u),Carb Value (grams),Duration (hh:mm:ss),Glucose
Rate of Change (mg/dL/min),Transmitter Time (Long Integer),Transmitter ID``
(``mmol/L`` in both glucose columns for mmol/L accounts); then untimed rows
(``FirstName``, ``LastName``, ``DateOfBirth``, ``Device`` and the ``Alert``
settings); then timed rows sorted by time: ``EGV`` (a sensor reading every
5 min), ``Calibration``, ``Insulin``, ``Carbs``, ``Exercise``, ``Health``,
``Alert``. Rows are ragged (non-EGV rows lack the last field). The XLSX form
has the same header in row 1 of the first sheet.

What becomes what:

- ``EGV`` rows -> native field ``egv`` (channel ``glucose``) in the header's
  unit (a ``mmol/L`` export sets the row unit, converted by validation).
- ``EGV`` rows whose value is the text ``High`` / ``Low`` (the reading is
  beyond the sensor's range, above 400 / below 40 mg/dL) -> fields
  ``egv_high`` / ``egv_low``, also channel ``glucose``: validation maps the
  text to the glucose channel's registry bound (600 / 20 mg/dL), so a Low
  never ranks above a real reading of any source (a real 2.2 mmol/L reading
  is 39.6) nor a High below one, and the ``glucose_censored`` channel flags
  the minute (1 below range, 2 above; see
  :mod:`sensorpipe.processing.glucose_censoring`). The native value keeps the
  original text, and :func:`censored_counts` gives the per-unit count.
- every other row -> field ``event:<Event Type>[/<Event Subtype>]``, which
  the schema does not map: validation quarantines it as ``unknown_field``
  (counted, kept). Patient-info rows (``FirstName``, ``LastName``,
  ``DateOfBirth`` or any text in ``Patient Info``) keep their field name but
  their value is replaced by ``<redacted>``: no name reaches quarantine.
- a row with more fields than the header -> field ``malformed_row``
  (quarantined as ``unknown_field``). Blank lines are not rows.

Times are local wall clock without an offset, in the participant's IANA zone
(participants table, else ``options.tz``), parsed by
:func:`sensorpipe.processing.timeparse.parse_local`: a time in the skipped
spring-forward hour is quarantined (``nonexistent_local_time``); in the
repeated fall-back hour readings are the earlier instant until the wall clock
first steps back within one transmitter's readings, and the later instant from
then on (Clarity writes readings in time order; the rule also places readings
whose seconds drift).

A sensor or transmitter switch (``Transmitter ID`` changing mid-file) keeps
both transmitters' readings; where they report the same instant, validation
drops an exact duplicate and quarantines conflicting values, so no reading is
counted twice. Row numbers are 1-based line numbers (header = line 1) for CSV
and sheet row numbers for XLSX.
"""

from __future__ import annotations

import csv
import datetime as dt
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe import channels as registry
from sensorpipe._arrow import dictionary_codes
from sensorpipe.config import ConfigError
from sensorpipe.processing import timeparse
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources import _limits
from sensorpipe.sources.base import Participant, SourceAdapter, SourceError, UnitInput, UnitRef, repeat_string

TIME_COL = "Timestamp (YYYY-MM-DDThh:mm:ss)"
EVENT_COL = "Event Type"
GLUCOSE_COLS = {"Glucose Value (mg/dL)": "mg/dL", "Glucose Value (mmol/L)": "mmol/L"}
#: columns whose first non-empty text is a non-EGV row's value (quarantine shows it)
EVENT_VALUE_COLS = ("Insulin Value (u)", "Carb Value (grams)", "Duration (hh:mm:ss)",
                    "Glucose Rate of Change (mg/dL/min)", "Glucose Rate of Change (mmol/L/min)",
                    "Device Info")
PATIENT_EVENTS = ("FirstName", "LastName", "DateOfBirth")
REDACTED = "<redacted>"
EGV, EGV_HIGH, EGV_LOW, MALFORMED = "egv", "egv_high", "egv_low", "malformed_row"
EXTRA_FIELDS = 8  # fields tolerated past the header before a line is an error


class DexcomClarityAdapter(SourceAdapter):
    """Dexcom Clarity CSV/XLSX exports, one per participant; EGV rows feed ``glucose``."""

    name = "dexcom_clarity"
    description = "Dexcom Clarity export (CSV or XLSX; G4-G7, mg/dL or mmol/L): EGV sensor glucose every 5 min"
    time_convention = ("local wall clock YYYY-MM-DDThh:mm:ss without offset, in the participant's IANA zone "
                       "(participants table, else options.tz); skipped DST hour quarantined; repeated hour: earlier "
                       "instant until the wall clock steps back within one transmitter, later instant after")
    channels = ("glucose", "glucose_censored")
    reading_interval_min = {"glucose": 5.0}  # every Dexcom CGM (G4-G7) records an EGV every 5 minutes
    drops = ("non-EGV rows (patient info, device, alert settings, fingerstick calibrations, insulin, carbs, "
             "exercise, health) are returned as unmapped fields event:<type>[/<subtype>] and quarantined as "
             "unknown_field; patient-info values (names, birth date) are replaced by '<redacted>'; High/Low "
             "EGVs are kept at the glucose channel's bounds (600/20 mg/dL) under fields egv_high/egv_low, flagged "
             "in glucose_censored (counted by censored_counts); rate of change, transmitter time and device "
             "columns are not kept; blank lines are not rows")

    @dataclass(frozen=True)
    class Options:
        participant_id: str | None = None  # when path is one export file (default: its file stem)
        tz: str | None = None  # IANA zone for participants missing from the participants table
        time_format: str = "%Y-%m-%dT%H:%M:%S"

        def validate(self, path: str) -> None:
            check_zone_option(self.tz, f"{path}.tz")

    def schema(self) -> SourceSchema:
        low, high = censored_values_mg_dl()
        # version 2: High/Low at the registry bounds (version 1 used the high_mg_dl/low_mg_dl options, 400/40)
        return SourceSchema(adapter=self.name, version=2, time_convention=self.time_convention, fields=(
            FieldSpec(EGV, "glucose", "mg/dL"),
            FieldSpec(EGV_HIGH, "glucose", "mg/dL", {"High": high}),
            FieldSpec(EGV_LOW, "glucose", "mg/dL", {"Low": low}),
        ))

    def list_units(self) -> list[UnitRef]:
        return list_export_units(self, (".csv", ".xlsx"), "Dexcom Clarity export")

    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts = []
        for f in unit.files:
            path = Path(f)
            if path.suffix.lower() == ".xlsx":
                header, cols, lines = read_xlsx_columns(path, self.options.time_format)
            else:
                header, cols, lines = read_csv_columns(path, read_head(path, 1)[0], 0)
            parts.append(self._native(header, cols, lines, path, unit.participant))
        return UnitInput(unit, parts)

    def _native(self, header: list[str], cols: dict[str, np.ndarray], lines: np.ndarray, path: Path,
                participant: Participant) -> pa.Table:
        gcols = [c for c in header if c in GLUCOSE_COLS]
        missing = [c for c in (TIME_COL, EVENT_COL) if c not in header] + ([] if gcols else ["Glucose Value (mg/dL)"])
        if missing:
            raise SourceError(f"{path}: not a Dexcom Clarity export: the header (line 1) lacks {missing}; expected "
                              f"Index,{TIME_COL},{EVENT_COL},...,Glucose Value (mg/dL|mmol/L),...")
        n = lines.shape[0]
        col = lambda name: cols.get(name, np.full(n, "", object))  # noqa: E731
        event, subtype, gtext = strip_text(col(EVENT_COL)), strip_text(col("Event Subtype")), strip_text(col(gcols[0]))
        is_egv = event == "EGV"
        high, low = is_egv & (gtext == "High"), is_egv & (gtext == "Low")
        label = np.where(event == "", "(none)", event)
        field = np.where(subtype == "", "event:" + label, "event:" + label + "/" + subtype)
        field[is_egv] = EGV
        field[high], field[low] = EGV_HIGH, EGV_LOW
        malformed = malformed_rows(cols, n)
        field[malformed] = MALFORMED
        value = gtext.copy()
        for c in EVENT_VALUE_COLS:  # a non-EGV row shows its first non-empty value column
            empty = value == ""
            if c in cols and empty.any():
                value = np.where(empty & ~is_egv, strip_text(cols[c]), value)
        patient = ~is_egv & ((strip_text(col("Patient Info")) != "") | np.isin(event, PATIENT_EVENTS))
        value[patient] = REDACTED
        stream = np.where(is_egv, "egv|" + strip_text(col("Transmitter ID")), field)
        time_text = strip_text(col(TIME_COL))
        t_ns, err = timeparse.parse_local(pa.array(time_text, pa.string()), self.options.time_format, participant.tz,
                                           stream)
        unit = GLUCOSE_COLS[gcols[0]]
        unit_col = pa.nulls(n, pa.string())
        if unit != "mg/dL":  # per-row unit overrides the schema's mg/dL; High/Low stay in mg/dL
            unit_col = pa.array(np.where(field == EGV, unit, None), pa.string()).dictionary_encode()
        return native_table(participant, field, time_text, t_ns, err, value, unit_col, path, lines)


def censored_values_mg_dl() -> tuple[float, float]:
    """(below-range, above-range) glucose value of a censored CGM reading: the glucose channel's registry
    bounds, which no accepted real reading passes (validation clips to them), so the order of readings holds."""
    ch = registry.get("glucose")
    return float(ch.valid_min), float(ch.valid_max)


def censored_counts(inp: UnitInput, fields: tuple[str, ...] = (EGV_HIGH, EGV_LOW)) -> dict[str, int]:
    """Per-unit count of native rows of each censored-reading field (Dexcom: EGVs reported ``High`` / ``Low``)."""
    out = {f: 0 for f in fields}
    for part in inp.native:
        codes, names = dictionary_codes(part.column("field"))
        counts = np.bincount(codes[codes >= 0], minlength=len(names))
        for name in out:
            if name in names:
                out[name] += int(counts[names.index(name)])
    return out


# --- helpers shared with the LibreView adapter ---------------------------------------------------
def check_zone_option(tz: str | None, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if tz is None:
        return
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: {tz!r} is not an IANA time zone (e.g. America/New_York)") from None


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
    (:mod:`sensorpipe.sources._limits`), the sheet's declared dimension is
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
            for line, r in enumerate(it, start=2):   # one iteration per sheet row
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
    for i, r in enumerate(rows):   # one iteration per row
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
