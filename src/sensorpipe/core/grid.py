"""The minute grid: one person's channels on whole UTC minutes, with what was observed and the local offset.

Built by :func:`sensorpipe.processing.grid.build_grid` from observations
(row ``i`` is minute ``start_minute + i`` since the epoch, UTC); cleaning
masks cells of it, and windows are cut from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MINUTE_NS = 60_000_000_000
DAY_MIN = 1440


@dataclass
class MinuteGrid:
    """One participant on a minute grid, channels in output order."""

    start_minute: int            # minutes since epoch (UTC) of row 0
    values: np.ndarray           # float32 [T, C], NaN where not observed
    observed: np.ndarray         # bool [T, C]
    tz_offset_min: np.ndarray    # int16 [T]
    channels: tuple[str, ...]
    first_data_minute: int       # row index of the first observation
    last_data_minute: int        # row index of the last observation

    @property
    def n_minutes(self) -> int:
        return int(self.values.shape[0])
