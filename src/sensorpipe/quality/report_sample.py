"""What the report draws from the written windows: missingness by participant and day, channel
correlation and example windows.

The metadata database holds totals; these need the windows themselves, so
:mod:`sensorpipe.reporting` reads a bounded sample of them (the first windows of
each split, in shard order: whole participants, by pseudonym) and hands them
here already decoded and in real units. Everything here is numpy over that
sample; nothing reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sensorpipe import channels as registry

#: a pair of channels needs this many minutes observed together for a correlation
MIN_PAIRED_MINUTES = 30
MAX_HEATMAP_ROWS = 40
MAX_HEATMAP_DAYS = 60
EXAMPLES_PER_STUDY = 1
#: windows the correlation prepares per numpy call (few: their float64 copies stay in cache)
CORRELATION_WINDOWS = 8


@dataclass
class SampleWindow:
    """One decoded window: values in real units (NaN where missing) and what the report shows of it."""

    split: str
    study: str
    participant: str        # pseudonym
    key: str
    start_utc_s: int
    tz_offset_min: int
    values: np.ndarray      # [W, C] float32, real units, NaN = missing (imputed in the shard)
    mask: np.ndarray        # [W, C] bool, True = missing


@dataclass
class Heatmap:
    """Observed share per (participant, day of participation) of one channel group's channels."""

    group: str
    channels: tuple[str, ...]
    rows: list[str]                 # "study / pseudonym"
    share: np.ndarray               # [rows, days] in [0, 1]; NaN = no kept window that day


@dataclass
class SampleSummary:
    channels: tuple[str, ...]               # the dataset's channel order (values' and corr's columns)
    windows: int
    by_split: dict[str, int]
    heatmaps: list[Heatmap] = field(default_factory=list)
    participants_shown: int = 0
    participants_seen: int = 0
    corr: np.ndarray | None = None          # [C, C] Pearson r, NaN = too few paired minutes
    corr_pairs: np.ndarray | None = None    # [C, C] minutes observed together
    examples: list[SampleWindow] = field(default_factory=list)


def heatmaps(windows: list[SampleWindow], channels: tuple[str, ...]) -> tuple[list[Heatmap], int, int]:
    """Per caption group: rows = participants (first ``MAX_HEATMAP_ROWS``, by study then pseudonym), columns =
    local days since the participant's first kept window (first ``MAX_HEATMAP_DAYS``)."""
    people = sorted({(w.study, w.participant) for w in windows})
    shown = people[:MAX_HEATMAP_ROWS]
    row_of = {p: i for i, p in enumerate(shown)}
    groups: dict[str, list[int]] = {}
    for j, ch in enumerate(channels):
        groups.setdefault(registry.get(ch).caption_group, []).append(j)
    # every shown window's minutes end to end, cut into runs of one cell (participant row, day): a run's
    # observed minutes per channel are one reduceat, its groups' and cells' sums then cover a few hundred runs,
    # not every minute (a bincount per window and group was most of the report's sample summary); the counts
    # are whole numbers, so the shares are the same to the bit
    first_day: dict[tuple[str, str], int] = {}
    cells, masks = [], []
    for w in windows:
        p = (w.study, w.participant)
        if p not in row_of:
            continue
        day = (w.start_utc_s // 60 + w.tz_offset_min + np.arange(w.mask.shape[0])) // 1440
        rel = day - first_day.setdefault(p, int(day[0]))
        keep = (rel >= 0) & (rel < MAX_HEATMAP_DAYS)
        cells.append(row_of[p] * MAX_HEATMAP_DAYS + rel[keep])
        masks.append(w.mask[keep])
    size = len(shown) * MAX_HEATMAP_DAYS
    obs = np.zeros((len(groups), len(shown), MAX_HEATMAP_DAYS))
    tot = np.zeros_like(obs)
    cell = np.concatenate(cells) if cells else np.zeros(0, np.int64)
    if cell.size:
        starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        observed = np.add.reduceat(~np.concatenate(masks), starts, axis=0, dtype=np.int64)   # [run, channel]
        run_cell = cell[starts]
        minutes = np.bincount(run_cell, weights=np.diff(np.r_[starts, cell.size]), minlength=size)
        for g, cols in enumerate(groups.values()):
            seen = observed[:, cols].sum(axis=1)
            obs[g] = np.bincount(run_cell, weights=seen, minlength=size).reshape(len(shown), MAX_HEATMAP_DAYS)
            tot[g] = (minutes * len(cols)).reshape(len(shown), MAX_HEATMAP_DAYS)
    used = int(np.max(np.flatnonzero(tot.sum(axis=(0, 1)))) + 1) if tot.any() else 0
    with np.errstate(invalid="ignore"):
        share = np.where(tot > 0, obs / np.maximum(tot, 1), np.nan)[:, :, :max(used, 1)]
    rows = [f"{s} / {pid[:8]}" for s, pid in shown]
    maps = [Heatmap(g, tuple(channels[j] for j in cols), rows, share[k]) for k, (g, cols) in enumerate(groups.items())]
    return maps, len(shown), len(people)


def _batches(windows: list[SampleWindow], size: int):
    """Consecutive windows, up to ``size`` at a time, of one shape each (to be stacked)."""
    part: list[SampleWindow] = []
    for w in windows:
        if part and (len(part) == size or w.mask.shape != part[0].mask.shape):
            yield part
            part = []
        part.append(w)
    if part:
        yield part


def correlation(windows: list[SampleWindow], C: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of every channel pair over the minutes where both are observed (pairwise complete), with
    the number of such minutes; NaN below ``MIN_PAIRED_MINUTES`` or where a channel is constant there."""
    n = np.zeros((C, C))
    sx = np.zeros((C, C))
    sxx = np.zeros((C, C))
    sxy = np.zeros((C, C))
    # a few windows' minutes at a time are made ready for the products (one numpy call per step for all of
    # them: per window, those calls were most of the work); the products are still one matrix product per
    # window (a stacked matmul is a BLAS call per window), added in window order, so r is the same to the bit
    for part in _batches(windows, CORRELATION_WINDOWS):
        mask = np.stack([w.mask for w in part])
        o = (~mask).astype(np.float64)
        x = np.stack([w.values for w in part]).astype(np.float64)
        np.copyto(x, 0.0, where=mask)
        np.nan_to_num(x, copy=False)
        xt = x.transpose(0, 2, 1)
        # [k, i, j]: window k's observed pairs, sum of x_i where i and j are observed, of x_i^2, of x_i x_j
        products = (o.transpose(0, 2, 1) @ o, xt @ o, (x * x).transpose(0, 2, 1) @ o, xt @ x)
        for k in range(len(part)):
            for total, product in zip((n, sx, sxx, sxy), products):
                total += product[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sx / n, sx.T / n
        cov = sxy / n - mx * my
        vx, vy = sxx / n - mx ** 2, sxx.T / n - my ** 2
        r = cov / np.sqrt(vx * vy)
    r[(n < MIN_PAIRED_MINUTES) | ~np.isfinite(r)] = np.nan
    return np.clip(r, -1, 1), n


def examples(windows: list[SampleWindow]) -> list[SampleWindow]:
    """Per study, the ``EXAMPLES_PER_STUDY`` best-observed windows (fewest missing cells; ties by key)."""
    out = []
    for study in sorted({w.study for w in windows}):
        mine = sorted((w for w in windows if w.study == study), key=lambda w: (int(w.mask.sum()), w.key))
        out += mine[:EXAMPLES_PER_STUDY]
    return out


def summarize(windows: list[SampleWindow], channels: tuple[str, ...]) -> SampleSummary:
    by_split: dict[str, int] = {}
    for w in windows:
        by_split[w.split] = by_split.get(w.split, 0) + 1
    maps, shown, seen = heatmaps(windows, channels)
    r, n = correlation(windows, len(channels)) if windows else (None, None)
    return SampleSummary(tuple(channels), len(windows), by_split, maps, shown, seen, r, n, examples(windows))
