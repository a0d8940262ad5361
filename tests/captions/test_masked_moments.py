"""The moments' minimum and maximum come from one NaN-filled copy shared with the spike search, and equal a
masked ``min``/``max`` of the observed values in every case (no value observed, an observed NaN or infinity,
anything at all in the cells not observed, an observed NaN beside infinities of both signs)."""

from __future__ import annotations

import numpy as np

from sensorpipe.captions.segments import _rows_joined, bin_means_cm
from sensorpipe.captions.statistical import masked_moments_cm, observed_or_nan, observed_or_zero
from sensorpipe.core.windows import WindowBatch


def _masked_extremes(v: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The masked select the moments used before: +inf/-inf in the cells not observed, then min/max."""
    lo = np.where(obs, v, np.float32(np.inf)).min(axis=2).astype(np.float64)
    hi = np.where(obs, v, np.float32(-np.inf)).max(axis=2).astype(np.float64)
    return lo, hi


def test_min_and_max_equal_the_masked_ones_in_every_case():
    rng = np.random.default_rng(11)
    for trial in range(200):
        N, C, W = (int(n) for n in (rng.integers(1, 5), rng.integers(1, 5), rng.integers(1, 30)))
        v = np.round(rng.normal(0, 50, (N, C, W)), 1).astype(np.float32)
        obs = rng.random((N, C, W)) < rng.random()
        junk = rng.random(v.shape) < 0.5            # what the cells not observed hold: NaN, inf or stale values
        v[~obs & junk] = rng.choice(np.array([np.nan, np.inf, -np.inf, 1e9], np.float32), size=int((~obs & junk).sum()))
        if rng.random() < 0.3:
            obs[0, 0] = False                        # nothing observed: +inf and -inf
        if rng.random() < 0.3:
            v[-1, -1, 0], obs[-1, -1, 0] = np.nan, True          # an observed NaN: NaN
        if rng.random() < 0.3 and W > 1:
            v[0, -1, :2], obs[0, -1, :2] = (np.inf, -np.inf), True   # both infinities observed: -inf and +inf
        if rng.random() < 0.3 and W > 2:
            v[-1, 0, -3:], obs[-1, 0, -3:] = (np.nan, np.inf, -np.inf), True   # NaN and both infinities: NaN
        want_lo, want_hi = _masked_extremes(v, obs)
        with np.errstate(invalid="ignore"):      # the sum of an observed +inf and -inf
            got = [masked_moments_cm(v, obs), masked_moments_cm(v, obs, np.where(obs, v, np.float32(np.nan)),
                                                                 np.where(obs, v, np.float32(0)))]
        for m in got:
            assert np.array_equal(m["min"], want_lo, equal_nan=True), trial
            assert np.array_equal(m["max"], want_hi, equal_nan=True), trial
            assert m["min"].dtype == m["max"].dtype == np.float64
        for key in ("n", "mean", "std", "sum"):        # the shared zero-filled copy gives the same sums, bit for bit
            assert np.array_equal(got[0][key], got[1][key], equal_nan=True), (trial, key)
            assert np.array_equal(np.signbit(got[0][key]), np.signbit(got[1][key])), (trial, key)


def test_batch_nan_filled_copy_holds_observed_values_only():
    values = np.array([[[1.5, 7.0], [np.nan, 2.0], [3.0, np.nan]]], np.float32)     # [N, W, C]
    observed = np.array([[[True, False], [False, True], [True, False]]])
    batch = WindowBatch(values=values, observed=observed, channels=("heart_rate", "steps"))
    got = observed_or_nan(batch)
    assert got.dtype == np.float32 and got.shape == (1, 2, 3)
    assert np.array_equal(got, np.array([[[1.5, np.nan, 3.0], [np.nan, 2.0, np.nan]]], np.float32), equal_nan=True)
    assert observed_or_nan(batch) is got            # made once per batch
    zero = observed_or_zero(batch)
    assert zero.dtype == np.float32 and observed_or_zero(batch) is zero
    assert zero.tolist() == [[[1.5, 0.0, 3.0], [0.0, 2.0, 0.0]]]


def test_bin_means_of_the_zero_filled_copy_equal_the_masked_ones():
    rng = np.random.default_rng(3)
    for trial in range(100):
        N, C, W, B = (int(n) for n in (rng.integers(1, 4), rng.integers(1, 4), rng.integers(5, 60), rng.integers(2, 12)))
        v = np.round(rng.normal(0, 20, (N, C, W)), 2).astype(np.float32)
        obs = rng.random((N, C, W)) < rng.random()
        v[~obs] = np.nan
        want = bin_means_cm(v, obs, B, 2)
        got = bin_means_cm(np.where(obs, v, np.float32(0)), obs, B, 2, zero_filled=True)
        assert np.array_equal(got, want, equal_nan=True), trial


def test_rows_joined_turns_only_nan_into_the_fill():
    x = np.array([[1.0, np.nan, -np.inf], [np.nan, 4.0, 2.0]])
    assert _rows_joined(x, 10.0).tolist() == [1.0, 10.0, -np.inf, 10.0, 10.0, 4.0, 2.0, 10.0]
    assert _rows_joined(x, np.inf).tolist() == [1.0, np.inf, -np.inf, np.inf, np.inf, 4.0, 2.0, np.inf]
    x[1, 2] = np.inf                                 # a value above the fill keeps its value
    assert _rows_joined(x, 10.0).tolist() == [1.0, 10.0, -np.inf, 10.0, 10.0, 4.0, np.inf, 10.0]
