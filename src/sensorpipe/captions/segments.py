"""Segment arithmetic of the structural captions, for all windows and channels of a unit at once.

Bin means over observed minutes, every multi-bin segment scored as an
changing or stable trend (one "reach" per first bin: how far the segment
may end, so a pair is two compares), greedy non-overlapping picks, and
``scipy.signal.find_peaks`` over all windows in one call. Pure numpy: the
level in :mod:`sensorpipe.captions.structural` turns the results into claims
and checks them with the same functions.

``scipy.signal`` (a slow import) is imported by the functions that
find peaks, when captions are made, not with this module: loading a config
registers the caption levels, and a multiprocess run's driver loads it before
its first workers start (:mod:`sensorpipe.runners._warm` imports it during
pass 1 instead).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _find_peaks():
    """``scipy.signal.find_peaks``, imported at the first call (see :mod:`sensorpipe.captions._scipy_signal`)."""
    from sensorpipe.captions._scipy_signal import signal

    return signal.find_peaks


def bin_means(values: np.ndarray, observed: np.ndarray, bin_min: int, min_observed: int) -> np.ndarray:
    """``[N, bins, C]`` mean of observed minutes per bin (NaN where too few were observed).

    Reduced channel-major (contiguous minutes), the last bin shorter when the
    window is not a whole number of bins.
    """
    return bin_means_cm(values.transpose(0, 2, 1), observed.transpose(0, 2, 1), bin_min, min_observed)


def bin_means_cm(values: np.ndarray, observed: np.ndarray, bin_min: int, min_observed: int,
                 zero_filled: bool = False) -> np.ndarray:
    """:func:`bin_means` of channel-major ``[N, C, W]`` values and mask (same numbers; ``[N, bins, C]``);
    ``zero_filled``: the values are already 0 where not observed (the batch's shared copy)."""
    N, C, W = values.shape
    v = values if zero_filled else np.where(observed, values, np.float32(0))
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
    """Every segment of at least 3 bins as (first bin, last bin) index arrays (read-only, cached: every unit
    of a run has the same bins)."""
    a, b = np.triu_indices(nb, k=2)
    a.flags.writeable = b.flags.writeable = False
    return a, b


#: the keep table of :func:`_pair_plan` is (pairs + 1) x pairs bools: 4 MiB at this size (64 bins)
_KEEP_TABLE_MAX_PAIRS = 2048


@lru_cache(maxsize=8)
def _pair_plan(nb: int) -> tuple[np.ndarray, ...]:
    """Constants of :func:`trend_scores` and :func:`pick_segments` for ``nb`` bins (read-only, cached).

    ``counts``: pairs per first bin (pairs are first-bin-major, so ``np.repeat(v, counts)`` is ``v[a]``
    without a gather); ``keep[q]``: the pairs that share at most an end bin with pair ``q`` (the row
    after the last pair keeps every pair: "no pick"), or None when that table would be large (pairs
    squared: many bins, e.g. a short ``bin_min``).
    """
    a, b = pairs(nb)
    counts = np.bincount(a, minlength=nb - 1)
    ends = b.astype(np.int16 if nb < 2 ** 15 else np.int64)     # compared with reaches of the same type
    tight = 1e-3 * (b - a)
    keep = None
    if a.size <= _KEEP_TABLE_MAX_PAIRS:
        keep = np.ones((a.size + 1, a.size), bool)
        keep[:-1] = ~((a[None, :] < b[:, None]) & (b[None, :] > a[:, None]))
        keep.flags.writeable = False
    for arr in (a, b, counts, ends, tight):
        arr.flags.writeable = False
    return a, b, counts, ends, tight, keep


def _first_bad_at_or_after(bad: np.ndarray) -> np.ndarray:
    """``[S, m]``: index of the first True of ``bad [S, m]`` at or after each position (``m`` when none)."""
    m = bad.shape[-1]
    idx = np.where(bad, np.arange(m, dtype=np.int16 if m < 2 ** 15 else np.int64), m)
    return np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]


def _stable_reach(x: np.ndarray, half: np.ndarray) -> np.ndarray:
    """``[S, nb]``: the last bin ``b`` with bins ``a..b`` all known and ``max - min <= half`` (``a`` itself
    when ``x[a]`` is unknown), for every first bin ``a``.

    The condition only gets harder as ``b`` grows, so the reach is found by binary lifting over a sparse
    table of range maxima and minima: log2(bins) steps over ``[S, nb]`` instead of a range per pair.
    The max and min are the same values a per-pair range takes, so the comparison is the same. Unknown
    bins are NaN, and so is every table cell past a row's end (each row has a NaN column after it):
    NaN propagates through maximum/minimum and fails the comparison, which is also the bounds check.
    """
    S, nb = x.shape
    w = nb + 1
    levels = max((nb - 1).bit_length(), 1)
    t0 = np.full((S, w), np.nan)
    t0[:, :nb] = x
    tmax, tmin = [t0.reshape(-1)], [t0.reshape(-1)]
    for k in range(1, levels):            # tmax[k][row * w + i] = max of the row's x[i : i + 2^k] (NaN past the end)
        h = 1 << (k - 1)
        mx, mn = np.full(S * w, np.nan), np.full(S * w, np.nan)
        np.maximum(tmax[-1][:-h], tmax[-1][h:], out=mx[:-h])    # a window crossing a row end meets its NaN
        np.minimum(tmin[-1][:-h], tmin[-1][h:], out=mn[:-h])
        tmax.append(mx)
        tmin.append(mn)
    pos = np.arange(S * w).reshape(S, w)[:, :nb]    # flat index of the reach so far
    hi, lo = x, x
    for k in reversed(range(levels)):     # try to extend by 2^k bins, largest first
        nhi = np.maximum(hi, np.take(tmax[k], pos + 1))
        nlo = np.minimum(lo, np.take(tmin[k], pos + 1))
        with np.errstate(invalid="ignore"):
            ok = nhi - nlo <= half
        pos = pos + (ok << k)
        hi = np.where(ok, nhi, hi)
        lo = np.where(ok, nlo, lo)
    return pos - np.arange(0, S * w, w)[:, None]


def trend_scores(x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Scores ``[S, pairs]`` of every segment of :func:`pairs` of the series ``x [S, nb]`` (NaN = unknown
    bin; ``delta [S]`` each series' threshold) as a changing trend, 0 where the segment is not one: all
    bins known, the end ``delta`` or more above (increasing) or below (decreasing) the start and no step
    back of more than ``delta / 2``; ``|change| / delta`` less ``1e-3`` per bin (among equal changes, the
    shortest segment says where the change happened). A segment is never both, so one array holds both:
    the sign of the change says which.

    Known-and-no-reversal is a condition that only gets harder as the segment's end moves right, so it
    is one "reach" per first bin (``[S, nb]``) and a pair holds when its end is within its first bin's
    reach: a compare per pair instead of running counts gathered per pair.
    """
    nb = x.shape[1]
    _, b, counts, ends, tight, _ = _pair_plan(nb)
    d = np.asarray(delta, np.float64)[:, None]
    steps = np.diff(x, axis=-1)                              # [S, nb-1]; NaN next to an unknown bin
    with np.errstate(invalid="ignore"):
        # b <= reach[a]: steps a..b-1 all known (so bins a..b are) and none reverses the trend
        reach_up = np.repeat(_first_bad_at_or_after(~(steps >= -d / 2)), counts, axis=1)
        reach_down = np.repeat(_first_bad_at_or_after(~(steps <= d / 2)), counts, axis=1)
        change = np.take(x, b, axis=1) - np.repeat(x[:, :nb - 1], counts, axis=1)
        trend = ((reach_up >= ends) & (change >= d)) | ((reach_down >= ends) & (change <= -d))
        return np.where(trend, np.abs(change) / d - tight, 0.0)


def pick_stable(x: np.ndarray, delta: np.ndarray,
                taken: list[tuple[np.ndarray, np.ndarray]] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The longest stable stretch of each series ``x [S, nb]``: at least 4 bins, all known, within
    ``delta / 2`` of each other, sharing at most an end bin with each ``taken`` pick (of
    :func:`pick_segments`); the first of equal lengths in pair order. Returns first bins, last bins and
    lengths in bins ``[S]`` (length 0: none), as :func:`pick_segments` would over the pairs' lengths.

    No pair is scored: a stretch from bin ``a`` may end anywhere up to its stable reach, and a taken
    pick ``lo..hi`` caps that end at ``lo`` for every ``a < hi`` (a stretch starting at or after ``hi``
    is clear of it). The longest stretch from ``a`` ends at that cap, and the first ``a`` with the
    longest is the first such pair.
    """
    S, nb = x.shape
    pa, pb = pairs(nb)
    first = np.arange(nb)
    cap = _stable_reach(x, np.asarray(delta, np.float64)[:, None] / 2)
    for best, val in taken:
        lo, hi = np.where(val > 0, pa[best], nb), np.where(val > 0, pb[best], -1)   # no pick: no cap
        cap = np.where(first < hi[:, None], np.minimum(cap, lo[:, None]), cap)
    length = cap - first
    a = np.argmax(length, axis=1)
    n = length[np.arange(S), a]
    return a, a + n, np.where(n >= 3, n, 0).astype(np.float64)


def pick_segments(score: np.ndarray, nb: int, k: int,
                  taken: list[tuple[np.ndarray, np.ndarray]] = ()) -> list[tuple[np.ndarray, np.ndarray]]:
    """Greedy per series: the ``k`` best segments of ``score [S, pairs]`` over :func:`pairs` of ``nb``
    bins (scores >= 0; the first of equal scores) that share at most an end bin with each other and with
    the ``taken`` picks (earlier results of this function).

    Returns ``(pair index [S], score [S])`` per pick; a score of 0 means no segment. Excluding the
    segments a pick overlaps is one row gather of the cached ``keep`` table and a multiply (the scores
    are finite and non-negative, so a multiply by 0/1 is exact); with too many pairs for a table, the
    same pairs are compared per series.
    """
    S, P = score.shape
    pa, pb, *_, keep = _pair_plan(nb)

    def exclude(best: np.ndarray, val: np.ndarray) -> None:
        if keep is not None:
            np.multiply(score, keep[np.where(val > 0, best, P)], out=score)
        else:     # the same pairs, compared per series (no table)
            lo, hi = pa[best][:, None], pb[best][:, None]
            np.copyto(score, 0.0, where=(pa < hi) & (pb > lo) & (val > 0)[:, None])

    score = score.copy() if taken or k > 1 else score
    for best, val in taken:
        exclude(best, val)
    rows = np.arange(S)
    out = []
    for n in range(k):
        best = np.argmax(score, axis=1)
        val = score[rows, best]
        out.append((best, val))
        if n + 1 < k:
            exclude(best, val)
    return out


def _known_runs(x: np.ndarray) -> list[tuple[int, int]]:
    ok = ~np.isnan(x)
    d = np.diff(np.concatenate(([0], ok.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _sentinel(x: np.ndarray) -> float | None:
    """A value far above every finite value of ``x`` (4 times the largest magnitude, plus 1e6), which separates
    rows and unknown stretches for :func:`batched_extrema`; None when ``x`` has no finite value. The largest
    magnitude comes from one reduction that skips NaN (no copy of the finite values)."""
    a = np.abs(x)
    top = float(np.fmax.reduce(a, axis=None, initial=-np.inf))
    if top == np.inf:   # an infinity among the values: the largest finite one
        a = a[np.isfinite(a)]
        top = float(a.max()) if a.size else -np.inf
    return None if top == -np.inf else top * 4 + 1e6


def _rows_joined(x: np.ndarray, fill: float) -> np.ndarray:
    """The rows of ``x [R, L]`` as one float64 series ``[R * (L + 1)]``: each row followed by ``fill``, and its
    NaN (unknown) replaced by ``fill`` too, so that one ``find_peaks`` call sees every row bounded.

    ``fill`` is at or above every value (the callers' sentinels and +inf), so ``fmin`` with it keeps every
    value and turns only NaN into ``fill``: an arithmetic pass, several times faster than a masked copy.
    A value above ``fill`` (an infinity above a finite sentinel) takes the masked copy instead.
    """
    R, L = x.shape
    flat = np.empty((R, L + 1))
    flat[:, L] = fill
    if float(np.fmax.reduce(x, axis=None, initial=-np.inf)) <= fill:
        np.fmin(x, fill, out=flat[:, :L])
    else:
        flat[:, :L] = x
        np.copyto(flat[:, :L], fill, where=np.isnan(x))
    return flat.reshape(-1)


def batched_extrema(x: np.ndarray, prominence: float, max_width: float | None = None,
                    height: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of each row of ``x [N, L]`` (NaN = unknown) with at least ``prominence``: (row, index, prominence).

    One ``find_peaks`` call for all rows: rows and unknown stretches are
    separated by a sentinel above every value, which bounds the prominence and
    width searches exactly as the end of a known run would, and is never
    reported itself. Same result as one call per known run.
    """
    N, L = x.shape
    if height is not None:
        with np.errstate(invalid="ignore"):
            live = np.flatnonzero((x >= height).any(axis=1))
        if live.size < N:   # a row with no sample at its height has no peak: search the others only (rows are independent)
            rows, idx, prom = batched_extrema(x[live], prominence, max_width, height[live])
            return live[rows], idx, prom
    sentinel = _sentinel(x)
    if sentinel is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    flat = _rows_joined(x, sentinel)
    kw = {"prominence": prominence}
    if max_width is not None:
        kw["width"] = (None, max_width)
    # height is checked before prominence: the sentinels (and, for spikes, minutes not high enough above their
    # bin) never reach the costly prominence search
    low = None if height is None else _rows_joined(height, np.inf)   # NaN height (unknown): never a peak
    kw["height"] = (low, sentinel / 2)
    find_peaks = _find_peaks()

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
    sentinel = _sentinel(x)
    if sentinel is None:
        return [empty] * J
    flat = _rows_joined(x.reshape(J * N, L), sentinel)
    low = np.repeat(np.asarray(prominence, np.float64), N * (L + 1))
    find_peaks = _find_peaks()

    idx, props = find_peaks(flat, height=(None, sentinel / 2), prominence=low)
    real = flat[idx] < sentinel
    idx, prom = idx[real], props["prominences"][real]
    row, pos = idx // (L + 1), idx % (L + 1)
    series = row // N
    bounds = np.searchsorted(series, np.arange(J + 1))     # peaks come in flat order: series by series
    return [(row[a:b] % N, pos[a:b], prom[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def extremum_holds(x: np.ndarray, i: int, prominence: float, max_width: float | None = None) -> str | None:
    """Why ``x[i]`` is not a peak of ``x`` with that prominence (and width), or None."""
    from sensorpipe.captions._scipy_signal import signal

    find_peaks, peak_prominences, peak_widths = signal.find_peaks, signal.peak_prominences, signal.peak_widths

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
