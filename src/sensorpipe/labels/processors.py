"""Built-in label processors for condition segments (participants-table labels are in :mod:`.participant`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sensorpipe.core.labels import BY_NAME, LabelEvent
from sensorpipe.core.refs import UnitRef
from sensorpipe.labels.base import LabelProcessor
from sensorpipe.labels.intervals import majority_class
from sensorpipe.sources.base import SourceError


class ConditionSegments(LabelProcessor):
    """Condition segments (participant_id, start_utc, end_utc, condition) of stress-protocol studies."""

    name = "condition_segments"
    produces = ("condition",)

    def applies(self, unit: UnitRef) -> bool:
        return bool(unit.source.options.get("segments"))

    def side_files(self, unit: UnitRef) -> list[str]:
        return [str(Path(unit.base_dir, unit.source.path, unit.source.options["segments"]))]

    def events(self, unit: UnitRef) -> np.ndarray:
        """Segment starts (int64 UTC minutes): the label events ``window.strategy: event`` centres windows on."""
        path = Path(unit.base_dir, unit.source.path, unit.source.options["segments"])
        return np.array([s for s, _, _ in _read_segments(path, unit.participant.participant_id)], np.int64)

    def label_events(self, unit):
        path = Path(unit.base_dir, unit.source.path, unit.source.options["segments"])
        return [LabelEvent(s, e, "condition", c) for s, e, c in _read_segments(path, unit.participant.participant_id)]

    def window_labels(self, batch):
        unit, start_utc_min, size_min = batch.unit, batch.start_utc_min, batch.size_min
        path = Path(unit.base_dir, unit.source.path, unit.source.options["segments"])
        segs = _read_segments(path, unit.participant.participant_id)
        return {"condition": majority_class(segs, BY_NAME["condition"].names, start_utc_min, size_min)}


def _read_segments(path: Path, pid: str) -> list[tuple[int, int, str]]:
    if not path.exists():
        raise SourceError(f"segments file {path} does not exist; fix options.segments")
    import pandas as pd

    names = BY_NAME["condition"].names
    out = []
    with path.open(newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            if row.get("participant_id") != pid:
                continue
            cond = (row.get("condition") or "").strip().lower()
            if cond not in names:
                raise SourceError(f"{path}, line {line}: condition {cond!r} is not one of {', '.join(names)}")
            try:
                s = pd.Timestamp(row["start_utc"]).value // 60_000_000_000
                e = pd.Timestamp(row["end_utc"]).value // 60_000_000_000
            except (ValueError, KeyError):
                raise SourceError(f"{path}, line {line}: start_utc/end_utc must be ISO times like 2024-03-07T09:00:00Z") from None
            out.append((s, e, cond))
    return out
