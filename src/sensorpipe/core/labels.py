"""The unified label schema (version 3), onto which every dataset's labels map, and label events.

Defined once here; the TFDS features, the README table and the label
processors are all derived from this list, so they cannot drift apart.

A missing label is explicit: class labels use -1, numeric labels NaN with a
``has_<name>`` flag, sequences -1 per unknown minute; never a made-up value.

``scope`` says how a label varies: ``participant`` labels are fixed per
participant (a window cannot change them: the leakage guard test checks it),
``participant_time`` labels come from the participants table but depend on the
window's date (pregnancy week, days since onset), ``window`` labels are
derived from the window itself or from time-stamped annotations.
"""

from __future__ import annotations

from dataclasses import dataclass

LABEL_SCHEMA_VERSION = 3   # 3: CGM level-2 ranges and events, GMI; coverage at the device's interval


@dataclass(frozen=True)
class LabelEvent:
    """A time-stamped annotation: ``[start_utc_min, end_utc_min)`` of ``kind`` (condition, activity, logged).

    Label processors read them from a dataset's annotation files; captions
    describe the ones overlapping a window.
    """

    start_utc_min: int
    end_utc_min: int
    kind: str
    name: str


@dataclass(frozen=True)
class LabelSpec:
    name: str
    kind: str                    # "class" | "float" | "sequence" (per-minute class codes, -1 = unknown)
    doc: str
    names: tuple[str, ...] = ()  # class names, for kind "class" and "sequence"
    unit: str = ""
    scope: str = "window"        # "window" | "participant" | "participant_time"


SLEEP_STAGES = ("awake", "light", "deep", "rem", "asleep")   # codes of the sleep_stage channel
ACTIVITIES = ("sitting", "standing", "walking", "running", "cycling", "swimming", "racket_sports",
              "strength_training", "other_exercise")

LABELS: tuple[LabelSpec, ...] = (
    # --- window labels from time-stamped annotations -------------------------------------------------------
    LabelSpec("condition", "class", "Study condition covering most of the window's labelled time (stress/affect "
              "protocols: WESAD's label stream, segments.csv of the synthetic lab study).",
              ("baseline", "stress", "recovery", "amusement", "meditation")),
    LabelSpec("activity", "class", "Activity class covering most of the window's labelled time (exercise logs, "
              "Garmin activity sports, activity-labelled recordings such as BasicMotions).", ACTIVITIES),
    # --- window labels derived from the window's channels ---------------------------------------------------
    LabelSpec("sleep_stage", "class", "Most frequent observed sleep stage of the window (sleep_stage channel).",
              SLEEP_STAGES),
    LabelSpec("sleep_stage_sequence", "sequence", "Sleep stage per minute of the window (-1 = not observed).",
              SLEEP_STAGES),
    LabelSpec("total_sleep_min", "float", "Observed minutes asleep (light, deep, REM or unstaged) in the window.",
              unit="min"),
    # CGM targets (sensorpipe.labels.cgm): Battelino 2019 consensus on time in ranges (Diabetes Care
    # 2019;42:1593) and Battelino 2023 consensus on events (Lancet Diabetes Endocrinol 2023;11:42-57)
    LabelSpec("glucose_mean_mgdl", "float", "Mean of the window's CGM readings; a Low/LO enters as 40 and a "
              "High/HI as 400 mg/dL. Every CGM target is missing below 70% of the possible readings at the "
              "device's reading interval (declared by the source, else inferred: Dexcom 5 min, Libre 15 min).",
              unit="mg/dL"),
    LabelSpec("glucose_cv_pct", "float", "Coefficient of variation of the window's CGM readings (100 x sample SD / "
              "mean; censored readings as in the mean).", unit="%"),
    LabelSpec("gmi_pct", "float", "Glucose management indicator, 3.31 + 0.02392 x mean glucose in mg/dL (Bergenstal "
              "2018, adopted by the Battelino 2019 consensus): estimated HbA1c, meaningful over >= 14 days.",
              unit="%"),
    LabelSpec("time_in_range_pct", "float", "Share of CGM readings in 70-180 mg/dL (TIR, Battelino 2019).", unit="%"),
    LabelSpec("time_below_range_pct", "float", "Share of CGM readings below 70 mg/dL (TBR levels 1+2, Battelino "
              "2019; a Low/LO counts).", unit="%"),
    LabelSpec("time_below_range_l2_pct", "float", "Share of CGM readings below 54 mg/dL (TBR level 2, Battelino 2019; "
              "a Low/LO counts).", unit="%"),
    LabelSpec("time_above_range_pct", "float", "Share of CGM readings above 180 mg/dL (TAR levels 1+2, Battelino "
              "2019; a High/HI counts).", unit="%"),
    LabelSpec("time_above_range_l2_pct", "float", "Share of CGM readings above 250 mg/dL (TAR level 2, Battelino "
              "2019; a High/HI counts).", unit="%"),
    LabelSpec("hypo_events", "float", "Level-1 hypoglycaemic events (Battelino 2023 consensus: >= 15 consecutive "
              "min below 70 mg/dL, ended by >= 15 consecutive min at >= 70; a reading covers its interval).",
              unit="events"),
    LabelSpec("hypo_l2_events", "float", "Level-2 hypoglycaemic events (Battelino 2023 consensus: >= 15 consecutive "
              "min below 54 mg/dL, ended by >= 15 consecutive min at >= 54).", unit="events"),
    LabelSpec("hyper_events", "float", "Level-1 hyperglycaemic events (Battelino 2023 consensus: >= 15 consecutive "
              "min above 180 mg/dL, ended by >= 15 consecutive min at <= 180).", unit="events"),
    LabelSpec("hyper_l2_events", "float", "Level-2 hyperglycaemic events (Battelino 2023 consensus: >= 15 "
              "consecutive min above 250 mg/dL, ended by >= 15 consecutive min at <= 250).", unit="events"),
    # --- participant-level labels from a participants table -------------------------------------------------
    LabelSpec("age_band", "class", "Participant's age band (from the age in years, or a band inside one of these).",
              ("18-29", "30-39", "40-49", "50-59", "60-69", "70+", "0-17"), scope="participant"),
    LabelSpec("sex", "class", "Participant's sex as recorded by the study.", ("female", "male"), scope="participant"),
    LabelSpec("bmi", "float", "Participant's body-mass index (bmi column, else weight_kg / (height_cm/100)^2).",
              unit="kg/m^2", scope="participant"),
    LabelSpec("diabetes_status", "class", "Participant's diabetes status from the participants table.",
              ("none", "prediabetes", "type1", "type2", "gestational"), scope="participant"),
    LabelSpec("pregnancy_week", "float", "Completed gestational weeks at the window's first local day, from the "
              "last menstrual period (lmp_date, else conception_date - 14 d, else due_date - 280 d).",
              unit="weeks", scope="participant_time"),
    LabelSpec("days_since_symptom_onset", "float",
              "Local calendar days from symptom onset to the window's first local day (negative before onset).",
              unit="days", scope="participant_time"),
)
BY_NAME = {s.name: s for s in LABELS}


def missing_value(spec: LabelSpec):
    return float("nan") if spec.kind == "float" else -1


_SCOPE_TEXT = {"window": "window", "participant": "participant (fixed)", "participant_time": "participant, by date"}


def markdown_table() -> str:
    """The README's "Unified label schema" table (``python tools/update_readme.py`` writes it)."""
    intro = (f"Schema version {LABEL_SCHEMA_VERSION}. Missing: class -1, sequence -1 per minute, "
             "float NaN with `has_<name>` False.")
    rows = [intro, "", "| label | kind | classes / unit | scope | meaning |", "|---|---|---|---|---|"]
    for s in LABELS:
        values = ", ".join(f"{i} {n}" for i, n in enumerate(s.names)) if s.names else s.unit
        rows.append(f"| `{s.name}` | {s.kind} | {values} | {_SCOPE_TEXT[s.scope]} | {s.doc.replace('|', '/')} |")
    return "\n".join(rows)
