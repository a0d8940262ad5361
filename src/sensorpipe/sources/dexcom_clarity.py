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
:func:`sensorpipe.core.timeparse.parse_local`: a time in the skipped
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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources._toolkit import cgm
from sensorpipe.sources._toolkit.export_files import (list_export_units, malformed_rows, native_table, read_csv_columns,
                                                      read_head, read_xlsx_columns, strip_text)
from sensorpipe.sources.base import SourceAdapter, SourceError, check_zone_option

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
        low, high = cgm.censored_values_mg_dl()
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


def censored_counts(inp: UnitInput) -> dict[str, int]:
    """Per-unit count of EGVs reported ``High`` / ``Low`` (native fields ``egv_high`` / ``egv_low``)."""
    return cgm.censored_counts(inp, (EGV_HIGH, EGV_LOW))
