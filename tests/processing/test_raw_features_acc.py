"""Accelerometer minute features on signals whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.core.inputs import RawSignal
from sensorpipe.processing import raw_features
from sensorpipe.schema.validate import CHANNEL_NAMES
from tests.processing.test_feature_references import walking_signal

START_NS = 1_700_000_040 * 10**9
MINUTE_NS = 60_000_000_000


def _acc(xyz: np.ndarray, fs: float = 32.0, unit: str = "g", start_ns: int = START_NS):
    return raw_features.extract(RawSignal("acc", start_ns, fs, xyz, unit, "synthetic"))


def _along_z(magnitude_g: np.ndarray) -> np.ndarray:
    return np.column_stack([np.zeros(magnitude_g.size), np.zeros(magnitude_g.size), magnitude_g])


def test_every_channel_and_no_unexplained_gaps():
    feats = _acc(walking_signal(32.0, 120))
    assert {CHANNEL_NAMES[c] for c in feats.observations.channel} == set(
        raw_features.kind_channels()["acc"])
    assert feats.counts == {}
    assert len(feats.observations) == 2 * 5


def test_mad_enmo_of_a_square_wave_are_exact():
    fs = 32.0
    r = np.tile(np.r_[np.full(16, 1.1), np.full(16, 0.9)], 2 * 60)   # 1 Hz square wave around 1 g, 2 minutes
    feats = _acc(_along_z(r), fs)
    np.testing.assert_allclose(feats.channel("acc_mad").value, 100.0, rtol=1e-9)  # every 5-s epoch's mean is 1 g
    np.testing.assert_allclose(feats.channel("enmo").value, 50.0, rtol=1e-9)      # half the samples 100 mg over


def test_mad_uses_each_epochs_own_mean():
    fs = 10.0
    r = np.repeat([1.0, 1.5], 30 * 10)                     # a posture change at 30 s, still within each epoch
    np.testing.assert_allclose(_acc(_along_z(r), fs).channel("acc_mad").value, [0.0], atol=1e-9)


def test_intensity_cut_points():
    # ENMO 30, 60, 200 and 500 mg: sedentary, light, moderate, vigorous (GGIR 40/100/400 mg)
    r = np.repeat([1.03, 1.06, 1.2, 1.5], 32 * 60)
    feats = _acc(_along_z(r))
    np.testing.assert_allclose(feats.channel("enmo").value, [30, 60, 200, 500], rtol=1e-9)
    np.testing.assert_array_equal(feats.channel("activity_intensity").value, [0, 1, 2, 3])


def test_zero_crossing_rate_of_a_sinusoid():
    fs, f = 50.0, 1.5
    t = np.arange(int(fs * 180)) / fs
    feats = _acc(_along_z(1.0 + 0.2 * np.sin(2 * np.pi * f * t)), fs)
    np.testing.assert_allclose(feats.channel("acc_zcr").value, 2 * f, atol=0.05)   # two crossings per cycle
    still = _acc(_along_z(1.0 + np.random.default_rng(0).normal(0, 0.005, t.size)), fs)
    np.testing.assert_allclose(still.channel("acc_zcr").value, 0.0)            # noise inside the dead band
    np.testing.assert_allclose(still.channel("steps").value, 0.0)


def test_no_steps_at_rest_or_in_an_isolated_bump():
    fs = 32.0
    r = np.ones(int(fs * 120)) + np.random.default_rng(1).normal(0, 0.01, int(fs * 120))
    r[1000:1010] += 0.8                                     # one knock: a peak, but not a run of steps
    np.testing.assert_allclose(_acc(_along_z(r), fs).channel("steps").value, [0.0, 0.0])


def test_high_rates_are_block_averaged_for_steps():
    fs = 700.0                                              # WESAD's chest device
    steps = _acc(walking_signal(fs, 120), fs).channel("steps").value
    assert np.abs(steps / 108.0 - 1).max() <= 0.05, steps


def test_slow_signal_keeps_enmo_and_withholds_steps_with_a_reason():
    fs = 5.0                                                # below the 0.5-3 Hz band's 10 Hz minimum
    feats = _acc(_along_z(np.full(int(fs * 120), 1.2)), fs)
    np.testing.assert_allclose(feats.channel("enmo").value, [200.0, 200.0])
    assert len(feats.channel("steps")) == 0 and len(feats.channel("acc_zcr")) == 0
    assert feats.counts == {"acc_steps_minutes_rate_below_10hz": 2, "acc_acc_zcr_minutes_rate_below_10hz": 2}


@pytest.mark.parametrize("unit, scale", [("m/s^2", 9.80665), ("1/64 g", 64.0)])
def test_units_give_the_same_features(unit, scale):
    xyz = walking_signal(32.0, 120)
    a, b = _acc(xyz), _acc(xyz * scale, unit=unit)
    np.testing.assert_allclose(b.observations.value, a.observations.value, rtol=1e-9, atol=1e-9)


def test_gaps_do_not_count_as_coverage_and_partial_minutes_are_counted():
    xyz = walking_signal(32.0, 180)
    xyz[32 * 70: 32 * 110] = np.nan                         # minute 1 loses 40 s
    feats = _acc(xyz, start_ns=START_NS)
    enmo = feats.channel("enmo")
    assert list((enmo.t_utc_ns - START_NS) // MINUTE_NS) == [0, 2]
    assert feats.counts == {"acc_minutes_partial": 1}
