"""Normalization: each method's fit, clipping, exact round trips, train-only fitting, stored parameters."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import sensorpipe
from sensorpipe.access.dataset import denormalize
from sensorpipe.config import ConfigError, NormalizationConfig, build_dataclass
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.processing.normalize import FitStats, NormParams
from sensorpipe.runners.driver import fit_normalization, run_pipeline
from sensorpipe.runners.plan import resolve_normalizers
from tests.conftest import write_config

CHANNELS = ("heart_rate", "glucose", "spo2", "steps", "sleep_stage")
METHODS = {"heart_rate": "zscore", "glucose": "robust", "spo2": "minmax", "steps": "log1p", "sleep_stage": "none"}


def _cfg(**extra) -> NormalizationConfig:
    return build_dataclass(NormalizationConfig, {"per_channel": dict(METHODS), **extra}, "normalization")


def _data(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.stack([rng.normal(70, 12, n), np.exp(rng.normal(np.log(110), 0.3, n)), rng.uniform(88, 100, n),
                  np.where(rng.random(n) < 0.5, 0, rng.poisson(40, n)), rng.integers(0, 5, n)], axis=1)
    x = x.astype(np.float32)
    obs = rng.random(x.shape) > 0.2
    x[~obs] = np.nan
    return x, obs


def _fit(x, obs, cfg=None) -> NormParams:
    cfg = cfg or _cfg()
    return NormParams.fit(CHANNELS, FitStats.of(x, obs, CHANNELS, cfg), cfg)


def test_each_method_fits_the_statistics_it_names():
    x, obs = _data(0)
    p = _fit(x, obs)
    col = {c: x[obs[:, j], j].astype(np.float64) for j, c in enumerate(CHANNELS)}
    assert p.methods == tuple(METHODS.values())
    np.testing.assert_allclose([p.center[0], p.scale[0]], [col["heart_rate"].mean(), col["heart_rate"].std()],
                               rtol=1e-10)
    q25, med, q75 = np.quantile(col["glucose"], [0.25, 0.5, 0.75])
    err = p.quantile_error[1]
    assert err == pytest.approx((600 - 20) / (2 * 8192))
    assert abs(p.center[1] - med) <= err and abs(p.scale[1] - (q75 - q25)) <= 2 * err
    assert (p.center[2], p.scale[2]) == (col["spo2"].min(), col["spo2"].max() - col["spo2"].min())
    logs = np.log1p(col["steps"])
    np.testing.assert_allclose([p.center[3], p.scale[3]], [logs.mean(), logs.std()], rtol=1e-10)
    assert (p.center[4], p.scale[4]) == (0.0, 1.0)
    assert p.source == ("train",) * 5
    assert p.clip_low == p.clip_high == (None,) * 5 and not p.clips     # clipping is off by default
    pc = _fit(x, obs, _cfg(clip_sigma=10.0))
    assert pc.clip_low == (-10.0, -10.0, 0.0, -10.0, None) and pc.clip_high == (10.0, 10.0, 1.0, 10.0, None)


def test_round_trip_is_exact_for_every_method_inside_the_clip_range():
    x, obs = _data(1)
    p = _fit(x, obs)
    z = p.apply(x)
    assert z.dtype == np.float32
    assert np.array_equal(np.isnan(z), np.isnan(x))                   # NaN (missing) stays NaN
    back = p.invert(z)
    for j, c in enumerate(CHANNELS):
        o = obs[:, j]
        np.testing.assert_allclose(back[o, j], x[o, j], rtol=2e-6, atol=1e-6 * p.scale[j], err_msg=c)
    # a normalized batch [B, W, C] round-trips too, from the normalized side
    zb = np.random.default_rng(2).uniform(-3, 3, (4, 6, 5)).astype(np.float32)
    zb[..., 2] = np.abs(zb[..., 2]) / 3                                # min-max lives in [0, 1]
    zb[..., 4] = np.round(zb[..., 4] + 3)                              # sleep stage codes
    np.testing.assert_allclose(p.apply(p.invert(zb)), zb, atol=2e-6)


def test_clipping_per_method_and_per_channel():
    x, obs = _data(3)
    p = _fit(x, obs, _cfg(clip_sigma=10.0))
    far = np.array([[1000.0, 6000.0, 50.0, 1e9, 4.0], [-1000.0, -6000.0, 100.0, 0.0, 0.0]], np.float32)
    z = p.apply(far)
    assert z[0, 0] == 10.0 and z[1, 0] == -10.0                      # z-score at +/- clip_sigma
    assert z[0, 2] == 0.0 and z[1, 2] == 1.0                          # min-max saturates at [0, 1]
    assert z[0, 4] == 4.0                                             # none: never clipped
    cfg = _cfg(clip_sigma=3.0, per_channel={**METHODS, "heart_rate": {"method": "zscore", "clip": False},
                                            "glucose": {"method": "robust", "clip_sigma": 1.5}})
    p2 = _fit(x, obs, cfg)
    z2 = p2.apply(far)
    assert z2[0, 0] > 10 and p2.clip_low[0] is None                   # clip: false
    assert z2[0, 1] == 1.5 and z2[0, 3] == 3.0                        # own sigma, then the section's
    p3 = _fit(x, obs, _cfg(clip_sigma=None))
    assert p3.clip_low == (None, None, None, None, None) and p3.apply(far)[0, 0] > 10


def test_fallback_is_the_value_that_normalizes_to_zero():
    x, obs = _data(4)
    p = _fit(x, obs)
    z = p.apply(np.array([p.fallback], np.float32))[0]
    np.testing.assert_allclose(z[[0, 1, 3]], 0.0, atol=1e-6)          # z-score, robust, log1p
    assert p.fallback[2] == pytest.approx(np.nanmean(x[:, 2].astype(np.float64)))   # min-max: the train mean
    assert p.fallback[4] == 0.0                                        # none: code 0


def test_merged_unit_stats_give_the_same_parameters_as_all_data_at_once():
    parts = [_data(s, 900) for s in range(5)]
    cfg = _cfg()
    merged = FitStats.zeros(CHANNELS, cfg)
    for x, o in parts:
        merged = merged.merge(FitStats.from_json(json.loads(json.dumps(FitStats.of(x, o, CHANNELS, cfg).to_json()))))
    whole = FitStats.of(np.concatenate([x for x, _ in parts]), np.concatenate([o for _, o in parts]), CHANNELS, cfg)
    np.testing.assert_array_equal(merged.sketch.counts, whole.sketch.counts)
    a, b = NormParams.fit(CHANNELS, merged, cfg), NormParams.fit(CHANNELS, whole, cfg)
    for k in ("center", "scale", "mean", "std", "median", "iqr", "min", "max"):
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=1e-12, err_msg=k)


def test_fit_normalization_reads_train_units_only():
    cfg = SimpleNamespace(channels=CHANNELS, normalization=_cfg())

    def unit(split, seed):
        x, o = _data(seed, 500)
        return SimpleNamespace(split=split, fit_stats=FitStats.of(x, o, CHANNELS, cfg.normalization).to_json())

    train = [unit("train", 1), unit("train", 2)]
    base = fit_normalization(cfg, train + [unit("validation", 3), unit("test", 4)])
    assert fit_normalization(cfg, train + [unit("validation", 9), unit("test", 8)]) == base
    assert fit_normalization(cfg, [train[0], unit("train", 7)]) != base
    assert base.count[0] == sum(FitStats.from_json(u.fit_stats).raw.count[0] for u in train)


def test_params_json_round_trip_and_version_1_files():
    x, obs = _data(5)
    p = _fit(x, obs)
    assert NormParams.from_json(json.loads(json.dumps(p.to_json()))) == p
    assert "NaN" not in json.dumps(p.to_json()) and "Infinity" not in json.dumps(p.to_json())
    v1 = {"channels": ["heart_rate", "sleep_stage"], "methods": ["zscore", "none"], "mean": [70.0, 0.0],
          "std": [10.0, 1.0], "clip_sigma": 5.0, "count": [100, 100]}
    old = NormParams.from_json(v1)
    np.testing.assert_allclose(old.invert(np.array([[1.0, 3.0]], np.float32)), [[80.0, 3.0]])
    assert old.apply(np.array([[200.0, 3.0]], np.float32)).tolist() == [[5.0, 3.0]]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"normalization.per_channel.heart_rate: unknown normalizer 'zscor'"):
        resolve_normalizers(build_dataclass(NormalizationConfig, {"per_channel": {"heart_rate": "zscor"}}, "normalization"))
    with pytest.raises(ConfigError, match=r"normalization.per_channel.steps.method: unknown normalizer"):
        resolve_normalizers(build_dataclass(NormalizationConfig, {"per_channel": {"steps": {"method": "log2"}}}, "normalization"))
    with pytest.raises(ConfigError, match=r"unknown key normalization.per_channel.steps.clip_sigmaa"):
        build_dataclass(NormalizationConfig, {"per_channel": {"steps": {"method": "log1p", "clip_sigmaa": 2}}},
                        "normalization")
    with pytest.raises(ConfigError, match=r"normalization.sketch_bins"):
        build_dataclass(NormalizationConfig, {"sketch_bins": 4}, "normalization")


def test_denormalize_a_batch_with_its_mask():
    x, obs = _data(6, 24)
    p = _fit(x, obs)
    batch = p.apply(np.nan_to_num(x, nan=50.0)).reshape(2, 12, 5)
    mask = ~obs.reshape(2, 12, 5)
    out = denormalize(batch, p, mask)
    assert out.shape == (2, 12, 5) and np.isnan(out[mask]).all()
    np.testing.assert_allclose(out[~mask], x.reshape(2, 12, 5)[~mask], rtol=2e-6, atol=1e-4)
    with pytest.raises(ValueError, match=r"expects \[\.\.\., 5\]"):
        denormalize(batch[..., :3], p)


def test_pipeline_with_every_method_stores_and_inverts_its_parameters(local_run, copied_sources, base_config):
    cfg = json.loads(json.dumps(base_config))
    cfg["normalization"] = {"per_channel": {"heart_rate": "robust", "steps": "log1p", "calories": "minmax",
                                            "glucose": {"method": "zscore", "clip": False}}}
    cfg["imputation"] = {"max_gap_min": 60, "per_channel": {"heart_rate": {"method": "linear", "max_gap_min": 30},
                                                             "steps": "zero", "glucose": "lsm"}}
    run = run_pipeline(str(write_config(copied_sources, cfg, "methods.yaml")))
    ds, ref = sensorpipe.open(run.output_dir), sensorpipe.open(local_run.output_dir)
    assert ds.norm.methods[:8] == ("robust", "zscore", "zscore", "zscore", "zscore", "log1p", "minmax", "zscore")
    stored = json.loads((Path(run.version_dir) / "normalization.json").read_text())
    assert NormParams.from_json(stored).to_json() == ds.norm.to_json() == stored
    rows = MetadataStore(run.metadata_url).normalization(run.fingerprint)
    j = ds.channels.index("heart_rate")
    assert rows["heart_rate"]["method"] == "robust"
    assert rows["heart_rate"]["center"] == pytest.approx(ds.norm.center[j]) == pytest.approx(rows["heart_rate"]["median"])
    assert rows["glucose"]["clip_low"] != rows["glucose"]["clip_low"]     # NaN: unclipped
    q = {(m["scope"], m["name"]): m["value"] for m in MetadataStore(run.metadata_url).quality(run.fingerprint)}
    assert q[("channel:heart_rate", "imputed_cells:linear")] > 0
    assert ("channel:glucose", "imputed_cells:lsm") in q
    checked = 0
    for split in ds.splits:
        for a, b in zip(ds[split], ref[split]):
            assert a["key"] == b["key"]
            np.testing.assert_array_equal(a["mask"], b["mask"])           # the mask is what was observed
            va, vb = ds.denormalize(a["input"], a["mask"]), ref.denormalize(b["input"], b["mask"])
            inside = ~a["mask"] & (np.abs(a["input"]) < 10)
            inside[:, ds.channels.index("calories")] &= (a["input"][:, 6] > 0) & (a["input"][:, 6] < 1)
            np.testing.assert_allclose(va[inside], vb[inside], rtol=1e-5, atol=2e-3)
            checked += int(inside.sum())
    assert checked > 1000


def test_transformed_moments_cover_the_transformed_channels_and_reuse_the_raw_ones_elsewhere():
    x, obs = _data(3)
    x, obs = x.reshape(40, 100, 5), obs.reshape(40, 100, 5)
    x[0, :7, 3], obs[0, :7, 3] = -1.0, True          # log1p(-1) = -inf: observed, but not a finite log
    st = FitStats.of(x, obs, CHANNELS, _cfg())
    for j in (0, 1, 2, 4):                            # no transform: the raw moments, bit for bit
        assert [getattr(st.transformed, f)[j] for f in ("count", "mean", "m2", "min", "max")] == \
               [getattr(st.raw, f)[j] for f in ("count", "mean", "m2", "min", "max")]
    steps = x[..., 3][obs[..., 3]].astype(np.float64)
    with np.errstate(divide="ignore"):
        logs = np.log1p(steps)
    logs = logs[np.isfinite(logs)]
    assert st.raw.count[3] == steps.size and st.transformed.count[3] == logs.size == steps.size - 7
    np.testing.assert_allclose([st.transformed.mean[3], st.transformed.m2[3], st.transformed.min[3],
                                st.transformed.max[3]],
                               [logs.mean(), ((logs - logs.mean()) ** 2).sum(), logs.min(), logs.max()], rtol=1e-12)


def test_unit_moments_are_the_whole_row_where_formulas_bit_for_bit():
    """FitStats.of takes the extremes from each channel's observed values and the deviations in place; the
    moments must be those of ``where(o, x, 0)`` row sums and ``where(o, v - mean, 0)`` (what merging and the
    stored parameters were built on), to the bit, with an empty channel and observed infinities."""
    x, obs = _data(8)
    x, obs = x.reshape(50, 80, 5), obs.reshape(50, 80, 5)
    obs[..., 2] = False                                  # a channel never observed
    x[3, 4, 4], obs[3, 4, 4] = np.inf, True              # an observed infinity
    with np.errstate(invalid="ignore"):                 # inf - inf in the deviations: NaN m2, as before
        st = FitStats.of(x, obs, CHANNELS, _cfg())
    xc, oc = np.ascontiguousarray(x.reshape(-1, 5).T), np.ascontiguousarray(obs.reshape(-1, 5).T)  # as summed
    v = np.where(oc, xc, 0).astype(np.float64)
    cnt = oc.sum(axis=1)
    with np.errstate(invalid="ignore"):
        mean = np.divide(v.sum(axis=1), cnt, out=np.zeros(5), where=cnt > 0)
        d = np.where(oc, v - mean[:, None], 0.0)
        m2 = np.einsum("ct,ct->c", d, d)
    np.testing.assert_array_equal(st.raw.count, cnt)
    for got, want in ((st.raw.mean, mean), (st.raw.m2, m2), (st.raw.min, np.where(oc, xc, np.inf).min(axis=1)),
                      (st.raw.max, np.where(oc, xc, -np.inf).max(axis=1))):
        np.testing.assert_array_equal(got, want)
    assert st.raw.max[4] == np.inf and st.sketch.max[4] == 4.0 and st.sketch.count[2] == 0


def test_running_stats_are_the_masked_float64_moments_bit_for_bit():
    """The deviations are zeroed by a product with the mask instead of a masked subtract; the moments stay
    those of ``where(o, x, 0)`` and ``where(o, x - mean, 0)`` to the bit: NaN in cells not observed, -0.0 and
    large values observed, and a channel never observed (count 0, mean 0, m2 0)."""
    from sensorpipe.processing.normalize import RunningStats

    rng = np.random.default_rng(11)
    x = (rng.normal(0, 1, (4, 5000)) * np.array([[1.0], [1e4], [1e-3], [50.0]])).astype(np.float32)
    o = rng.random(x.shape) < 0.7
    o[3] = False
    x[~o] = np.nan
    x[0, np.flatnonzero(o[0])[:5]] = -0.0
    got = RunningStats.of_channel_major(x, o)

    v = np.where(o, x.astype(np.float64), 0.0)
    cnt = o.sum(axis=1)
    mean = np.divide(v.sum(axis=1), cnt, out=np.zeros(4), where=cnt > 0)
    dev = np.where(o, v - mean[:, None], 0.0)
    m2 = np.einsum("ct,ct->c", dev, dev)
    assert got.mean.tobytes() == mean.tobytes() and got.m2.tobytes() == m2.tobytes()
    assert got.count.tolist() == cnt.tolist() and got.m2[3] == 0.0 and got.mean[3] == 0.0
