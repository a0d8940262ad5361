"""Cut fixed-length windows from a minute grid, and compute their local-time features.

Alignment:

* ``none``: windows start at the first observed minute, then every ``stride_min``.
* ``utc_midnight``: a window starts at every UTC midnight, then every
  ``stride_min`` after it, ``ceil(1440 / stride_min)`` starts per day at most
  and none past the next midnight (so a 25-hour day never gets an extra
  window at 23:00).
* ``local_midnight``: the same at every *local* midnight (the first minute of
  each local calendar day, DST aware).

Windows always hold ``size_min`` real minutes (models need a fixed shape). So
on a 23-hour local day (spring forward) a 1440-minute day window runs one
hour into the next local day, and on a 25-hour day (fall back) the last local
hour of the day is not in that day's window; ``time`` carries the true local
clock of every minute, so the model sees the repeated or skipped hour. The
minutes of data outside every window are counted as ``minutes_not_windowed``.

A window whose missing share (over all channels) exceeds
``max_missing_ratio`` is dropped and counted as ``too_missing``. Spans with
no observation at all (between two recordings, a device left at home) are
not windows, so they are neither kept nor counted as dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorpipe.config import WindowConfig
from sensorpipe.processing.grid import DAY_MIN, MinuteGrid


@dataclass
class Windows:
    """Kept windows of one unit, stacked."""

    start_row: np.ndarray        # int64 [N], row of the grid where each window starts
    values: np.ndarray           # float32 [N, W, C], NaN where missing
    observed: np.ndarray         # bool [N, W, C]
    tz_offset_min: np.ndarray    # int16 [N, W]
    dropped: dict[str, int]
    minutes_not_windowed: int

    def __len__(self) -> int:
        return int(self.start_row.shape[0])


def window_starts(grid: MinuteGrid, cfg: WindowConfig) -> np.ndarray:
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
        per_day = [a + offsets[a + offsets < b] for a, b in zip(anchors, nxt)]
        starts = np.concatenate(per_day) if per_day else np.zeros(0, np.int64)
    keep = (starts + cfg.size_min > first) & (starts <= last)
    return starts[keep].astype(np.int64)


def cut_windows(grid: MinuteGrid, cfg: WindowConfig) -> Windows:
    starts = window_starts(grid, cfg)
    # a window with no observed minute at all is not a candidate (a gap between recordings, not a
    # too-missing window): one cumulative sum over the grid rules them out before any copy
    any_obs = np.r_[0, np.cumsum(grid.observed.any(axis=1))]
    ends = np.minimum(starts + cfg.size_min, grid.n_minutes)
    starts = starts[any_obs[ends] - any_obs[np.minimum(starts, grid.n_minutes)] > 0]
    W, C = cfg.size_min, grid.values.shape[1]
    pad = max(0, int(starts.max()) + W - grid.n_minutes) if starts.size else 0
    values, observed, offsets = grid.values, grid.observed, grid.tz_offset_min
    if pad:
        values = np.concatenate([values, np.full((pad, C), np.nan, np.float32)])
        observed = np.concatenate([observed, np.zeros((pad, C), bool)])
        offsets = np.concatenate([offsets, np.full(pad, offsets[-1], np.int16)])
    idx = starts[:, None] + np.arange(W)[None, :]
    obs_w = observed[idx]
    missing = 1.0 - obs_w.mean(axis=(1, 2)) if starts.size else np.zeros(0)
    keep = (missing <= cfg.max_missing_ratio) & obs_w.any(axis=(1, 2))
    covered = np.zeros(grid.n_minutes + pad, bool)
    for s in starts[keep]:  # one slice per window, not per minute
        covered[s:s + W] = True
    data_rows = grid.observed.any(axis=1)
    not_windowed = int((data_rows & ~covered[:grid.n_minutes]).sum())
    dropped = {"too_missing": int((~keep).sum())} if (~keep).any() else {}
    k = idx[keep]
    return Windows(starts[keep], values[k], observed[k], offsets[k], dropped, not_windowed)


def time_features(grid_start_minute: int, start_row: np.ndarray, tz_offset_min: np.ndarray) -> np.ndarray:
    """``[N, W, 4]`` int16 local minute of hour, hour of day, day of week (Mon=0), month (1-12)."""
    W = tz_offset_min.shape[1]
    local = grid_start_minute + start_row[:, None] + np.arange(W)[None, :] + tz_offset_min.astype(np.int64)
    minute_of_hour = local % 60
    hour = (local // 60) % 24
    dow = (local // DAY_MIN + 3) % 7  # 1970-01-01 was a Thursday
    month = local.astype("datetime64[m]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    return np.stack([minute_of_hour, hour, dow, month], axis=-1).astype(np.int16)
