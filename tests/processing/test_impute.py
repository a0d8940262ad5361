"""Imputation methods on crafted windows, gap limits, the untouched mask, and per-window quality figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sensorpipe
from sensorpipe.config import ChannelImputation, ConfigError, ImputationConfig, build_dataclass
from sensorpipe.processing.impute import (ImputeSpec, fill_counts, gap_lengths, impute, specs_for,
                                          window_quality)

NAN = np.nan
# one window of 12 minutes: observed at 2, 3, 7 and 8; gaps: leading 2, interior 3, trailing 3
ROW = np.array([NAN, NAN, 10.0, 12.0, NAN, NAN, NAN, 20.0, 16.0, NAN, NAN, NAN], np.float32)
FALLBACK = np.array([-99.0], np.float32)


def _one(method: str, max_gap: int | None = None, pmean=None, row=ROW):
    values = row[None, :, None].copy()
    observed = ~np.isnan(values)
    before = observed.copy()
    out = impute(values, observed, (ImputeSpec(method, max_gap),), FALLBACK,
                 None if pmean is None else np.array([pmean]))
    np.testing.assert_array_equal(observed, before)                   # the mask never changes
    np.testing.assert_array_equal(out[observed], values[observed])    # observed minutes are untouched
    return out[0, :, 0]


def test_none_leaves_nan_and_zero_fills_zero():
    np.testing.assert_array_equal(_one("none"), ROW)
    np.testing.assert_array_equal(_one("zero"), np.where(np.isnan(ROW), 0.0, ROW))


def test_participant_mean_and_window_mean():
    np.testing.assert_array_equal(_one("mean", pmean=70.0), np.where(np.isnan(ROW), 70.0, ROW))
    # a participant who never had the channel: the fallback (normalizes to 0)
    np.testing.assert_array_equal(_one("mean", pmean=NAN), np.where(np.isnan(ROW), -99.0, ROW))
    np.testing.assert_allclose(_one("window_mean"), np.where(np.isnan(ROW), 14.5, ROW))


def test_ffill_is_forward_then_backward():
    expected = [10, 10, 10, 12, 12, 12, 12, 20, 16, 16, 16, 16]
    np.testing.assert_array_equal(_one("ffill"), expected)


def test_linear_interpolates_in_time_and_holds_the_edges():
    expected = [10, 10, 10, 12, 14, 16, 18, 20, 16, 16, 16, 16]
    np.testing.assert_allclose(_one("linear"), expected)
    np.testing.assert_allclose(_one("lsm"), expected)   # the LSM recipe = linear without a gap limit
    np.testing.assert_allclose(_one("lsm", 2), expected)  # a gap limit only binds ffill/linear (as fill_counts says)


def test_max_gap_leaves_longer_gaps_whole_and_gives_them_the_fallback():
    # limit 2: the 2-minute leading gap is filled, the 3-minute interior and trailing gaps are not (not part-way)
    np.testing.assert_allclose(_one("linear", 2), [10, 10, 10, 12, -99, -99, -99, 20, 16, -99, -99, -99])
    np.testing.assert_allclose(_one("ffill", 2), [10, 10, 10, 12, -99, -99, -99, 20, 16, -99, -99, -99])
    np.testing.assert_allclose(_one("linear", 3), [10, 10, 10, 12, 14, 16, 18, 20, 16, 16, 16, 16])
    # a gap of exactly the limit is filled
    np.testing.assert_allclose(_one("ffill", 3), [10, 10, 10, 12, 12, 12, 12, 20, 16, 16, 16, 16])


def test_a_window_without_the_channel_gets_the_fallback_except_with_none():
    empty = np.full(12, NAN, np.float32)
    for method in ("zero", "window_mean", "ffill", "linear", "lsm"):
        np.testing.assert_array_equal(_one(method, row=empty), np.full(12, -99.0), err_msg=method)
    np.testing.assert_array_equal(_one("mean", pmean=5.0, row=empty), np.full(12, 5.0))
    assert np.isnan(_one("none", row=empty)).all()


def test_vectorized_linear_and_ffill_match_pandas_per_window():
    rng = np.random.default_rng(3)
    N, W, C = 40, 60, 3
    values = rng.normal(50, 10, (N, W, C)).astype(np.float32)
    observed = rng.random((N, W, C)) > 0.6
    observed[0, :, 1] = False
    values[~observed] = NAN
    specs = (ImputeSpec("linear"), ImputeSpec("ffill"), ImputeSpec("linear", 4))
    fallback = np.array([1.0, 2.0, 3.0], np.float32)
    out = impute(values, observed, specs, fallback)
    gaps = gap_lengths(observed)
    for i in range(N):
        for j, spec in enumerate(specs):
            s = pd.Series(values[i, :, j].astype(np.float64))
            if not observed[i, :, j].any():
                np.testing.assert_array_equal(out[i, :, j], fallback[j])
                continue
            ref = (s.interpolate(method="linear", limit_direction="both") if spec.method == "linear"
                   else s.ffill().bfill()).to_numpy()
            if spec.max_gap_min is not None:
                ref = np.where(gaps[i, :, j] > spec.max_gap_min, fallback[j], ref)
            np.testing.assert_allclose(out[i, :, j], ref, rtol=1e-6, err_msg=f"window {i} channel {j}")


def _scan_reference(x: np.ndarray, obs: np.ndarray, method: str) -> np.ndarray:
    """ffill / linear over whole windows ``[N, W]`` by prefix scans (the implementation before the
    at-cells one), float64 arithmetic rounded once to float32."""
    W = x.shape[1]
    pos = np.arange(W)
    prev = np.maximum.accumulate(np.where(obs, pos, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(obs, pos, W)[:, ::-1], axis=1)[:, ::-1]
    first, last = np.argmax(obs, axis=1)[:, None], (W - 1 - np.argmax(obs[:, ::-1], axis=1))[:, None]
    p, q = np.where(prev < 0, first, prev), np.where(nxt >= W, last, nxt)
    xp = np.take_along_axis(x, p, axis=1).astype(np.float64)
    if method == "ffill":
        return xp.astype(np.float32)
    xq = np.take_along_axis(x, q, axis=1).astype(np.float64)
    frac = np.where(q > p, (pos - p) / np.maximum(q - p, 1), 0.0)
    return (xp + (xq - xp) * frac).astype(np.float32)


@pytest.mark.parametrize("density", [0.02, 0.3, 0.97])
def test_at_cells_fill_is_bit_identical_to_whole_window_scans(density):
    """ffill/linear compute only the filled cells; every value must be the whole-window scan's, bit for bit,
    with empty windows, gap limits and several channels sharing a method."""
    rng = np.random.default_rng(int(density * 100))
    N, W = 9, 50
    specs = (ImputeSpec("linear"), ImputeSpec("ffill"), ImputeSpec("lsm"), ImputeSpec("linear", 3),
             ImputeSpec("ffill", 5), ImputeSpec("zero"))
    C = len(specs)
    values = rng.normal(0, 30, (N, W, C)).astype(np.float32)
    observed = rng.random((N, W, C)) < density
    observed[2] = False                                   # a window without any channel
    observed[4, :, 0] = False
    observed[5, :, 1] = True
    values[~observed] = NAN
    fallback = np.arange(C, dtype=np.float32) - 7
    out = impute(values, observed, specs, fallback)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    gaps = gap_lengths(observed)
    for j, spec in enumerate(specs):
        obs = observed[:, :, j]
        want = np.where(obs, values[:, :, j], fallback[j])
        if spec.method != "zero":
            ok = ~obs & obs.any(axis=1, keepdims=True)
            if spec.max_gap_min is not None:
                ok &= gaps[:, :, j] <= spec.max_gap_min
            ref = _scan_reference(values[:, :, j], obs, "ffill" if spec.method == "ffill" else "linear")
            want = np.where(ok, ref, want)
        else:
            want = np.where(~obs & obs.any(axis=1, keepdims=True), 0.0, want).astype(np.float32)
        assert out[:, :, j].tobytes() == want.astype(np.float32).tobytes(), f"channel {j} ({spec})"


def test_gap_lengths_and_window_quality():
    observed = ~np.isnan(ROW)[None, :, None]
    assert gap_lengths(observed)[0, :, 0].tolist() == [2, 2, 0, 0, 3, 3, 3, 0, 0, 3, 3, 3]
    obs2 = np.concatenate([observed, np.zeros_like(observed), np.ones_like(observed)], axis=2)
    missing, longest = window_quality(obs2)
    assert missing.dtype == np.float32 and longest.dtype == np.int32
    np.testing.assert_allclose(missing[0], [8 / 12, 1.0, 0.0])
    assert longest[0].tolist() == [3, 12, 0]


def test_fill_counts_say_how_every_missing_cell_was_filled():
    values = np.stack([ROW, np.full(12, NAN, np.float32)])[:, :, None]
    observed = ~np.isnan(values)
    chans = ("heart_rate",)
    assert fill_counts(observed, chans, (ImputeSpec("linear", 2),)) == {
        "heart_rate": {"linear": 2, "fallback_long_gap": 6, "fallback_no_observation": 12}}
    assert fill_counts(observed, chans, (ImputeSpec("none"),)) == {"heart_rate": {"left_missing": 20}}
    assert fill_counts(observed, chans, (ImputeSpec("mean"),), np.array([60.0])) == {"heart_rate": {"mean": 20}}
    total = sum(fill_counts(observed, chans, (ImputeSpec("ffill", 2),))["heart_rate"].values())
    assert total == int((~observed).sum())


def test_fill_counts_match_a_cell_by_cell_classification_on_random_masks():
    """The counts come from totals (missing - filled - whole empty windows); here every missing cell is
    classified one by one from the imputation's own fillable mask, on masks with empty windows and long gaps."""
    from sensorpipe.processing.impute import _fillable

    rng = np.random.default_rng(5)
    chans = ("heart_rate", "steps", "spo2", "sleep_stage", "eda_level")
    specs = (ImputeSpec("linear", 3), ImputeSpec("zero"), ImputeSpec("mean"), ImputeSpec("ffill", 2),
             ImputeSpec("window_mean"))
    for density in (0.05, 0.5, 0.9):
        observed = rng.random((6, 40, len(chans))) < density
        observed[1, :, :] = False                      # a window without any channel
        observed[2, 5:30, 0] = False                   # a long gap
        for pmean in (np.arange(len(chans), dtype=float), np.full(len(chans), np.nan)):
            gaps = gap_lengths(observed)
            want = {}
            for j, (ch, spec) in enumerate(zip(chans, specs)):
                obs = observed[:, :, j]
                ok = _fillable(obs, gaps[:, :, j], spec, bool(np.isfinite(pmean[j])))
                cells = {}
                for i, t in zip(*np.nonzero(~obs)):
                    kind = (spec.method if ok[i, t] else "fallback_no_observation"
                            if spec.method == "mean" or not obs[i].any() else "fallback_long_gap")
                    cells[kind] = cells.get(kind, 0) + 1
                if cells:
                    want[ch] = cells
            assert fill_counts(observed, chans, specs, pmean) == want

def test_specs_resolve_per_channel_then_default_then_registry():
    cfg = build_dataclass(ImputationConfig, {"max_gap_min": 30, "per_channel": {
        "heart_rate": {"method": "linear", "max_gap_min": 10}, "steps": "window_mean", "spo2": "ffill"}},
        "imputation")
    specs = specs_for(("heart_rate", "steps", "spo2", "glucose", "sleep_stage"), cfg)
    assert specs == (ImputeSpec("linear", 10), ImputeSpec("window_mean"), ImputeSpec("ffill", 30),
                     ImputeSpec("linear", 30), ImputeSpec("zero"))   # glucose, sleep_stage: registry defaults
    cfg = build_dataclass(ImputationConfig, {"default": "lsm"}, "imputation")
    assert specs_for(("heart_rate", "steps"), cfg) == (ImputeSpec("lsm"), ImputeSpec("lsm"))
    assert isinstance(build_dataclass(ImputationConfig, {"per_channel": {"x": {"method": "zero"}}}, "i")
                      .per_channel["x"], ChannelImputation)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"imputation.per_channel.steps.max_gap_min only applies"):
        build_dataclass(ImputationConfig, {"per_channel": {"steps": {"method": "zero", "max_gap_min": 5}}},
                        "imputation")
    with pytest.raises(ConfigError, match=r"imputation.max_gap_min must be > 0"):
        build_dataclass(ImputationConfig, {"max_gap_min": 0}, "imputation")
    with pytest.raises(ConfigError, match=r"imputation.default.*'lsm'"):
        build_dataclass(ImputationConfig, {"default": "cubic"}, "imputation")


def test_written_records_carry_per_channel_missingness_and_longest_gap(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    seen_gap = False
    for split in ds.splits:
        for ex in ds[split]:
            mask = ex["mask"]
            np.testing.assert_allclose(ex["missing_ratio_per_channel"], mask.mean(axis=0), rtol=1e-6)
            longest = gap_lengths(~mask[None])[0].max(axis=0)
            np.testing.assert_array_equal(ex["longest_gap_min"], longest)
            seen_gap |= bool(((longest > 0) & (longest < mask.shape[0])).any())
    assert seen_gap
