"""Normalization never silently destroys an observed value: registry priors, missing_train, clip counts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sensorpipe import channels as registry
from sensorpipe.config import ConfigError, NormalizationConfig, build_dataclass
from sensorpipe.processing.normalize import FitStats, MissingTrainDataError, NormParams
from sensorpipe.processing.normalizers import NORMAL_IQR_PER_SD

README = Path(__file__).resolve().parents[2] / "README.md"
CHANNELS = ("heart_rate", "glucose", "spo2", "eda_scr_rate", "sleep_stage")


def _cfg(**extra) -> NormalizationConfig:
    return build_dataclass(NormalizationConfig, extra, "normalization")


def _train_without(missing: tuple[str, ...], n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train minutes of CHANNELS where the ``missing`` channels are never observed."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.normal(75, 10, n), rng.normal(110, 20, n), rng.uniform(92, 99, n), rng.poisson(2, n),
                  rng.integers(0, 5, n)], axis=1).astype(np.float32)
    obs = np.ones(x.shape, bool)
    for ch in missing:
        obs[:, CHANNELS.index(ch)] = False
    x[~obs] = np.nan
    return x, obs


def _fit(x, obs, cfg) -> NormParams:
    return NormParams.fit(CHANNELS, FitStats.of(x, obs, CHANNELS, cfg), cfg)


def test_every_channel_has_a_documented_prior_inside_its_valid_range():
    for c in registry.CHANNELS.values():
        assert c.valid_min <= c.prior_center <= c.valid_max, c.name
        assert np.isfinite(c.prior_scale) and c.prior_scale > 0, c.name
        assert c.prior_scale <= c.valid_max - c.valid_min, c.name
        assert len(c.prior_basis) > 20, c.name          # a reference or a derivation, not a placeholder
    hr = registry.get("heart_rate")
    assert (hr.prior_center, hr.prior_scale) == (70.0, 12.0)
    assert registry.priors_markdown_table() in README.read_text(), "regenerate: channels.priors_markdown_table()"


def test_a_channel_without_train_data_is_fitted_from_the_prior_per_method(caplog):
    x, obs = _train_without(("heart_rate", "glucose", "spo2", "eda_scr_rate", "sleep_stage"))
    cfg = _cfg(per_channel={"heart_rate": "zscore", "glucose": "robust", "spo2": "minmax",
                            "eda_scr_rate": "log1p", "sleep_stage": "none"})
    with caplog.at_level(logging.WARNING, logger="sensorpipe.processing.normalize"):
        p = _fit(x, obs, cfg)
    assert p.source == ("prior", "prior", "prior", "prior", "fixed")
    assert (p.center[0], p.scale[0]) == (70.0, 12.0)                                       # zscore: the prior
    assert p.center[1] == 120.0 and p.scale[1] == pytest.approx(40.0 * NORMAL_IQR_PER_SD)  # robust: normal IQR
    assert (p.center[2], p.scale[2]) == (50.0, 50.0)                          # minmax: the valid range 50-100 %
    assert p.center[3] == pytest.approx(np.log1p(2.0)) and p.scale[3] == pytest.approx(np.log1p(4.0) - np.log1p(2.0))
    assert (p.center[4], p.scale[4]) == (0.0, 1.0)                                          # none: identity
    assert p.fallback[:4] == (70.0, 120.0, 97.0, 2.0) and p.fallback[4] == 0.0   # imputation: the typical value
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 4 and all("had no train observations" in m for m in warned)
    assert "channel heart_rate" in warned[0] and "center 70, scale 12" in warned[0]
    # a held-out 150 bpm (or 400 mg/dL) minute keeps its value through the round trip
    held_out = np.array([[150.0, 400.0, 88.0, 30.0, 3.0]], np.float32)
    z = p.apply(held_out)
    assert z[0, 0] == pytest.approx((150 - 70) / 12) and z[0, 2] == pytest.approx(0.76)
    np.testing.assert_allclose(p.invert(z), held_out, rtol=1e-6)


def test_channels_with_train_data_are_untouched_by_the_prior():
    x, obs = _train_without(("glucose",))
    p = _fit(x, obs, _cfg())
    hr = x[:, 0].astype(np.float64)
    assert p.source == ("train", "prior", "train", "train", "train")
    np.testing.assert_allclose([p.center[0], p.scale[0]], [hr.mean(), hr.std()], rtol=1e-10)
    assert (p.center[1], p.scale[1]) == (120.0, 40.0)


def test_missing_train_error_names_every_channel_and_the_fix():
    x, obs = _train_without(("heart_rate", "spo2", "sleep_stage"))
    with pytest.raises(MissingTrainDataError) as e:
        _fit(x, obs, _cfg(missing_train="error", per_channel={"spo2": "minmax"}))
    msg = str(e.value)
    assert isinstance(e.value, ConfigError)                       # the CLI prints it as one line
    assert "no observed value of heart_rate (zscore), spo2 (minmax)" in msg
    assert "sleep_stage" not in msg                                # `none` has nothing to fit
    assert "normalization.missing_train: prior" in msg and "remove them from `channels`" in msg
    assert _fit(*_train_without(("sleep_stage",)), _cfg(missing_train="error")).source[4] == "fixed"
    with pytest.raises(ConfigError, match=r"normalization.missing_train: 'never' is not allowed; use one of "
                                          r"'prior', 'error'"):
        _cfg(missing_train="never")


def test_clipping_is_off_by_default_and_counts_every_clipped_observed_cell_exactly():
    x, obs = _train_without(())
    far = np.array([[1000.0, 6000.0, 50.0, 60.0, 4.0],     # far above (spo2: below the train range)
                    [-1000.0, -6000.0, 100.0, 0.0, 0.0],   # far below (spo2: above the train range)
                    [75.0, 110.0, 95.0, 2.0, 2.0]], np.float32)   # typical: never clipped
    observed = np.array([[True, True, True, True, True], [True, False, True, True, True],
                         [True, True, True, True, True]])
    off = _fit(x, obs, _cfg())
    z, clipped = off.apply_and_count(far, observed)
    assert not off.clips and clipped.tolist() == [0] * 5
    np.testing.assert_allclose(off.invert(z)[observed], far[observed], rtol=1e-6, atol=1e-6)   # nothing lost
    on = _fit(x, obs, _cfg(clip_sigma=5.0, per_channel={"spo2": "minmax"}))
    z, clipped = on.apply_and_count(far, observed)
    t = (far.astype(np.float64) - np.array(on.center)) / np.array(on.scale)
    t[:, 3] = (np.log1p(far[:, 3].astype(np.float64)) - on.center[3]) / on.scale[3]
    want = [int(np.count_nonzero(observed[:, j] & ((t[:, j] < lo) | (t[:, j] > hi))))
            for j, (lo, hi) in enumerate(zip(on.clip_low, on.clip_high)) if lo is not None]
    assert clipped.tolist()[:4] == want and clipped[4] == 0    # glucose's -6000 cell is not observed
    assert clipped.tolist() == [2, 1, 2, 1, 0]
    assert np.array_equal(z, on.apply(far))                    # counting does not change the output
    # minmax: the train minimum and maximum map to exactly 0 and 1, and are not clipped
    j = CHANNELS.index("spo2")
    edges = np.tile(far[2], (2, 1))
    edges[:, j] = [on.center[j], on.center[j] + on.scale[j]]
    ze, ce = on.apply_and_count(edges, np.ones(edges.shape, bool))
    assert ze[:, j].tolist() == [0.0, 1.0] and ce[j] == 0


def test_params_without_a_source_read_as_train_or_fixed():
    x, obs = _train_without(("glucose",))
    p = _fit(x, obs, _cfg())
    d = json.loads(json.dumps(p.to_json()))
    assert d["source"] == ["train", "prior", "train", "train", "train"]
    assert NormParams.from_json(d).to_json() == p.to_json()
    del d["source"]
    d["count"][1] = 0
    assert NormParams.from_json(d).source == ("train", "fixed", "train", "train", "train")
