"""Stress/affect condition labels from WESAD's per-sample label stream.

WESAD (Schmidt et al. 2018) labels every 700-Hz chest sample with its
protocol condition; :meth:`~sensorpipe.sources.wesad.WesadAdapter.condition_segments`
turns the stream into UTC intervals (ids 1 baseline, 2 stress, 3 amusement,
4 meditation; 0 and 5-7 carry no condition). A window's ``condition`` is the
condition covering most of its labelled time, measured in nanoseconds (the
segments start and end mid-minute), -1 when no labelled sample falls in it;
the same intervals become ``condition`` events on whole minutes.

The segments are read once per subject and process (a real subject pickle is
about 1 GB, and the read, the window labels and the events all need them):
the adapter derives them while reading the subject and keeps them by the
pickle's path, size and modification time and what places it in time.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.core.labels import BY_NAME, LabelEvent
from sensorpipe.core.refs import UnitRef
from sensorpipe.core.windows import WindowBatch
from sensorpipe.labels.base import LabelProcessor
from sensorpipe.labels.intervals import Interval, majority_class_ns, minute_events
from sensorpipe.sources.base import make_adapter


class WesadCondition(LabelProcessor):
    """``condition`` from the WESAD label stream of each subject pickle."""

    name = "wesad_condition"
    produces = ("condition",)

    def applies(self, unit: UnitRef) -> bool:
        return unit.source.adapter == "wesad"

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        segs = wesad_segments(batch.unit)
        return {"condition": majority_class_ns(segs, BY_NAME["condition"].names, batch.start_utc_min,
                                               batch.size_min)}

    def label_events(self, unit: UnitRef) -> list[LabelEvent]:
        return minute_events(wesad_segments(unit), "condition")

    def events(self, unit: UnitRef) -> np.ndarray:
        """Segment starts (UTC minutes), for ``window.strategy: event`` (one window per condition onset)."""
        return np.array([e.start_utc_min for e in self.label_events(unit)], np.int64)


def wesad_segments(unit: UnitRef) -> list[Interval]:
    """``(start_ns, end_ns, condition)`` of the unit's subject: derived by the unit's read in this process, else
    from the pickle (:meth:`~sensorpipe.sources.wesad.WesadAdapter.condition_segments` keeps them per file
    version and placement)."""
    return make_adapter(unit.source, unit.base_dir).condition_segments(unit)
