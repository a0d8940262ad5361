"""The built-in cleaning rules: ``range``, ``sentinel``, ``flatline`` and ``spike`` (Hampel).

What each does and its defaults are described in :mod:`sensorpipe.processing.clean`;
``nonwear`` lives in :mod:`sensorpipe.processing.nonwear`. Every rule works per
channel on whole columns (no loop per minute) and changes cells only through
:class:`~sensorpipe.processing.clean.CleaningState`, which counts them.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sensorpipe.processing.clean import (
    MAD_TO_SD,
    CleaningRule,
    CleaningState,
)


class RangeRule(CleaningRule):
    name = "range"

    def apply(self, state: CleaningState) -> None:
        for j, ch in enumerate(state.channels):
            s = state.settings[ch]
            if s.range_action == "clip":
                state.clip(j, s.valid_min, s.valid_max, "out_of_range_clipped")
            else:
                col = state.values[:, j]
                with np.errstate(invalid="ignore"):
                    state.remove(j, (col < s.valid_min) | (col > s.valid_max), "out_of_range_removed")


class SentinelRule(CleaningRule):
    name = "sentinel"

    def apply(self, state: CleaningState) -> None:
        for j, ch in enumerate(state.channels):
            codes = state.settings[ch].sentinels
            if codes:
                state.remove(j, np.isin(state.values[:, j], np.asarray(codes, np.float32)), "sentinel")


def flatline_rows(values: np.ndarray, observed: np.ndarray, min_minutes: int, max_gap_min: int) -> np.ndarray:
    """bool [T]: observed cells in runs of one repeated value lasting ``min_minutes`` or more.

    A run continues over at most ``max_gap_min`` missing minutes; its length is
    first to last minute inclusive.
    """
    out = np.zeros(values.shape[0], bool)
    idx = np.flatnonzero(observed)
    if idx.size == 0:
        return out
    v = values[idx]
    new = np.r_[True, (v[1:] != v[:-1]) | (np.diff(idx) > max_gap_min + 1)]
    run = np.cumsum(new) - 1
    first = idx[new]
    last = idx[np.r_[new[1:], True]]
    out[idx[(last - first + 1 >= min_minutes)[run]]] = True
    return out


class FlatlineRule(CleaningRule):
    name = "flatline"

    def apply(self, state: CleaningState) -> None:
        for j, ch in enumerate(state.channels):
            n = state.settings[ch].flatline_min
            if n:
                rows = flatline_rows(state.values[:, j], state.observed[:, j], n, self.cfg.flatline_max_gap_min)
                state.remove(j, rows, "flatline")


def _row_nanmedian(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of each row ignoring NaN (NaN where a row has none), and the finite count per row."""
    s = np.sort(a, axis=1)  # NaN sort last
    n = (~np.isnan(s)).sum(axis=1)
    lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0)[:, None], 1)[:, 0]
    hi = np.take_along_axis(s, (n // 2)[:, None], 1)[:, 0]
    return np.where(n > 0, (lo + hi) / 2, np.nan), n


def _order_stats(rows: list[np.ndarray], ranks: range) -> dict[int, np.ndarray]:
    """The order statistics ``ranks`` (0 = smallest) across a few equally long arrays, element-wise.

    An odd-even transposition network of min/max over whole arrays (for 5
    arrays, 10 compare-exchanges: far cheaper than sorting each 5-value window
    with ``np.sort``), pruned to the compare-exchanges, and the halves of them,
    that reach the wanted ranks (17 of 20 min/max passes for the middle two of
    5). Order statistics are exact, so any correct network gives the same
    values. The arrays hold no NaN (the caller uses +inf for "not observed",
    which sorts last just like NaN would).
    """
    m = len(rows)
    need, ops = set(ranks), []
    for i in reversed([i for r in range(m) for i in range(r % 2, m - 1, 2)]):  # the network, last layer first
        lo, hi = i in need, i + 1 in need
        if lo or hi:
            ops.append((i, lo, hi))
            need |= {i, i + 1}
    rows = list(rows)
    for i, lo, hi in reversed(ops):
        a, b = rows[i], rows[i + 1]
        rows[i], rows[i + 1] = (np.minimum(a, b) if lo else a), (np.maximum(a, b) if hi else b)
    return {r: rows[r] for r in ranks}


def _window_median(cols: list[np.ndarray], n: np.ndarray) -> np.ndarray:
    """Median of each cell's window (``cols``: the window's values, +inf where missing) over its ``n`` finite
    values, ``n`` at least half the window: ``(s[(n - 1) // 2] + s[n // 2]) / 2`` of the sorted window."""
    window = len(cols)
    ranks = range((window // 2) // 2, window // 2 + 1)     # (n - 1) // 2 .. n // 2 for n in window // 2 + 1 .. window
    s = _order_stats(cols, ranks)
    lo, hi = s[ranks[0]], s[ranks[0]]
    for r in ranks[1:]:   # thresholds, not divisions: (n - 1) // 2 >= r iff n >= 2r + 1, n // 2 >= r iff n >= 2r
        lo = np.where(n >= 2 * r + 1, s[r], lo)
        hi = np.where(n >= 2 * r, s[r], hi)
    return np.add(lo, hi, dtype=np.float64) / 2


def hampel_rows(values: np.ndarray, observed: np.ndarray, window: int, k: float, min_deviation: float) -> np.ndarray:
    """bool [T]: observed cells that the Hampel filter flags (see the module docstring).

    Windows with fewer than half their minutes observed can never flag, so the
    finite count of every window comes first (a running count, not a pass per
    window row) and only the others are ordered, twice: for the median and the
    MAD, with a min/max network across the window's columns (windows up to 15
    minutes). When most cells qualify (a minute-resolution channel) those
    columns are shifted views of the padded series and every cell is computed
    (the others are not used); otherwise they are gathered at the qualifying
    cells. Same numbers as :func:`_row_nanmedian` on every window.
    """
    T = values.shape[0]
    h = window // 2
    # ordered in the values' own type (min and max pick values, exactly); medians are taken in float64
    xp = np.full(T + 2 * h, np.nan, np.float32 if values.dtype == np.float32 else np.float64)
    np.copyto(xp[h:h + T], values, where=observed)   # NaN where not observed, padded by NaN
    x = xp[h:h + T]
    nan = np.isnan(xp)
    nan_before = np.concatenate([[0], np.cumsum(nan)])
    n_all = window - (nan_before[window:] - nan_before[:-window])   # finite values in each cell's window
    ok = observed & (n_all >= h + 1)     # the cells that can flag
    count = np.count_nonzero(ok)
    if not count:
        return np.zeros(T, bool)
    if np.isinf(x).any() or window > 15:  # rows sorted one by one (keeps inf - inf = NaN exactly as before)
        idx = np.flatnonzero(ok)
        win = sliding_window_view(xp, window)[idx].astype(np.float64)  # [cells, window]
        med, _ = _row_nanmedian(win)
        mad, _ = _row_nanmedian(np.abs(win - med[:, None]))
        out = np.zeros(T, bool)
        out[idx] = np.abs(x[idx] - med) > np.maximum(k * MAD_TO_SD * mad, min_deviation)
        return out
    # +inf for missing sorts last like NaN; no finite value moves, so the order statistics are the same
    np.copyto(xp, np.inf, where=nan)
    if count * 4 >= T * 3:   # most cells can flag: the median over whole shifted views, no gathers
        with np.errstate(invalid="ignore"):   # cells that cannot flag: inf - inf, not used
            med_all = _window_median([xp[i:i + T] for i in range(window)], np.maximum(n_all, h + 1))
            dev_all = np.abs(x - med_all)
            idx = np.flatnonzero(ok & (dev_all > min_deviation))
        med, dev = med_all[idx], dev_all[idx]
    else:
        idx = np.flatnonzero(ok)
        med = _window_median([xp[idx + i] for i in range(window)], n_all[idx])  # the window as arrays over the cells
        dev = np.abs(x[idx] - med)
        near = dev > min_deviation
        idx, med, dev = idx[near], med[near], dev[near]
    # a cell flags only where it lies further than min_deviation from its median (the threshold is at least
    # that): the MAD, the second ordering, is needed at those cells only
    mad = _window_median([np.abs(xp[idx + i] - med) for i in range(window)], n_all[idx])
    out = np.zeros(T, bool)
    out[idx] = dev > np.maximum(k * MAD_TO_SD * mad, min_deviation)
    return out


class SpikeRule(CleaningRule):
    name = "spike"

    def apply(self, state: CleaningState) -> None:
        for j, ch in enumerate(state.channels):
            s = state.settings[ch]
            if s.hampel_k > 0:
                rows = hampel_rows(state.values[:, j], state.observed[:, j], s.hampel_window_min, s.hampel_k,
                                   s.hampel_min_deviation)
                state.remove(j, rows, "spike")
