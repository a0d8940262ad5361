"""A mergeable quantile sketch: a fixed-bin histogram per channel.

Robust normalization needs the train-split median and interquartile range,
but pass one sees one unit at a time and the runners must agree to the last
bit. A histogram with fixed bins over each channel's registry valid range
``[lo, hi]`` does both: per-unit sketches are integer counts, so merging is
exact, associative and order independent (every runner gets the same
numbers), and the memory is ``bins`` counters per channel however long the
data.

Error bound (stated, and tested against ``np.quantile``): for a quantile
whose order statistics lie inside ``[lo, hi]``, :meth:`HistogramSketch.quantile`
is within **half a bin width**, ``(hi - lo) / (2 * bins)``, of
``np.quantile(data, q)`` (the default "linear" definition), because each of
the two order statistics it interpolates is replaced by the midpoint of its
bin. With the default 8192 bins that is 0.014 bpm for heart rate and 0.037
mg/dL for glucose. The smallest and largest values are kept exactly (so
``q = 0`` and ``q = 1`` are exact) and estimates are clamped into that
``[min, max]``, which never increases the error. Values below ``lo`` or above
``hi`` (possible for summed channels) are counted in under/overflow cells; an
order statistic among them other than the extremes is reported as ``lo`` /
``hi`` and the bound does not hold for it (:meth:`HistogramSketch.out_of_range`
says how many there are).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 8192


def observed_by_channel(v: np.ndarray, o: np.ndarray) -> list[np.ndarray]:
    """Each channel's observed values (views of one compress) from channel-major ``v``/``o`` ``[C, T]``."""
    cnt = np.count_nonzero(o, axis=1)
    return np.split(v[o], np.cumsum(cnt)[:-1])


@dataclass
class HistogramSketch:
    """Counts ``[C, bins + 2]`` (cell 0 underflow, cell ``bins + 1`` overflow) over ``[lo, hi]`` per channel."""

    lo: np.ndarray        # float64 [C]
    hi: np.ndarray        # float64 [C]
    counts: np.ndarray    # int64 [C, bins + 2]
    min: np.ndarray       # float64 [C], exact (inf when empty)
    max: np.ndarray       # float64 [C], exact (-inf when empty)

    @property
    def bins(self) -> int:
        return int(self.counts.shape[1] - 2)

    @property
    def width(self) -> np.ndarray:
        return (self.hi - self.lo) / self.bins

    @property
    def error_bound(self) -> np.ndarray:
        """Largest quantile error for quantiles inside ``[lo, hi]``, per channel (real units)."""
        return self.width / 2.0

    @property
    def count(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    @property
    def out_of_range(self) -> np.ndarray:
        """Values below ``lo`` or above ``hi``, per channel (their quantiles are not bounded)."""
        return self.counts[:, 0] + self.counts[:, -1]

    @classmethod
    def zeros(cls, lo: np.ndarray, hi: np.ndarray, bins: int = DEFAULT_BINS) -> "HistogramSketch":
        C = len(lo)
        return cls(np.asarray(lo, np.float64), np.asarray(hi, np.float64), np.zeros((C, bins + 2), np.int64),
                   np.full(C, np.inf), np.full(C, -np.inf))

    @classmethod
    def of(cls, values: np.ndarray, observed: np.ndarray, lo: np.ndarray, hi: np.ndarray,
           bins: int = DEFAULT_BINS, channel_major: tuple[np.ndarray, np.ndarray] | None = None) -> "HistogramSketch":
        """Sketch of ``values [..., C]`` where ``observed``; one bincount per channel over its observed values.

        Per channel, the bin arithmetic uses that channel's scalar range
        (no per-value gathers of ``lo``/``width``), and the exact extremes are
        the min and max of the same values.
        """
        C = np.shape(lo)[0]
        if channel_major is not None:   # the caller's channel-major copies ([C, T]) of values and observed
            v, o = channel_major
        else:
            v = np.ascontiguousarray(values.reshape(-1, C).T)      # channel-major: contiguous gathers
            o = np.ascontiguousarray(observed.reshape(-1, C).T)
        return cls.of_observed(observed_by_channel(v, o), lo, hi, bins)

    @classmethod
    def of_observed(cls, per_channel: list[np.ndarray], lo: np.ndarray, hi: np.ndarray, bins: int = DEFAULT_BINS,
                    extremes: tuple[np.ndarray, np.ndarray] | None = None) -> "HistogramSketch":
        """Sketch of each channel's observed values (float32 or float64, non-finite ones are skipped);
        ``extremes``: their min and max per channel when the caller has them (NaN or inf among them is fine).

        The bin of ``x`` is ``floor((x - lo) / width)`` in float64, clipped to the
        inner bins; when the channel's extremes lie inside ``[lo, hi]`` (the usual
        case) no value needs the under/overflow tests, and truncating the clipped
        quotient is that floor (it is never negative).
        """
        sk = cls.zeros(lo, hi, bins)
        width = sk.width
        for j, x in enumerate(per_channel):
            if not x.size:
                continue
            mn, mx = (x.min(), x.max()) if extremes is None else (extremes[0][j], extremes[1][j])
            if not (np.isfinite(mn) and np.isfinite(mx)):   # a NaN or an infinity among them
                x = x[np.isfinite(x)]
                if not x.size:
                    continue
                mn, mx = x.min(), x.max()
            q = np.subtract(x, sk.lo[j], dtype=np.float64)
            q /= width[j]
            np.clip(q, 0, bins - 1, out=q)   # hi -> last bin
            inner = q.astype(np.int64)
            if sk.lo[j] <= mn and mx <= sk.hi[j]:
                sk.counts[j, 1:bins + 1] += np.bincount(inner, minlength=bins)
            else:
                cell = np.where(x < sk.lo[j], 0, np.where(x > sk.hi[j], bins + 1, inner + 1))  # 0 under, bins+1 over
                sk.counts[j] += np.bincount(cell, minlength=bins + 2)
            sk.min[j], sk.max[j] = mn, mx
        return sk

    def merge(self, other: "HistogramSketch") -> "HistogramSketch":
        if self.counts.shape != other.counts.shape or not (np.array_equal(self.lo, other.lo)
                                                           and np.array_equal(self.hi, other.hi)):
            raise ValueError("cannot merge sketches with different channels, ranges or bin counts; "
                             "re-run pass 1 (clear the .work cache) after changing normalization.sketch_bins")
        return HistogramSketch(self.lo, self.hi, self.counts + other.counts,
                               np.minimum(self.min, other.min), np.maximum(self.max, other.max))

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles ``[C, len(q)]`` (NaN for an empty channel), np.quantile's linear definition."""
        qs = np.atleast_1d(np.asarray(q, np.float64))
        C, B = self.counts.shape[0], self.bins
        out = np.full((C, qs.size), np.nan)
        mids = np.arange(B + 2, dtype=np.float64) - 0.5            # bin centres in bin units (cell 0 is underflow)
        for j in range(C):
            n = int(self.counts[j].sum())
            if not n:
                continue
            cum = np.cumsum(self.counts[j])
            rank = qs * (n - 1)
            k = np.floor(rank).astype(np.int64)
            frac = rank - k
            centre = self.lo[j] + np.clip(mids, 0.0, B) * self.width[j]  # under/overflow -> lo / hi

            def order_stat(r: np.ndarray) -> np.ndarray:  # the smallest and largest are known exactly
                v = centre[np.searchsorted(cum, r, side="right")]      # the cell holding order statistic r
                return np.where(r == 0, self.min[j], np.where(r == n - 1, self.max[j], v))

            est = (1 - frac) * order_stat(k) + frac * order_stat(np.minimum(k + 1, n - 1))
            out[j] = np.clip(est, self.min[j], self.max[j])
        return out

    def to_json(self) -> dict:
        """Sparse form (only non-zero cells), small enough for the per-unit summary."""
        cells = [np.flatnonzero(c) for c in self.counts]
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist(), "bins": self.bins,
                "cells": [c.tolist() for c in cells],
                "counts": [self.counts[j, c].tolist() for j, c in enumerate(cells)],
                "min": self.min.tolist(), "max": self.max.tolist()}

    def save(self, path: str) -> None:
        """Write the sketch (sparse: only non-zero cells) atomically; the per-unit summary keeps only the path.

        A ``.npz`` path gets an npz; any other the unit array cache format of
        :func:`sensorpipe.core.arrays.save_arrays` (one index, raw bytes): the
        driver loads one sketch per unit, and npz's zip members and per-array
        ``.npy`` headers (parsed with ``ast.literal_eval``) were most of that.
        """
        flat = np.flatnonzero(self.counts)
        arrays = dict(lo=self.lo, hi=self.hi, bins=np.int64(self.bins), cells=flat,
                      counts=self.counts.reshape(-1)[flat], min=self.min, max=self.max)
        if not path.endswith(".npz"):
            from sensorpipe.core.arrays import save_arrays

            save_arrays(path, arrays)
            return
        tmp = f"{path}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "HistogramSketch":
        if not path.endswith(".npz"):
            from sensorpipe.core.arrays import load_arrays

            return cls._from_arrays(load_arrays(path))
        with np.load(path) as d:
            return cls._from_arrays({k: d[k] for k in d.files})

    @classmethod
    def _from_arrays(cls, d: dict[str, np.ndarray]) -> "HistogramSketch":
        sk = cls.zeros(d["lo"], d["hi"], int(d["bins"]))
        sk.counts.reshape(-1)[d["cells"]] = d["counts"]
        sk.min, sk.max = d["min"].astype(np.float64), d["max"].astype(np.float64)
        return sk

    @classmethod
    def from_json(cls, d: dict) -> "HistogramSketch":
        sk = cls.zeros(np.array(d["lo"], np.float64), np.array(d["hi"], np.float64), int(d["bins"]))
        for j, (cells, counts) in enumerate(zip(d["cells"], d["counts"])):
            sk.counts[j, np.array(cells, np.int64)] = np.array(counts, np.int64)
        sk.min = np.array(d["min"], np.float64)
        sk.max = np.array(d["max"], np.float64)
        return sk
