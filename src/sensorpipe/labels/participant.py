"""Participant-level labels from a source's participants table (CSV columns kept as ``Participant.attributes``).

Fixed per participant (scope ``participant``): ``age_band`` (from ``age`` in
years, else ``age_band``), ``sex``, ``bmi`` (from ``bmi``, else ``weight_kg``
and ``height_cm``), ``diabetes_status``. They never depend on the window, so
a model cannot learn them from one window and find them changed in another
(the leakage guard test checks the written dataset).

Depending on the window's first local day (scope ``participant_time``):
``pregnancy_week`` and ``days_since_symptom_onset``.

Blank cells and explicit unknowns (``unknown``, ``NA``, ``not reported``, ...)
give a missing label. Anything else that cannot be read raises a
:class:`SourceError` naming the participants file, the participant, the
column and what to write instead, because a silently missing label would bias
every probe trained on it.
"""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

import numpy as np

from sensorpipe.core.labels import BY_NAME
from sensorpipe.core.refs import UnitRef
from sensorpipe.core.windows import WindowBatch
from sensorpipe.labels.base import LabelProcessor
from sensorpipe.sources.base import SourceError

UNKNOWN = frozenset({"", "unknown", "unk", "na", "n/a", "nan", "null", "missing", "not reported", "not known",
                     "prefer not to say", "declined", "?", "-"})
SEX_CODES = {"f": "female", "female": "female", "woman": "female", "w": "female",
             "m": "male", "male": "male", "man": "male"}
SEX_OUTSIDE_SCHEMA = frozenset({"other", "intersex", "x", "diverse"})   # recorded, but not a class: missing
DIABETES_CODES = {"none": "none", "no": "none", "no diabetes": "none", "non-diabetic": "none", "nondiabetic": "none",
                  "healthy": "none", "normal": "none", "normoglycemic": "none",
                  "prediabetes": "prediabetes", "pre-diabetes": "prediabetes", "prediabetic": "prediabetes",
                  "impaired glucose tolerance": "prediabetes", "igt": "prediabetes", "ifg": "prediabetes",
                  "type1": "type1", "type 1": "type1", "type_1": "type1", "t1d": "type1", "t1dm": "type1",
                  "type2": "type2", "type 2": "type2", "type_2": "type2", "t2d": "type2", "t2dm": "type2",
                  "gestational": "gestational", "gdm": "gestational", "gestational diabetes": "gestational"}
AGE_RANGE_YEARS = (0.0, 125.0)
BMI_RANGE = (10.0, 90.0)          # kg/m^2: beyond this a unit mix-up (lb, m) is far likelier than a person
WEIGHT_RANGE_KG = (20.0, 400.0)
HEIGHT_RANGE_CM = (90.0, 250.0)
GESTATION_DAYS = 280              # due date = LMP + 280 days (Naegele); conception ~ LMP + 14 days
CONCEPTION_AFTER_LMP_DAYS = 14
MAX_PREGNANCY_WEEK = 44           # past this (and with no delivery_date) the participant is no longer pregnant


# --- label processors ----------------------------------------------------------------------------
class Demographics(LabelProcessor):
    """``age_band``, ``sex``, ``bmi`` and ``diabetes_status``: constant per participant."""

    name = "demographics"
    produces = ("age_band", "sex", "bmi", "diabetes_status")

    def applies(self, unit: UnitRef) -> bool:
        a = unit.participant.attributes
        return any(c in a for c in ("age", "age_band", "sex", "bmi", "weight_kg", "height_cm", "diabetes_status"))

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        t = _Table(batch.unit)
        values = {"age_band": age_band(t), "sex": sex(t), "bmi": bmi(t), "diabetes_status": diabetes_status(t)}
        return {k: np.full(len(batch), v) for k, v in values.items()}


class PregnancyWeek(LabelProcessor):
    """Completed gestational weeks at each window's first local day, counted from the last menstrual period.

    The LMP is ``lmp_date``, else ``conception_date`` - 14 days, else
    ``due_date`` - 280 days (the obstetric convention: a due date is 40 weeks
    after the LMP). Missing before the LMP, on or after ``delivery_date`` when
    given, and past 44 weeks.
    """

    name = "pregnancy"
    produces = ("pregnancy_week",)

    def applies(self, unit: UnitRef) -> bool:
        a = unit.participant.attributes
        return any(_text(a.get(c)) not in UNKNOWN for c in ("lmp_date", "conception_date", "due_date"))

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        t = _Table(batch.unit)
        lmp = pregnancy_lmp_day(t)
        if lmp is None:
            return {}
        days = batch.local_day() - lmp
        delivery = t.day("delivery_date")
        ok = (days >= 0) & (days < 7 * (MAX_PREGNANCY_WEEK + 1))
        if delivery is not None:
            ok &= batch.local_day() < delivery
        return {"pregnancy_week": np.where(ok, days // 7, np.nan).astype(np.float32)}


class SymptomOnset(LabelProcessor):
    """``symptom_onset_date`` (local YYYY-MM-DD) -> local calendar days from onset to each window's first day."""

    name = "symptom_onset"
    produces = ("days_since_symptom_onset",)

    def applies(self, unit: UnitRef) -> bool:
        return _text(unit.participant.attributes.get("symptom_onset_date")) not in UNKNOWN

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        onset = _Table(batch.unit).day("symptom_onset_date")
        return {"days_since_symptom_onset": (batch.local_day() - onset).astype(np.float32)}


# --- one label each, from a participant's row ----------------------------------------------------------
def age_band(t: _Table) -> int:
    """Code of the age band: from ``age`` (years) when given, else an ``age_band`` inside one schema band."""
    bands = BY_NAME["age_band"].names
    years = t.number("age", AGE_RANGE_YEARS, "the age in whole years, e.g. 42")
    if years is not None:
        return _band_of(years, bands)
    raw = t.get("age_band")
    if raw is None:
        return -1
    m = re.fullmatch(r"(\d+)\s*(?:-|–|to)\s*(\d+)|(\d+)\s*\+|(?:<|under\s*)(\d+)", raw)
    if not m:
        t.fail("age_band", raw, f"one of {', '.join(bands)} (or a range such as 25-29 inside one of them)")
    if m.group(1):
        lo, hi = float(m.group(1)), float(m.group(2))
    elif m.group(3):
        lo, hi = float(m.group(3)), math.inf
    else:
        lo, hi = 0.0, float(m.group(4)) - 1
    code_lo, code_hi = _band_of(lo, bands), _band_of(min(hi, 1000.0), bands)
    if lo > hi or code_lo != code_hi:
        t.fail("age_band", raw, f"a band inside one of {', '.join(bands)}; or give the age in years in an 'age' "
                                "column")
    return code_lo


def sex(t: _Table) -> int:
    raw = t.get("sex")
    if raw is None or raw.lower() in SEX_OUTSIDE_SCHEMA:
        return -1
    if raw.lower() not in SEX_CODES:
        t.fail("sex", raw, "female/male (or F/M); leave blank or write 'unknown' when not recorded")
    return BY_NAME["sex"].names.index(SEX_CODES[raw.lower()])


def bmi(t: _Table) -> float:
    """``bmi`` when given, else weight_kg / (height_cm / 100)^2; NaN when neither is known."""
    direct = t.number("bmi", BMI_RANGE, "kg/m^2, e.g. 24.3")
    if direct is not None:
        return direct
    w = t.number("weight_kg", WEIGHT_RANGE_KG, "kilograms, e.g. 71.5")
    h = t.number("height_cm", HEIGHT_RANGE_CM, "centimetres, e.g. 172")
    if w is None or h is None:
        return math.nan
    value = w / (h / 100.0) ** 2
    if not BMI_RANGE[0] <= value <= BMI_RANGE[1]:
        t.fail("weight_kg", f"{w:g} kg at {h:g} cm", f"a weight and height giving a BMI of {BMI_RANGE[0]:g}-{BMI_RANGE[1]:g} kg/m^2")
    return value


def diabetes_status(t: _Table) -> int:
    raw = t.get("diabetes_status")
    if raw is None:
        return -1
    key = re.sub(r"\s+", " ", raw.lower())
    if key not in DIABETES_CODES:
        names = BY_NAME["diabetes_status"].names
        t.fail("diabetes_status", raw, f"one of {', '.join(names)} (or T1D, T2D, GDM, prediabetic, ...)")
    return BY_NAME["diabetes_status"].names.index(DIABETES_CODES[key])


def pregnancy_lmp_day(t: _Table) -> int | None:
    """Day (since 1970-01-01) of the last menstrual period that gestational age counts from, or None."""
    for column, shift in (("lmp_date", 0), ("conception_date", -CONCEPTION_AFTER_LMP_DAYS),
                          ("due_date", -GESTATION_DAYS)):
        day = t.day(column)
        if day is not None:
            return day + shift
    return None


# --- reading a participant's row with errors that say where and how to fix ----------------------------
class _Table:
    """One participant's row, with its file for error messages."""

    def __init__(self, unit: UnitRef) -> None:
        self.unit = unit
        self.attributes = unit.participant.attributes

    def get(self, column: str) -> str | None:
        """The cell's text, or None when the column is absent, blank or an explicit unknown."""
        raw = _text(self.attributes.get(column))
        return None if raw.lower() in UNKNOWN else raw

    def number(self, column: str, valid: tuple[float, float], fix: str) -> float | None:
        raw = self.get(column)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            self.fail(column, raw, f"a number ({fix})")
        if not (valid[0] <= value <= valid[1]):
            self.fail(column, raw, f"a value within {valid[0]:g}-{valid[1]:g} ({fix})")
        return value

    def day(self, column: str) -> int | None:
        raw = self.get(column)
        if raw is None:
            return None
        try:
            return (date.fromisoformat(raw) - date(1970, 1, 1)).days
        except ValueError:
            self.fail(column, raw, "a local date YYYY-MM-DD")

    def fail(self, column: str, raw: str, fix: str):
        u = self.unit
        where: object = f"the participants table of source {u.source.name!r}"
        if u.source.participants:
            path = Path(u.source.participants).expanduser()
            where = path if path.is_absolute() else Path(u.base_dir) / path
        raise SourceError(f"{where}: participant {u.participant.participant_id!r}, column {column!r}: {raw!r} "
                          f"is not valid; write {fix}, or leave it blank if unknown")


def _text(v) -> str:
    return "" if v is None else str(v).strip()


def _band_of(years: float, bands: tuple[str, ...]) -> int:
    """Index of the band holding ``years`` (bands like "18-29", "70+", "0-17")."""
    for i, b in enumerate(bands):
        lo, _, hi = b.partition("-")
        if b.endswith("+"):
            if years >= float(b[:-1]):
                return i
        elif float(lo) <= years < float(hi) + 1:
            return i
    return -1
