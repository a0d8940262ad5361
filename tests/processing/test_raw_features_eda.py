"""EDA: tonic level and response rate at the E4's 4 Hz and at lab rates, on NeuroKit2's simulated EDA."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.core.inputs import RawSignal
from sensorpipe.processing import raw_features
from sensorpipe.processing.features.eda import SCR_MIN_AMPLITUDE_US, scr_peaks

nk = pytest.importorskip("neurokit2")
START_NS = 1_700_000_040 * 10**9
MINUTE_NS = 60_000_000_000


def _eda(x: np.ndarray, fs: float, unit: str = "uS"):
    return raw_features.extract(RawSignal("eda", START_NS, fs, x, unit, "synthetic"))


def _simulated(fs: int, n_scr: int, seconds: int = 300) -> np.ndarray:
    return nk.eda_simulate(duration=seconds, sampling_rate=fs, scr_number=n_scr, noise=0.01, drift=-0.01,
                           random_state=3)


@pytest.mark.parametrize("n_scr", [5, 20])
def test_e4_rate_counts_every_simulated_response(n_scr):
    """4 Hz is below NeuroKit2's eda_clean minimum (6 Hz): no crash, and every response counted."""
    feats = _eda(_simulated(4, n_scr), 4.0)
    rate = feats.channel("eda_scr_rate")
    assert list((rate.t_utc_ns - START_NS) // MINUTE_NS) == [0, 1, 2, 3, 4]
    assert rate.value.sum() == n_scr                        # measured: exactly 5 and 20
    assert feats.counts == {}


def test_lab_rate_counts_about_the_same():
    rate = _eda(_simulated(32, 20), 32.0).channel("eda_scr_rate")
    assert abs(rate.value.sum() - 20) <= 2                  # measured 21


def test_level_is_the_tonic_part():
    x = _simulated(4, 20)
    level = _eda(x, 4.0).channel("eda_level").value
    raw_means = x[: 5 * 240].reshape(5, 240).mean(axis=1)
    assert np.all(level <= raw_means + 1e-9)               # responses only add to the tonic level
    assert np.all(raw_means - level < 0.5)


@pytest.mark.parametrize("fs", [4.0, 700.0])
def test_constant_conductance_is_its_own_level_with_no_responses(fs):
    feats = _eda(np.full(int(fs * 150), 3.0), fs)
    np.testing.assert_allclose(feats.channel("eda_level").value, 3.0, rtol=1e-6)
    np.testing.assert_array_equal(feats.channel("eda_scr_rate").value, 0.0)


def test_partial_minute_rate_is_scaled_to_a_full_minute():
    t = np.arange(4 * 90) / 4.0
    u = np.clip(t - 70, 0, None)                            # one response (rise 0.75 s, decay 4 s) at 70 s
    x = 2.0 + 0.3 * (np.exp(-u / 4.0) - np.exp(-u / 0.75)) / 0.5
    rate = _eda(x, 4.0).channel("eda_scr_rate")
    # minute 1 holds 30 s (50 %: kept) and the response: 2 per minute
    np.testing.assert_allclose(rate.value, [0.0, 2.0])


def test_a_slow_response_is_counted():
    t = np.arange(4 * 120) / 4.0
    u = np.clip(t - 20, 0, None)                            # 0.16 uS, peaking 2 s after its onset
    rate = _eda(2.0 + 0.3 * u ** 2 * np.exp(-u), 4.0).channel("eda_scr_rate")
    np.testing.assert_allclose(rate.value, [1.0, 0.0])


def test_scr_peaks_are_neurokits_signal_findpeaks_peaks():
    x = _simulated(8, 20)
    phasic = nk.eda_phasic(x, sampling_rate=8, method="smoothmedian")["EDA_Phasic"].to_numpy()
    ref = nk.signal_findpeaks(phasic[:8 * 120], height_min=SCR_MIN_AMPLITUDE_US)["Peaks"]
    np.testing.assert_array_equal(scr_peaks(phasic[:8 * 120]), ref)


def test_gaps_and_units():
    x = _simulated(4, 5)
    y = x.copy()
    y[4 * 130: 4 * 175] = np.nan                            # minute 2 loses 45 s
    feats = _eda(y, 4.0)
    assert list((feats.primary().t_utc_ns - START_NS) // MINUTE_NS) == [0, 1, 3, 4]
    assert feats.counts == {"eda_minutes_partial": 1}
