"""``fixed``: windows every ``stride_min``, optionally anchored at UTC or local midnight.

Alignment:

* ``none``: windows start at the first observed minute, then every ``stride_min``.
* ``utc_midnight``: a window starts at every UTC midnight, then every
  ``stride_min`` after it, ``ceil(1440 / stride_min)`` starts per day at most
  and none past the next midnight (so a 25-hour day never gets an extra
  window at 23:00).
* ``local_midnight``: the same at every *local* midnight (the first minute of
  each local calendar day, DST aware): day windows.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.config import WindowConfig
from sensorpipe.core.grid import DAY_MIN, MinuteGrid
from sensorpipe.processing.windowing.base import WindowingStrategy


def fixed_starts(grid: MinuteGrid, cfg: WindowConfig) -> np.ndarray:
    """Candidate start rows that overlap the observed span of the grid."""
    first, last = grid.first_data_minute, grid.last_data_minute
    if cfg.alignment == "none":
        starts = np.arange(first, last + 1, cfg.stride_min)
    else:
        minute = grid.start_minute + np.arange(grid.n_minutes, dtype=np.int64)
        if cfg.alignment == "local_midnight":
            minute = minute + grid.tz_offset_min
        day = minute // DAY_MIN
        anchors = np.flatnonzero(np.r_[False, day[1:] != day[:-1]])
        nxt = np.r_[anchors[1:], grid.n_minutes]
        per_nominal_day = -(-DAY_MIN // cfg.stride_min)  # ceil(1440 / stride)
        offsets = np.arange(per_nominal_day, dtype=np.int64) * cfg.stride_min
        per_day = [a + offsets[a + offsets < b] for a, b in zip(anchors, nxt)]  # one per day
        starts = np.concatenate(per_day) if per_day else np.zeros(0, np.int64)
    keep = (starts + cfg.size_min > first) & (starts <= last)
    return starts[keep].astype(np.int64)


class Fixed(WindowingStrategy):
    """Every candidate of :func:`fixed_starts`; only the common filters drop windows."""

    name = "fixed"

    def starts(self, grid, unit):
        return fixed_starts(grid, self.cfg)
