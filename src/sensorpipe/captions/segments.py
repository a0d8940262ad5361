"""Segment arithmetic of the structural captions, for all windows and channels of a unit at once.

Bin means over observed minutes, every multi-bin segment scored as an
increasing, decreasing or stable trend (running counts of reversals and
unknown bins, sparse-table ranges), greedy non-overlapping picks, and
``scipy.signal.find_peaks`` over all windows in one call. Pure numpy: the
level in :mod:`sensorpipe.captions.structural` turns the results into claims
and checks them with the same functions.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import find_peaks, peak_prominences, peak_widths


def bin_means(values: np.ndarray, observed: np.ndarray, bin_min: int, min_observed: int) -> np.ndarray:
    """``[N, bins, C]`` mean of observed minutes per bin (NaN where too few were observed).

    Reduced channel-major (contiguous minutes), the last bin shorter when the
    window is not a whole number of bins.
    """
    return bin_means_cm(values.transpose(0, 2, 1), observed.transpose(0, 2, 1), bin_min, min_observed)


def bin_means_cm(values: np.ndarray, observed: np.ndarray, bin_min: int, min_observed: int) -> np.ndarray:
    """:func:`bin_means` of channel-major ``[N, C, W]`` values and mask (same numbers; ``[N, bins, C]``)."""
    N, C, W = values.shape
    v = np.where(observed, values, np.float32(0))
    o = observed
    if W % bin_min == 0:
        shape = (N, C, W // bin_min, bin_min)
        sums = np.ascontiguousarray(v).reshape(shape).sum(axis=-1, dtype=np.float64)
        counts = np.count_nonzero(np.ascontiguousarray(o).reshape(shape), axis=-1)
    else:
        edges = np.arange(0, W, bin_min)
        sums = np.add.reduceat(v.astype(np.float64), edges, axis=2)
        counts = np.add.reduceat(o.astype(np.int32), edges, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts >= min_observed, sums / counts, np.nan).transpose(0, 2, 1)


@lru_cache(maxsize=8)
def pairs(nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Every segment of at least 3 bins as (first bin, last bin) index arrays."""
    a, b = np.triu_indices(nb, k=2)
    return a, b


@lru_cache(maxsize=8)
def pair_index(nb: int) -> dict[tuple[int, int], int]:
    return {(int(a), int(b)): p for p, (a, b) in enumerate(zip(*pairs(nb)))}


@lru_cache(maxsize=8)
def _sparse_plan(nb: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Sparse-table gather indices of each pair: max over a..b = max(T[k, a], T[k, b - 2^k + 1]), 2^k <= length."""
    a, b = pairs(nb)
    k = np.floor(np.log2(b - a + 1)).astype(np.int64)
    return k * nb + a, k * nb + (b - (1 << k) + 1), int(k.max()) + 1


def _range_extreme(x: np.ndarray, ufunc) -> np.ndarray:
    """``ufunc`` (np.fmax / np.fmin) over ``x[..., a:b+1]`` for every pair of :func:`pairs`, at once."""
    nb = x.shape[-1]
    first, second, levels = _sparse_plan(nb)
    table = [x]
    for lvl in range(1, levels):   # log2(bins) levels, vectorized over windows, channels and bins
        prev, half = table[-1], 1 << (lvl - 1)
        nxt = np.full_like(x, np.nan)
        nxt[..., :nb - half] = ufunc(prev[..., :nb - half], prev[..., half:])
        table.append(nxt)
    flat = np.concatenate(table, axis=-1)
    return ufunc(np.take(flat, first, axis=-1), np.take(flat, second, axis=-1))   # take: 4x a [..., idx] gather


def _cum(flags: np.ndarray) -> np.ndarray:
    """Running count with a leading 0: ``c[b] - c[a]`` = flags among items a..b-1."""
    return np.concatenate([np.zeros(flags.shape[:-1] + (1,), np.int16), np.cumsum(flags, axis=-1, dtype=np.int16)],
                          axis=-1)


def candidates(bm: np.ndarray, delta: np.ndarray) -> dict[str, np.ndarray]:
    """Scores ``[N, C, pairs]`` of every segment of :func:`pairs` as a trend; 0 where it is not one."""
    x = np.ascontiguousarray(np.moveaxis(bm, 1, 2))         # [N, C, nb]
    a, b = pairs(x.shape[-1])
    d = delta[None, :, None]

    def at(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:  # arr[..., idx]: np.take is ~4x the fancy gather
        return np.take(arr, idx, axis=-1)

    steps = np.diff(x, axis=-1)                              # [N, C, nb-1]; NaN next to an unknown bin
    with np.errstate(invalid="ignore"):
        up = _cum(steps < -d / 2)                            # reversals an increasing trend may not have
        down = _cum(steps > d / 2)
    unknown = _cum(np.isnan(x))
    all_known = (at(unknown, b + 1) - at(unknown, a)) == 0          # bins a..b
    length = b - a
    change = at(x, b) - at(x, a)
    with np.errstate(invalid="ignore"):
        inc = all_known & (at(up, b) == at(up, a)) & (change >= d)  # steps a..b-1
        dec = all_known & (at(down, b) == at(down, a)) & (-change >= d)
        stable = all_known & (length >= 3) & (_range_extreme(x, np.fmax) - _range_extreme(x, np.fmin) <= d / 2)
    tight = 1e-3 * length       # among equal changes, the shortest segment says where the change happened
    return {"increasing": np.where(inc, change / d - tight, 0.0), "decreasing": np.where(dec, -change / d - tight, 0.0),
            "stable": np.where(stable, length.astype(float), 0.0)}


def pick_all(score: np.ndarray, nb: int, k: int, taken: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Greedy for every window and channel at once: the ``k`` best segments sharing at most an end bin.

    ``score [..., pairs]`` over :func:`pairs` of ``nb`` bins; ``taken`` are earlier picks (segments they
    overlap are excluded). Returns one ``[..., 3]`` array (a, b, score; score 0 = none) per pick.
    """
    pa, pb = pairs(nb)
    score = score.copy()

    def exclude(pick: np.ndarray) -> None:
        lo, hi = pick[..., 0:1], pick[..., 1:2]
        np.copyto(score, 0.0, where=(pa < hi) & (pb > lo) & (pick[..., 2:3] > 0))   # not a boolean setitem: 2x

    for pick in taken or []:
        exclude(pick)
    out = []
    for _ in range(k):          # one iteration per pick, vectorized over windows and channels
        best = np.argmax(score, axis=-1)
        val = np.take_along_axis(score, best[..., None], axis=-1)[..., 0]
        pick = np.stack([pa[best], pb[best], np.where(val > 0, val, 0.0)], axis=-1)
        out.append(pick)
        exclude(pick)
    return out


def _known_runs(x: np.ndarray) -> list[tuple[int, int]]:
    ok = ~np.isnan(x)
    d = np.diff(np.concatenate(([0], ok.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def batched_extrema(x: np.ndarray, prominence: float, max_width: float | None = None,
                    height: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of each row of ``x [N, L]`` (NaN = unknown) with at least ``prominence``: (row, index, prominence).

    One ``find_peaks`` call for all rows: rows and unknown stretches are
    separated by a sentinel above every value, which bounds the prominence and
    width searches exactly as the end of a known run would, and is never
    reported itself. Same result as one call per known run.
    """
    N, L = x.shape
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    sentinel = float(np.abs(finite).max()) * 4 + 1e6
    flat = np.full((N, L + 1), sentinel)
    flat[:, :L] = np.where(np.isnan(x), sentinel, x)
    flat = flat.reshape(-1)
    kw = {"prominence": prominence}
    if max_width is not None:
        kw["width"] = (None, max_width)
    # height is checked before prominence: the sentinels (and, for spikes, minutes not high enough above their
    # bin) never reach the costly prominence search
    low = None
    if height is not None:
        low = np.full((N, L + 1), np.inf)
        low[:, :L] = height
        low = low.reshape(-1)
    kw["height"] = (low, sentinel / 2)
    idx, props = find_peaks(flat, **kw)
    real = flat[idx] < sentinel
    idx, prom = idx[real], props["prominences"][real]
    return idx // (L + 1), idx % (L + 1), prom


def batched_extrema_channels(x: np.ndarray, prominence: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`batched_extrema` of ``x [J, N, L]`` (J series of N rows) with one prominence per series, in one
    ``find_peaks`` call (per-sample prominence thresholds): a ``(row, index, prominence)`` triple per series,
    equal to ``batched_extrema(x[j], prominence[j])``.

    Every row ends with a sentinel above every value of every series, which bounds each search exactly
    as its own series' sentinel would (a value next to a sentinel is never a peak, and a base never
    crosses one); the sentinel's value itself changes nothing below it.
    """
    J, N, L = x.shape
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return [empty] * J
    sentinel = float(np.abs(finite).max()) * 4 + 1e6
    flat = np.full((J * N, L + 1), sentinel)
    flat[:, :L] = np.where(np.isnan(x), sentinel, x).reshape(J * N, L)
    flat = flat.reshape(-1)
    low = np.repeat(np.asarray(prominence, np.float64), N * (L + 1))
    idx, props = find_peaks(flat, height=(None, sentinel / 2), prominence=low)
    real = flat[idx] < sentinel
    idx, prom = idx[real], props["prominences"][real]
    row, pos = idx // (L + 1), idx % (L + 1)
    series = row // N
    bounds = np.searchsorted(series, np.arange(J + 1))     # peaks come in flat order: series by series
    return [(row[a:b] % N, pos[a:b], prom[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def extremum_holds(x: np.ndarray, i: int, prominence: float, max_width: float | None = None) -> str | None:
    """Why ``x[i]`` is not a peak of ``x`` with that prominence (and width), or None."""
    run = next(((s, e) for s, e in _known_runs(x) if s <= i < e), None)
    if run is None:
        return "its value is unknown"
    s, e = run
    seg = x[s:e]
    k = i - s
    if not (0 < k < len(seg) - 1):
        return "it is at the edge of the known data"
    idx, _ = find_peaks(seg)
    if k not in idx:
        return "it is not a local extremum"
    prom = float(peak_prominences(seg, [k])[0][0])
    if prom < prominence:
        return f"its prominence {prom:.6g} is below {prominence:g}"
    if max_width is not None:
        width = float(peak_widths(seg, [k], rel_height=0.5, prominence_data=peak_prominences(seg, [k]))[0][0])
        if width > max_width:
            return f"it lasts {width:.3g} min (a spike lasts at most {max_width:g})"
    return None
