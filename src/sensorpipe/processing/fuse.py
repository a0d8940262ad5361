"""Fuse one person's sources before the minute grid: a per-channel source priority decides shared minutes.

When two sources of a study observe the same channel in the same UTC minute
(a wearable's heart rate and a lab ECG's, two CGMs), the readings of the
source ranked first for that channel are kept and the others are left out of
the grid: never averaged, and counted per source and channel
(``fusion_overridden``). Readings of a lower-ranked source in minutes the
higher-ranked one did not observe are kept, so a lab session fills the
wearable's gaps and vice versa. The rank is ``studies.<study>.priority`` for
the channel (sources not listed there follow, in config order), else the order
of ``sources`` in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sensorpipe.config import StudyConfig
from sensorpipe.core.grid import MINUTE_NS, MinuteGrid
from sensorpipe.core.observations import Observations
from sensorpipe.schema.validate import CHANNEL_NAMES


def priority_ranks(sources: tuple[str, ...], study: StudyConfig | None) -> np.ndarray:
    """``int [P, registry channels]``: each source's rank per channel (0 wins); ``sources`` in config order."""
    ranks = np.tile(np.arange(len(sources), dtype=np.int64)[:, None], (1, len(CHANNEL_NAMES)))
    for ch, order in (study.priority.items() if study is not None else ()):
        listed = [s for s in order if s in sources]
        rest = [s for s in sources if s not in listed]
        ranks[:, CHANNEL_NAMES.index(ch)] = [(listed + rest).index(s) for s in sources]
    return ranks


@dataclass
class Fused:
    """A person's accepted observations from all sources, after the priority rule."""

    obs: Observations
    part: np.ndarray                      # int64 per observation: the index of its source in the person's parts
    overridden: list[dict[str, int]] = field(default_factory=list)   # per part: channel -> readings that lost


def fuse(parts: list[Observations], ranks: np.ndarray) -> Fused:
    """Concatenate the parts' observations (in part order), dropping readings that lose a shared minute.

    The kept observations stay in their original order (the grid's ``last``
    aggregation and the lineage's row ranges depend on it). One sort over the
    fused rows finds the best rank per (channel, minute); a person with a
    single source is returned as it is.
    """
    P = len(parts)
    sizes = [len(p) for p in parts]
    part = np.repeat(np.arange(P, dtype=np.int64), sizes)
    overridden: list[dict[str, int]] = [{} for _ in range(P)]
    obs = Observations.concat(list(parts))
    if sum(1 for n in sizes if n) < 2:
        return Fused(obs, part, overridden)
    minute = obs.t_utc_ns // MINUTE_NS
    rank = ranks[part, obs.channel]
    order = np.lexsort((rank, minute, obs.channel))          # by channel, minute, then rank
    c, m, r = obs.channel[order], minute[order], rank[order]
    first = np.r_[True, (c[1:] != c[:-1]) | (m[1:] != m[:-1])]
    best = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))   # each row's group head
    loses = np.zeros(order.size, bool)
    loses[order] = r > r[best]
    if not loses.any():
        return Fused(obs, part, overridden)
    lost = np.bincount(part[loses] * len(CHANNEL_NAMES) + obs.channel[loses], minlength=P * len(CHANNEL_NAMES))
    for k in np.flatnonzero(lost).tolist():
        overridden[k // len(CHANNEL_NAMES)][CHANNEL_NAMES[k % len(CHANNEL_NAMES)]] = int(lost[k])
    keep = np.flatnonzero(~loses)
    return Fused(obs.take(keep), part[keep], overridden)


def window_sources(fused: Fused, grid: MinuteGrid | None, n_parts: int, start_row: np.ndarray,
                   size_min: int) -> np.ndarray:
    """``bool [N, P]``: which parts contributed an observed cell (after cleaning) to each window.

    A part contributed a minute when one of its kept readings lies in a cell
    the grid still marks observed; per window, a cumulative count over minutes
    says whether any such minute lies inside (no loop over windows). Cells
    derived after fusion (``on_wrist``, ``glucose_censored``) belong to no part.
    """
    N = int(start_row.shape[0])
    if grid is None or not N:
        return np.zeros((N, n_parts), bool)
    if n_parts == 1:   # one source: it fed every window that has an observed minute (cut_windows keeps no other)
        return np.ones((N, 1), bool)
    T = grid.n_minutes
    col_of = np.full(len(CHANNEL_NAMES), -1, np.int64)
    for j, name in enumerate(grid.channels):
        col_of[CHANNEL_NAMES.index(name)] = j
    row = fused.obs.t_utc_ns // MINUTE_NS - grid.start_minute
    col = col_of[fused.obs.channel]
    ok = (col >= 0) & (row >= 0) & (row < T)
    ok[ok] = grid.observed[row[ok], col[ok]]
    hit = np.zeros((n_parts, T), bool)
    hit[fused.part[ok], row[ok]] = True
    cum = np.zeros((n_parts, T + 1), np.int64)
    np.cumsum(hit, axis=1, out=cum[:, 1:])
    lo = np.clip(start_row, 0, T)
    hi = np.clip(start_row + size_min, 0, T)
    return (cum[:, hi] - cum[:, lo] > 0).T
