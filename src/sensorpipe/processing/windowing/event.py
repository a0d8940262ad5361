"""``event``: one window per label event, starting ``event.offset_before_min`` before it.

Events come from the unit's label processors: any
:class:`~sensorpipe.labels.base.LabelProcessor` that applies to the unit and
has a method ``events(unit) -> np.ndarray`` (int64 UTC minutes) contributes;
the built-in ``condition_segments`` processor gives each segment's start, so a
stress-protocol study yields one window at the onset of every condition. With
``offset_before_min`` < ``size_min`` every window contains its event.

An event whose window has no observed minute is counted as ``no_data`` (a
labelled moment the sensors missed is worth knowing about); two events in the
same minute give one window and one ``duplicate_start``. ``stride_min`` and
``alignment`` are not used.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.config import ConfigError, WindowConfig
from sensorpipe.processing.windowing.base import WindowingStrategy


def label_events(unit) -> np.ndarray:
    """Sorted UTC minutes of every event the unit's label processors report (duplicates kept); for a person,
    those of each of their sources."""
    from sensorpipe.labels.base import processors_for

    parts = [np.zeros(0, np.int64)]
    for ref in getattr(unit, "parts", (unit,)):   # a person: every source's events
        for proc in processors_for(ref):  # one per processor (every built-in label module registered)
            if callable(getattr(proc, "events", None)):
                parts.append(np.asarray(proc.events(ref), np.int64).reshape(-1))
    return np.sort(np.concatenate(parts))


class EventCentred(WindowingStrategy):
    """A window of ``size_min`` around each label event."""

    name = "event"
    uses = ("event",)
    count_empty = True

    def starts(self, grid, unit):
        if unit is None:
            return np.zeros(0, np.int64)
        return label_events(unit) - grid.start_minute - self.cfg.event.offset_before_min

    @classmethod
    def check_config(cls, cfg: WindowConfig, path: str) -> None:
        super().check_config(cfg, path)
        if cfg.event.offset_before_min >= cfg.size_min:
            raise ConfigError(f"{path}.event.offset_before_min ({cfg.event.offset_before_min}) must be below "
                              f"{path}.size_min ({cfg.size_min}), or the window would not contain its event")
