"""Cut windows from a minute grid with the configured strategy, and compute their local-time features.

Where windows start and which candidates a sampler keeps is the strategy's job
(:mod:`sensorpipe.processing.windowing`: ``fixed``, ``event``,
``missingness_stratified`` or a plugin). Everything else is done here, once,
for every strategy, so each drop is counted by reason in ``WindowBatch.dropped``
(which reaches the metadata as ``windows_dropped:<reason>``):

1. candidates with no observed minute at all (between two recordings, a
   device left at home) are not windows: neither kept nor counted, except for
   strategies that set ``count_empty`` (``event``: ``no_data``); two
   candidates at the same start give one window (``duplicate_start``);
2. ``too_missing``: missing share above ``max_missing_ratio``, over the channels the person's sources can
   provide, each reading covering its device's interval (``missingness_basis: measured``, the default;
   :class:`MissingBasis`), or over all output channels minute by minute;
3. ``below_min_coverage:<channel>``: a channel of ``required_coverage``
   observed in less than its share of the window's minutes (the first such
   channel, in config order, is the reason);
4. the strategy's own selection (``not_sampled:<bucket>`` for the stratified
   sampler).

Windows always hold ``size_min`` real minutes (models need a fixed shape). So
on a 23-hour local day (spring forward) a 1440-minute day window runs one
hour into the next local day, and on a 25-hour day (fall back) the last local
hour of the day is not in that day's window; ``time`` carries the true local
clock of every minute, so the model sees the repeated or skipped hour. The
minutes of data outside every window are counted as ``minutes_not_windowed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorpipe.config import WindowConfig
from sensorpipe.core.grid import DAY_MIN, MinuteGrid
from sensorpipe.core.windows import WindowBatch
from sensorpipe.processing.counts import any_true, count_true
from sensorpipe.processing.windowing import Candidates, make_strategy
from sensorpipe.processing.windowing.fixed import fixed_starts


@dataclass(frozen=True)
class MissingBasis:
    """What a window's missing share counts: which channels, and how many minutes one reading stands for.

    ``counted`` (bool [C]) are the channels the person's sources can provide
    (all of them when none is, or with ``missingness_basis: all_channels``).
    ``minutes_per_reading`` (float [C]) is 1 for a channel read every minute
    and the device's declared reading interval otherwise (Dexcom 5, LibreView
    15): each reading covers that many minutes of the window, at most the
    whole window, so a complete 15-minute Libre day is complete, not 93 %
    missing. The records' ``mask`` still marks exactly the minutes without a
    reading.
    """

    counted: np.ndarray
    minutes_per_reading: np.ndarray

    @classmethod
    def every_channel(cls, n_channels: int) -> "MissingBasis":
        return cls(np.ones(n_channels, bool), np.ones(n_channels))

    def share(self, n_missing: np.ndarray, size_min: int) -> np.ndarray:
        """Per window, the missing share from ``n_missing`` (int [N, C], minutes without a reading per
        channel). With every minute counted as itself it is an exact count over the cells, the same
        float as ``mask.mean()`` over the counted channels."""
        cols = self.counted if self.counted.any() else np.ones_like(self.counted)
        missing = n_missing[:, cols]
        per = self.minutes_per_reading[cols]
        if (per != 1).any():   # readings cover their interval: the minutes they could not cover are missing
            missing = size_min - np.minimum((size_min - missing) * per, size_min)
        return missing.sum(axis=1) / (size_min * missing.shape[1])


def window_starts(grid: MinuteGrid, cfg: WindowConfig) -> np.ndarray:
    """Candidate start rows of the ``fixed`` strategy that overlap the observed span of the grid."""
    return fixed_starts(grid, cfg)


def _count(dropped: dict[str, int], reason: str, mask: np.ndarray) -> None:
    n = int(np.count_nonzero(mask))
    if n:
        dropped[reason] = dropped.get(reason, 0) + n


def _padded(grid: MinuteGrid, front: int, back: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid arrays with ``front``/``back`` missing rows, for windows that run past an edge."""
    values, observed, offsets = grid.values, grid.observed, grid.tz_offset_min
    if front or back:
        C = values.shape[1]
        values = np.concatenate([np.full((front, C), np.nan, np.float32), values,
                                 np.full((back, C), np.nan, np.float32)])
        observed = np.concatenate([np.zeros((front, C), bool), observed, np.zeros((back, C), bool)])
        offsets = np.concatenate([np.full(front, offsets[0], np.int16), offsets, np.full(back, offsets[-1], np.int16)])
    return values, observed, offsets


def _coverage_filter(cfg: WindowConfig, grid: MinuteGrid, coverage: np.ndarray, keep: np.ndarray,
                     dropped: dict[str, int]) -> np.ndarray:
    """Apply ``required_coverage`` (``coverage``: observed share per window and channel); returns keep."""
    for ch, need in cfg.required_coverage.items():
        if ch not in grid.channels:
            raise ValueError(f"window.required_coverage.{ch}: not one of the output channels "
                             f"({', '.join(grid.channels)})")
        below = keep & (coverage[:, grid.channels.index(ch)] < need)
        _count(dropped, f"below_min_coverage:{ch}", below)
        keep = keep & ~below
    return keep


def cut_windows(grid: MinuteGrid, cfg: WindowConfig, unit=None, basis: MissingBasis | None = None) -> WindowBatch:
    """The kept windows of one unit; ``unit`` (a PersonUnit or UnitRef) feeds event and per-participant
    strategies; ``basis`` says what the missing share counts (default: every channel, minute by minute)."""
    strategy = make_strategy(cfg)
    raw = np.asarray(strategy.starts(grid, unit), np.int64).reshape(-1)
    starts = np.unique(raw)
    dropped: dict[str, int] = {}
    _count(dropped, "duplicate_start", np.ones(raw.size - starts.size, bool))
    W, T = cfg.size_min, grid.n_minutes
    # a window with no observed minute at all is not a candidate (a gap between recordings, not a
    # too-missing window): one cumulative sum over the grid rules them out before any copy
    has_obs = any_true(grid.observed)   # minutes with any channel observed (also for _not_windowed)
    any_obs = np.r_[0, np.cumsum(has_obs)]
    has_data = any_obs[np.clip(starts + W, 0, T)] - any_obs[np.clip(starts, 0, T)] > 0
    if strategy.count_empty:
        _count(dropped, "no_data", ~has_data)
    starts = starts[has_data]
    front = max(0, -int(starts.min())) if starts.size else 0
    back = max(0, int(starts.max()) + W - T) if starts.size else 0
    values, observed, offsets = _padded(grid, front, back)
    idx = (starts + front)[:, None] + np.arange(W)[None, :]
    obs_w = np.take(observed, idx, axis=0)        # rows by a 2-D index: take is ~5x the fancy gather
    n_obs = count_true(obs_w)                     # int [N, C]: exact, so missing equals the mean over (W, C)
    coverage = n_obs / W
    basis = basis or MissingBasis.every_channel(n_obs.shape[1])
    missing = basis.share(W - n_obs, W)
    keep = missing <= cfg.max_missing_ratio
    _count(dropped, "too_missing", ~keep)
    keep = _coverage_filter(cfg, grid, coverage, keep, dropped)
    kept = np.flatnonzero(keep)
    unit_key = unit.key if unit is not None else ""
    cand = Candidates(starts[kept], grid.start_minute + starts[kept], missing[kept], coverage[kept],
                      grid.channels, unit_key)
    chosen, sel_dropped = strategy.select(cand)
    chosen = np.asarray(chosen)
    if chosen.dtype != bool or chosen.shape != (len(cand),):
        raise TypeError(f"windowing strategy {cfg.strategy!r}: select() must return a bool mask of shape "
                        f"({len(cand)},), got {chosen.dtype} {chosen.shape}")
    for reason, n in sel_dropped.items():
        if n:
            dropped[reason] = dropped.get(reason, 0) + int(n)
    kept = kept[chosen]
    k = idx[kept]
    return WindowBatch(values=np.take(values, k, axis=0), observed=np.take(observed, k, axis=0), channels=grid.channels,
                       start_utc_min=grid.start_minute + starts[kept], tz_offset_min=np.take(offsets, k, axis=0),
                       grid_start_minute=grid.start_minute, dropped=dropped,
                       minutes_not_windowed=_not_windowed(grid, starts[kept] + front, W, front, has_obs))


def _not_windowed(grid: MinuteGrid, padded_starts: np.ndarray, W: int, front: int, has_obs: np.ndarray) -> int:
    """Minutes with data that no kept window covers (a difference array, no loop per window);
    ``has_obs``: ``grid.observed.any(axis=1)``."""
    T = grid.n_minutes
    diff = np.zeros(front + T + W + 1, np.int64)
    np.add.at(diff, padded_starts, 1)
    np.add.at(diff, padded_starts + W, -1)
    covered = np.cumsum(diff)[front:front + T] > 0
    return int(np.count_nonzero(has_obs & ~covered))


def time_features(grid_start_minute: int, start_row: np.ndarray, tz_offset_min: np.ndarray) -> np.ndarray:
    """``[N, W, 4]`` int16 local minute of hour, hour of day, day of week (Mon=0), month (1-12).

    Written field by field into the int16 result; the day of week and the
    month come from each minute's local day through tables over the few days
    the windows span (one datetime conversion per day, not per minute).
    """
    N, W = tz_offset_min.shape
    local = grid_start_minute + start_row.astype(np.int64)[:, None] + np.arange(W) + tz_offset_min.astype(np.int64)
    out = np.empty((N, W, 4), np.int16)
    if not local.size:
        return out
    hours = local // 60
    out[..., 0] = local - hours * 60            # minute of hour (local % 60, minutes are >= 0 here or not)
    out[..., 1] = hours % 24
    day = local // DAY_MIN
    first = int(day.min())
    days = np.arange(first, int(day.max()) + 1)
    dow = (days + 3) % 7                        # 1970-01-01 was a Thursday
    month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    rel = day - first
    out[..., 2] = dow[rel]
    out[..., 3] = month[rel]
    return out
