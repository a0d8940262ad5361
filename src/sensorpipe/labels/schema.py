"""The unified label schema (version 1): every dataset's labels map onto these.

A missing label is explicit: class labels use -1, numeric labels NaN with a
``has_<name>`` flag, never a made-up value.
"""

from __future__ import annotations

from dataclasses import dataclass

LABEL_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LabelSpec:
    name: str
    kind: str                    # "class" | "float"
    doc: str
    names: tuple[str, ...] = ()  # class names, for kind == "class"
    unit: str = ""


LABELS: tuple[LabelSpec, ...] = (
    LabelSpec("condition", "class", "Study condition covering most labelled minutes of the window (stress protocols).",
              ("baseline", "stress", "recovery", "amusement")),
    LabelSpec("diabetes_status", "class", "Participant's diabetes status from the participants table.",
              ("none", "prediabetes", "type1", "type2")),
    LabelSpec("days_since_symptom_onset", "float",
              "Local calendar days from symptom onset to the window's first local day (negative before onset).",
              unit="days"),
)
BY_NAME = {s.name: s for s in LABELS}


def missing_value(spec: LabelSpec):
    return -1 if spec.kind == "class" else float("nan")
