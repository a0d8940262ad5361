"""The per-participant minute grid: ``values[T, C]`` plus ``observed[T, C]``.

Bin index = whole minutes since the grid start, computed once per row; each
channel is reduced with its registry aggregation using bincount / ufunc.at,
never a Python loop per row or per minute. Mean and sum channels share one
bincount over ``bin * C + channel``.

The grid starts at UTC 00:00 of the first observation's UTC day minus one day
and ends one day after the last one, so local-midnight windows in every zone
(offsets up to +/-14 h) fall inside it. ``tz_offset_min[T]`` is the
participant's UTC offset in force at each minute (DST aware).
"""

from __future__ import annotations

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.core.grid import DAY_MIN, MINUTE_NS, MinuteGrid
from sensorpipe.core.observations import Observations
from sensorpipe.core.timeparse import minute_offsets
from sensorpipe.schema.validate import CHANNEL_NAMES


def grid_bounds(t_utc_ns: np.ndarray) -> tuple[int, int]:
    """(start minute since epoch, number of minutes) covering the data with a day of margin."""
    return _bounds(int(t_utc_ns.min()), int(t_utc_ns.max()))


def _bounds(t_min_ns: int, t_max_ns: int) -> tuple[int, int]:
    first_day = t_min_ns // MINUTE_NS // DAY_MIN
    last_day = t_max_ns // MINUTE_NS // DAY_MIN
    return (first_day - 1) * DAY_MIN, (last_day - first_day + 3) * DAY_MIN


def build_grid(obs: Observations, out_channels: tuple[str, ...], tz: str) -> MinuteGrid | None:
    """Aggregate accepted observations onto the minute grid; None when nothing is left."""
    out_index = np.full(len(CHANNEL_NAMES), -1, np.int64)
    for j, name in enumerate(out_channels):
        out_index[CHANNEL_NAMES.index(name)] = j
    if not len(obs):
        return None
    cut = np.flatnonzero(obs.channel[1:] != obs.channel[:-1]) + 1
    run_ch = obs.channel[np.r_[0, cut]]
    if cut.size < 256 and np.unique(run_ch).size == run_ch.size:
        return _grid_from_runs(obs, out_channels, tz, out_index, cut)
    col = out_index[obs.channel]
    use = col >= 0
    if not use.any():
        return None
    t, val = obs.t_utc_ns, obs.value
    if not use.all():  # channels not in the output are skipped (copies only then)
        t, col, val = t[use], col[use], val[use]
    start, n_min = grid_bounds(t)
    minute = (t // MINUTE_NS - start).astype(np.int64)
    C = len(out_channels)
    values = np.full((n_min, C), np.nan, np.float32)
    observed = np.zeros((n_min, C), bool)
    aggs = np.array([registry.get(c).aggregation for c in out_channels])
    simple = np.isin(aggs, ("mean", "sum"))[col]
    if simple.any():
        flat = minute[simple] * C + col[simple]
        sums = np.bincount(flat, weights=val[simple], minlength=n_min * C).reshape(n_min, C)
        cnt = np.bincount(flat, minlength=n_min * C).reshape(n_min, C)
        for j in np.flatnonzero(np.isin(aggs, ("mean", "sum"))):
            has = cnt[:, j] > 0
            observed[:, j] = has
            v = sums[has, j] / cnt[has, j] if aggs[j] == "mean" else sums[has, j]
            values[has, j] = v
    for j in np.flatnonzero(~np.isin(aggs, ("mean", "sum"))):
        rows = col == j
        if rows.any():
            v, has = _reduce(aggs[j], minute[rows], val[rows], t[rows], n_min)
            values[has, j] = v[has]
            observed[:, j] = has
    return MinuteGrid(start, values, observed, minute_offsets(start * MINUTE_NS, n_min, tz), tuple(out_channels),
                      int(minute.min()), int(minute.max()))


def _grid_from_runs(obs: Observations, out_channels: tuple[str, ...], tz: str, out_index: np.ndarray,
                    cut: np.ndarray) -> MinuteGrid | None:
    """:func:`build_grid` when each channel's rows are one contiguous run (what validation usually yields).

    Each run is reduced from slices (views): no per-row channel, mask or
    combined index arrays. Every cell sums the same rows in the same order as
    the general path, so the grid is bit-identical.
    """
    t, val = obs.t_utc_ns, obs.value
    runs = [(int(out_index[c]), a, b) for c, a, b in zip(obs.channel[np.r_[0, cut]].tolist(),
                                                         np.r_[0, cut].tolist(), np.r_[cut, len(obs)].tolist())
            if out_index[c] >= 0]
    if not runs:
        return None
    t_min = min(int(t[a:b].min()) for _, a, b in runs)
    t_max = max(int(t[a:b].max()) for _, a, b in runs)
    start, n_min = _bounds(t_min, t_max)
    C = len(out_channels)
    values = np.full((n_min, C), np.nan, np.float32)
    observed = np.zeros((n_min, C), bool)
    for j, a, b in runs:
        agg = registry.get(out_channels[j]).aggregation
        minute = t[a:b] // MINUTE_NS - start
        one_per_minute = minute.size <= n_min and bool((minute[1:] > minute[:-1]).all())
        if one_per_minute and (agg in ("mean", "sum", "max", "min", "last")
                               or agg == "mode" and (not minute.size or val[a:b].min() >= 0)):
            # one row per minute (a minute export, a 5-minute CGM): every aggregation is the value itself, as
            # _reduce and the bincounts leave it: + 0.0 turns -0.0 into 0.0 as the bincount's 0.0 + v does and
            # as a mode's integer code does (NaN and negative codes go to _reduce, which refuses them), while
            # max, min and last keep the value as it is; so the grid is bit-identical
            has = np.zeros(n_min, bool)
            has[minute] = True
            v = val[a:b]
            values[minute, j] = v + 0.0 if agg in ("mean", "sum") else np.round(v) + 0.0 if agg == "mode" else v
        elif agg in ("mean", "sum"):
            cnt = np.bincount(minute, minlength=n_min)
            sums = np.bincount(minute, weights=val[a:b], minlength=n_min)
            has = cnt > 0
            # the whole column at once, no masked gathers (np.nan, not 0 / 0's negative NaN: same bytes as before)
            with np.errstate(invalid="ignore"):
                values[:, j] = np.where(has, sums / cnt if agg == "mean" else sums, np.nan)
        else:
            v, has = _reduce(agg, minute, val[a:b], t[a:b], n_min)
            values[has, j] = v[has]
        observed[:, j] = has
    return MinuteGrid(start, values, observed, minute_offsets(start * MINUTE_NS, n_min, tz), tuple(out_channels),
                      t_min // MINUTE_NS - start, t_max // MINUTE_NS - start)


def _reduce(agg: str, minute: np.ndarray, val: np.ndarray, t: np.ndarray, n_min: int) -> tuple[np.ndarray, np.ndarray]:
    has = np.bincount(minute, minlength=n_min) > 0
    if agg == "max":
        out = np.full(n_min, -np.inf)
        np.maximum.at(out, minute, val)
    elif agg == "min":
        out = np.full(n_min, np.inf)
        np.minimum.at(out, minute, val)
    elif agg == "last":
        order = np.lexsort((t, minute))
        m_sorted = minute[order]
        last = np.flatnonzero(np.r_[m_sorted[1:] != m_sorted[:-1], True])
        out = np.full(n_min, np.nan)
        out[m_sorted[last]] = val[order][last]
    elif agg == "mode":
        codes = np.round(val).astype(np.int64)
        k = int(codes.max()) + 1
        counts = np.bincount(minute * k + codes, minlength=n_min * k).reshape(n_min, k)
        out = counts.argmax(axis=1).astype(np.float64)  # ties go to the lowest code
    else:  # pragma: no cover - registry is validated
        raise ValueError(f"unknown aggregation {agg!r}")
    return out, has
