"""Non-wear (off-wrist) detection on the minute grid.

A device lying on a table is still and reads no pulse; one taken off the
skin cools towards room temperature. So a minute is a non-wear *candidate*
when heart rate is not observed and either

* the accelerometer is still: ENMO observed and below ``enmo_max_mg``, or
* the skin is cold: skin temperature observed and below ``temperature_min_c``.

Only runs of candidates lasting at least ``min_duration_min`` are non-wear,
so a short still spell with a dropped pulse reading is not. A unit that has
no heart rate at all (an accelerometer-only device) cannot tell sleep from a
device on the table by ENMO alone, so with ``require_missing_heart_rate``
(the default) its stillness is not used; cold skin still is.

The rule that uses this (``nonwear`` in :mod:`sensorpipe.processing.clean`)
masks the physiological channels in those minutes and sets ``on_wrist``.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.config import NonwearConfig
from sensorpipe.processing.clean import CleaningRule, CleaningState
from sensorpipe.processing.counts import any_true

Series = tuple[np.ndarray, np.ndarray]  # (values [T], observed [T])


def long_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """bool [T]: the True cells of ``mask`` that lie in runs of at least ``min_len``."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = ends - starts >= min_len
    marks = np.zeros(mask.size + 1, np.int64)
    np.add.at(marks, starts[keep], 1)
    np.add.at(marks, ends[keep], -1)
    return np.cumsum(marks[:-1]) > 0


def candidates(enmo: Series | None, heart_rate: Series | None, skin_temperature: Series | None,
               cfg: NonwearConfig, n_minutes: int) -> np.ndarray:
    """bool [T]: minutes that look off-wrist (before the duration test)."""
    cand = np.zeros(n_minutes, bool)
    hr_missing = ~heart_rate[1] if heart_rate is not None else np.ones(n_minutes, bool)
    if enmo is not None and (heart_rate is not None or not cfg.require_missing_heart_rate):
        values, seen = enmo
        with np.errstate(invalid="ignore"):
            cand |= seen & (values < cfg.enmo_max_mg) & hr_missing
    if skin_temperature is not None and cfg.temperature_min_c is not None:
        values, seen = skin_temperature
        with np.errstate(invalid="ignore"):
            cand |= seen & (values < cfg.temperature_min_c) & hr_missing
    return cand


def detect(enmo: Series | None, heart_rate: Series | None, skin_temperature: Series | None,
           cfg: NonwearConfig, n_minutes: int) -> np.ndarray:
    """bool [T]: non-wear minutes; a series is None when the unit has no data for that channel."""
    return long_runs(candidates(enmo, heart_rate, skin_temperature, cfg, n_minutes), cfg.min_duration_min)


class NonwearRule(CleaningRule):
    """Masks ``nonwear.mask_channels`` in non-wear minutes and sets ``on_wrist`` when it is output."""

    name = "nonwear"

    def apply(self, state: CleaningState) -> None:
        nw_cfg = self.cfg.nonwear
        off = detect(state.series("enmo"), state.series("heart_rate"), state.series("skin_temperature"),
                             nw_cfg, state.values.shape[0])
        masked = [j for j, ch in enumerate(state.channels) if ch in nw_cfg.mask_channels]
        physiology = any_true(state.observed[:, masked]) if masked else np.zeros(len(off), bool)
        for j in masked:
            state.remove(j, off, "non_wear")
        if "on_wrist" in state.channels:
            j = state.channels.index("on_wrist")
            state.set(j, off, 0.0, "non_wear")
            state.set(j, physiology & ~off & ~state.observed[:, j], 1.0, "worn")
