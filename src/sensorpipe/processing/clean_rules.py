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
    register_cleaning_rule,
)


@register_cleaning_rule
class RangeRule(CleaningRule):
    name = "range"

    def apply(self, state: CleaningState) -> None:
        for j, ch in enumerate(state.channels):  # one pass per channel
            s = state.settings[ch]
            if s.range_action == "clip":
                state.clip(j, s.valid_min, s.valid_max, "out_of_range_clipped")
            else:
                col = state.values[:, j]
                with np.errstate(invalid="ignore"):
                    state.remove(j, (col < s.valid_min) | (col > s.valid_max), "out_of_range_removed")


@register_cleaning_rule
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


@register_cleaning_rule
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


def _sorted_median(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of each column of ``s`` ([window, cells], sorted along axis 0) over its first ``n`` (> 0) entries."""
    cells = s.shape[1]
    flat, r = s.reshape(-1), np.arange(cells)     # flat gathers: ~2x faster than s[rows, r] pairs
    return (flat[(n - 1) // 2 * cells + r] + flat[n // 2 * cells + r]) / 2


def _sort_columns(rows: list[np.ndarray]) -> np.ndarray:
    """Sort element-wise across a few equally long arrays: [len(rows), cells], ascending along axis 0.

    An odd-even transposition network of min/max over whole arrays: for a
    window of 5 that is 10 compare-exchanges, far cheaper than sorting each
    5-value window with ``np.sort``. The arrays hold no NaN (the caller uses
    +inf for "not observed", which sorts last just like NaN would).
    """
    rows = list(rows)
    for r in range(len(rows)):
        for i in range(r % 2, len(rows) - 1, 2):
            rows[i], rows[i + 1] = np.minimum(rows[i], rows[i + 1]), np.maximum(rows[i], rows[i + 1])
    return np.stack(rows)


def hampel_rows(values: np.ndarray, observed: np.ndarray, window: int, k: float, min_deviation: float) -> np.ndarray:
    """bool [T]: observed cells that the Hampel filter flags (see the module docstring).

    Windows with fewer than half their minutes observed can never flag, so the
    finite count of every window comes first (a running count, not a pass per
    window row) and only the others are sorted, twice: for the median and the
    MAD, with a min/max network across the window's columns (windows up to 15
    minutes). Same numbers as :func:`_row_nanmedian` on every window.
    """
    out = np.zeros(values.shape[0], bool)
    idx = np.flatnonzero(observed)
    if idx.size == 0:
        return out
    x = np.where(observed, values, np.nan).astype(np.float64)
    xp = np.pad(x, window // 2, constant_values=np.nan)
    nan_before = np.concatenate([[0], np.cumsum(np.isnan(xp))])
    n = window - (nan_before[window:] - nan_before[:-window])[idx]  # finite values in each cell's window
    enough = n >= window // 2 + 1
    idx, n = idx[enough], n[enough]
    if idx.size == 0:
        return out
    if np.isinf(x).any() or window > 15:  # rows sorted one by one (keeps inf - inf = NaN exactly as before)
        win = sliding_window_view(xp, window)[idx]  # [cells, window]
        med, _ = _row_nanmedian(win)
        mad, _ = _row_nanmedian(np.abs(win - med[:, None]))
    else:  # +inf for missing sorts last like NaN; no finite value moves, so the order statistics are the same
        xp[np.isnan(xp)] = np.inf
        cols = [xp[idx + i] for i in range(window)]  # the window as `window` arrays over the cells
        med = _sorted_median(_sort_columns(cols), n)
        mad = _sorted_median(_sort_columns([np.abs(c - med) for c in cols]), n)
    limit = np.maximum(k * MAD_TO_SD * mad, min_deviation)
    out[idx] = np.abs(x[idx] - med) > limit
    return out


@register_cleaning_rule
class SpikeRule(CleaningRule):
    name = "spike"

    def apply(self, state: CleaningState) -> None:
        for j, ch in enumerate(state.channels):
            s = state.settings[ch]
            if s.hampel_k > 0:
                rows = hampel_rows(state.values[:, j], state.observed[:, j], s.hampel_window_min, s.hampel_k,
                                   s.hampel_min_deviation)
                state.remove(j, rows, "spike")
