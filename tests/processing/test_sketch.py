"""The histogram quantile sketch: stated error bound against np.quantile, exact and order-free merging."""

from __future__ import annotations

import json

import numpy as np

from sensorpipe.processing.sketch import HistogramSketch

Q = np.array([0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0])
LO, HI = np.array([25.0, 0.0, 20.0]), np.array([250.0, 300.0, 600.0])


def _data(seed: int, n: int = 5000):
    rng = np.random.default_rng(seed)
    hr = rng.normal(72, 14, n)
    steps = np.where(rng.random(n) < 0.6, 0.0, rng.gamma(2.0, 30.0, n))        # many ties at 0, heavy tail
    glucose = np.exp(rng.normal(np.log(110), 0.25, n))
    x = np.clip(np.stack([hr, steps, glucose], axis=1), LO, HI).astype(np.float32)
    return x, rng.random(x.shape) > 0.3


def test_quantiles_are_within_half_a_bin_of_numpy():
    for bins in (64, 1024, 8192):
        x, obs = _data(1)
        sk = HistogramSketch.of(x, obs, LO, HI, bins)
        np.testing.assert_allclose(sk.error_bound, (HI - LO) / (2 * bins))
        est = sk.quantile(Q)
        for j in range(3):
            exact = np.quantile(x[obs[:, j], j].astype(np.float64), Q)
            err = np.abs(est[j] - exact).max()
            assert err <= sk.error_bound[j] * (1 + 1e-9), (bins, j, err, sk.error_bound[j])
        assert (sk.count == obs.sum(axis=0)).all() and not sk.out_of_range.any()


def test_merge_is_exact_and_independent_of_grouping(tmp_path):
    parts = [_data(s, 700) for s in range(6)]
    sketches = [HistogramSketch.of(x, o, LO, HI, 512) for x, o in parts]
    forward = sketches[0]
    for s in sketches[1:]:
        forward = forward.merge(s)
    backward = sketches[-1]
    for s in sketches[-2::-1]:
        backward = backward.merge(s)
    whole = HistogramSketch.of(np.concatenate([x for x, _ in parts]), np.concatenate([o for _, o in parts]),
                               LO, HI, 512)
    for other in (backward, whole):
        np.testing.assert_array_equal(forward.counts, other.counts)
        np.testing.assert_array_equal(forward.min, other.min)
        np.testing.assert_array_equal(forward.max, other.max)
    back = HistogramSketch.from_json(json.loads(json.dumps(forward.to_json())))
    np.testing.assert_array_equal(back.counts, forward.counts)
    np.testing.assert_array_equal(back.quantile(Q), forward.quantile(Q))
    forward.save(str(tmp_path / "sketch.npz"))                     # what a unit's summary points at
    loaded = HistogramSketch.load(str(tmp_path / "sketch.npz"))
    for k in ("lo", "hi", "counts", "min", "max"):
        np.testing.assert_array_equal(getattr(loaded, k), getattr(forward, k))


def test_edges_empty_channels_and_out_of_range_values():
    x = np.array([[25.0, 0.0, 700.0], [250.0, 300.0, 10.0], [100.0, 150.0, 300.0]], np.float32)
    obs = np.array([[1, 0, 1], [1, 0, 1], [1, 0, 1]], bool)
    sk = HistogramSketch.of(x, obs, LO, HI, 100)
    assert sk.counts[0, 1] == 1 and sk.counts[0, 100] == 1   # lo in the first bin, hi in the last
    assert sk.count.tolist() == [3, 0, 3] and sk.out_of_range.tolist() == [0, 0, 2]
    q = sk.quantile([0.0, 0.5, 1.0])
    assert np.isnan(q[1]).all()
    assert q[0, 0] == 25.0 and q[0, 2] == 250.0               # clamped into the exact min / max
    assert q[2, 0] == 10.0 and q[2, 2] == 700.0                # extremes are exact even out of range
    assert abs(q[2, 1] - 300.0) <= sk.error_bound[2]
    x4 = np.array([[5.0], [700.0], [800.0], [900.0]], np.float32)   # order statistics 1, 2 overflow: reported as hi
    sk4 = HistogramSketch.of(x4, np.ones_like(x4, bool), LO[2:], HI[2:], 100)
    assert sk4.quantile([1 / 3, 2 / 3])[0].tolist() == [600.0, 600.0]


def _reference_counts(x: np.ndarray, obs: np.ndarray, lo: np.ndarray, hi: np.ndarray, bins: int) -> np.ndarray:
    """Cell of every observed finite value by the stated formula, one value at a time."""
    counts = np.zeros((x.shape[1], bins + 2), np.int64)
    width = (hi - lo) / bins
    for j in range(x.shape[1]):
        for v in x[obs[:, j], j].astype(np.float64):
            if not np.isfinite(v):
                continue
            inner = int(min(max(np.floor((v - lo[j]) / width[j]), 0), bins - 1)) + 1
            counts[j, 0 if v < lo[j] else bins + 1 if v > hi[j] else inner] += 1
    return counts


def test_cells_match_the_stated_formula_in_and_out_of_range_and_with_non_finite_values():
    """In-range channels skip the under/overflow tests; the counts must be the per-value formula's either way."""
    rng = np.random.default_rng(11)
    bins = 37
    edges = LO[:, None] + (HI - LO)[:, None] * np.arange(bins + 1) / bins       # values on bin edges
    x = np.concatenate([rng.uniform(LO, HI, (400, 3)), edges.T, rng.uniform(LO - 50, HI + 50, (50, 3))])
    x = x.astype(np.float32)
    obs = rng.random(x.shape) > 0.2
    x[: 3, 1] = [np.nan, np.inf, -np.inf]                              # non-finite observed values are skipped
    obs[: 3, 1] = True
    obs[-50:, 0] = False                                               # channel 0: every value inside [lo, hi]
    sk = HistogramSketch.of(x, obs, LO, HI, bins)
    np.testing.assert_array_equal(sk.counts, _reference_counts(x, obs, LO, HI, bins))
    for j in range(3):
        fin = x[obs[:, j], j][np.isfinite(x[obs[:, j], j])]
        assert sk.min[j] == fin.min() and sk.max[j] == fin.max()
    assert sk.out_of_range[0] == 0 and sk.out_of_range[2] > 0
