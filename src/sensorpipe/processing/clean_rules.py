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


def hampel_rows(values: np.ndarray, observed: np.ndarray, window: int, k: float, min_deviation: float) -> np.ndarray:
    """bool [T]: observed cells that the Hampel filter flags (see the module docstring)."""
    out = np.zeros(values.shape[0], bool)
    idx = np.flatnonzero(observed)
    if idx.size == 0:
        return out
    x = np.where(observed, values, np.nan).astype(np.float64)
    win = sliding_window_view(np.pad(x, window // 2, constant_values=np.nan), window)[idx]  # [n_obs, window]
    med, n = _row_nanmedian(win)
    mad, _ = _row_nanmedian(np.abs(win - med[:, None]))
    limit = np.maximum(k * MAD_TO_SD * mad, min_deviation)
    out[idx] = (n >= window // 2 + 1) & (np.abs(x[idx] - med) > limit)
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
