"""Running NeuroKit2 cleaning and detectors over long signals in overlapping chunks.

A participant-day of 64 Hz PPG is 5.5 million samples; NeuroKit2's
functions build several full-length temporaries (and some build DataFrames),
so memory would grow with the recording. :func:`run_chunked` cuts the signal
into ``chunk_s`` pieces, runs the detector on each piece plus ``overlap_s``
of context on both sides (longer than the filters' transients), and keeps
only each piece's own core: per-sample outputs are stitched, events are kept
where they fall in the core. Time stays linear and memory is bounded by one
chunk. The chunk grid depends only on the signal length and the rate, so the
result is deterministic.

The wrappers below turn NeuroKit2's failure modes on degenerate input
(garbage values overflowing a filter, a flat stretch without peaks) into
"nothing here" instead of exceptions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: fn(segment) -> (per-sample output arrays, event positions within the segment, in samples, maybe fractional)
ChunkFn = Callable[[np.ndarray], tuple[tuple[np.ndarray, ...], np.ndarray]]


def run_chunked(fn: ChunkFn, x: np.ndarray, fs: float, chunk_s: float = 1800.0,
                overlap_s: float = 15.0) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``fn`` over ``x`` in overlapping chunks; (stitched per-sample outputs, global event positions in order)."""
    n = x.shape[0]
    step = max(int(chunk_s * fs), 1)
    pad = int(overlap_s * fs)
    if n <= step + pad:
        arrays, events = fn(x)
        return tuple(arrays), np.asarray(events)
    outs: list[np.ndarray] | None = None
    events = []
    for start in range(0, n, step):
        lo, hi = max(start - pad, 0), min(start + step + pad, n)
        arrays, ev = fn(x[lo:hi])
        core_lo, core_len = start - lo, min(step, n - start)
        if outs is None:
            outs = [np.empty(n, np.asarray(a).dtype) for a in arrays]
        for o, a in zip(outs, arrays):
            o[start:start + core_len] = a[core_lo:core_lo + core_len]
        ev = np.asarray(ev)
        events.append(ev[(ev >= core_lo) & (ev < core_lo + core_len)] + lo)
    return tuple(outs or ()), np.concatenate(events)


def cleaned(clean, x: np.ndarray, fs: float, **kw) -> np.ndarray | None:
    """A NeuroKit2 ``*_clean`` filter's output, or None when it is not finite.

    Garbage values (e.g. 1e308) overflow the filters; NeuroKit2 then tries to
    interpolate the resulting NaNs and raises IndexError or ValueError.
    """
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(clean(x, sampling_rate=fs, **kw), np.float64)
    except (IndexError, ValueError):
        return None
    return out if np.isfinite(out).all() else None


def peaks(find, signal: np.ndarray, fs: float, key: str, **kw) -> np.ndarray:
    """Sample indices from a NeuroKit2 ``*_findpeaks`` detector (the detector inside ``*_peaks``).

    ``*_peaks`` also formats a per-sample frame, which fails when nothing is
    found; the detectors themselves raise IndexError or ValueError on
    featureless input (e.g. a flat stretch after cleaning) instead of
    returning no peaks, so those mean "no peaks" here.
    """
    try:
        return np.asarray(find(signal, sampling_rate=fs, **kw)[key], np.int64)
    except (IndexError, ValueError):
        return np.zeros(0, np.int64)


def refine_peaks(signal: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Sub-sample positions of the local maxima at ``idx``: the vertex of the parabola through 3 samples.

    A detector returns the highest *sample*, so each beat time is off by up
    to half a sample; successive-difference HRV adds that error twice (at 64
    Hz, RMSSD^2 gains T^2/2: 11 ms in quadrature, a third of a 30-ms RMSSD).
    Three-point parabolic interpolation (as used for R-peak timing at low
    sampling rates) removes most of it; an index that is not a strict local
    maximum keeps its position.
    """
    idx = np.asarray(idx, np.int64)
    pos = idx.astype(np.float64)
    inner = (idx > 0) & (idx < signal.size - 1)
    i = idx[inner]
    y0, y1, y2 = signal[i - 1], signal[i], signal[i + 1]
    den = y0 - 2.0 * y1 + y2
    peak = den < 0
    shift = np.zeros(i.size)
    shift[peak] = 0.5 * (y0[peak] - y2[peak]) / den[peak]
    pos[inner] += np.clip(shift, -0.5, 0.5)
    return pos


def usable(x: np.ndarray, ok: np.ndarray, fs: float, min_seconds: float = 10.0) -> bool:
    """At least ``min_seconds`` of finite samples, and not all equal (a detector has something to find)."""
    return bool(ok.sum() >= min_seconds * fs and np.min(x[ok]) != np.max(x[ok]))
