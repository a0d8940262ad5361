"""Raw-signal features against independent references.

* RMSSD / SDNN: pyhrv 0.5.0's sample NN series (``tests/data/pyhrv``, BSD-3)
  against NeuroKit2's ``hrv_time`` on the same intervals, whole series,
  per minute and per trailing 5 minutes; then end to end, from an ECG
  synthesised with exactly those beats.
* Heart rate from systole's 1 kHz ECG within 1 bpm per minute of an
  independent QRS detector: ``test_raw_features_lab.py``.
* ENMO of a signal of known amplitude is exact; steps of a synthetic 1.8 Hz
  walk (stepcount's test model: 0.3 g arm swing, 0.05 g noise) within 5 %.
* PPG quality against NeuroKit2's ``ppg_quality(method="templatematch")``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sensorpipe.core.inputs import RawSignal
from sensorpipe.processing import raw_features
from sensorpipe.processing.features.base import MinuteIndex
from sensorpipe.processing.features.beats import Intervals, hrv_minutes
from sensorpipe.processing.features.chunks import run_chunked
from sensorpipe.processing.features.ecg import _detect as ecg_detect
from sensorpipe.processing.features.ppg import _detect, template_sqi

nk = pytest.importorskip("neurokit2")
NN_MS = np.load(Path(__file__).resolve().parents[1] / "data" / "pyhrv" / "SampleNNISeriesShort.npy").astype(float)
START_NS = 1_700_000_040 * 10**9  # a UTC minute boundary
MINUTE_NS = 60_000_000_000


def _nk(nn_ms: np.ndarray, end_s: np.ndarray | None = None) -> tuple[float, float]:
    """NeuroKit2's (RMSSD, SDNN); with the intervals' end times it skips differences across a gap."""
    if end_s is None:
        h = nk.hrv_time(nk.intervals_to_peaks(nn_ms), sampling_rate=1000)
    else:
        h = nk.hrv_time({"RRI": nn_ms, "RRI_Time": end_s}, sampling_rate=1000)
    return float(h["HRV_RMSSD"].iloc[0]), float(h["HRV_SDNN"].iloc[0])


def _minute_of_interval(nn_ms: np.ndarray) -> np.ndarray:
    """Minute of each interval: that of the beat that ends it (first beat at 0 s)."""
    return (np.cumsum(nn_ms) // 60_000).astype(np.int64)


def test_whole_series_equals_neurokit():
    rmssd, sdnn = hrv_minutes(NN_MS, np.ones(NN_MS.size, bool), np.zeros(NN_MS.size, np.int64), 1)
    ref = _nk(NN_MS)
    np.testing.assert_allclose([rmssd[0], sdnn[0]], ref, rtol=1e-12)
    np.testing.assert_allclose(ref, [101.300634, 95.690354], rtol=1e-6)   # pyhrv's formulas, by hand


def test_minute_and_five_minute_windows_equal_neurokit_on_the_window():
    m = _minute_of_interval(NN_MS)
    n = int(m[-1]) + 1
    ok = np.ones(NN_MS.size, bool)
    r1, s1 = hrv_minutes(NN_MS, ok, m, n, 1, min_nn=10)
    r5, s5 = hrv_minutes(NN_MS, ok, m, n, 5, min_nn=10, min_nn_s=240.0)
    for k in range(n):
        sel = m == k
        if sel.sum() < 10:
            assert np.isnan(r1[k]) and np.isnan(s1[k])
            continue
        np.testing.assert_allclose([r1[k], s1[k]], _nk(NN_MS[sel]), rtol=1e-9)
    win = (m >= 0) & (m <= 4)                               # the trailing 5 minutes ending at minute 4
    np.testing.assert_allclose([r5[4], s5[4]], _nk(NN_MS[win]), rtol=1e-9)
    assert np.isnan(r5[:4]).all()                           # NN intervals lasting < 4 minutes yet


def test_rejected_interval_breaks_its_successive_differences():
    nn = np.r_[np.full(20, 800.0), 1600.0, np.full(20, 800.0) + np.arange(20)]   # a missed beat at 21
    ok = np.ones(nn.size, bool)
    ok[20] = False
    rmssd, sdnn = hrv_minutes(nn, ok, np.zeros(nn.size, np.int64), 1)
    diffs = np.r_[np.zeros(19), np.ones(19)]               # the two differences touching 1600 ms are gone
    np.testing.assert_allclose(rmssd[0], np.sqrt(np.mean(diffs ** 2)))
    np.testing.assert_allclose(sdnn[0], np.std(nn[ok], ddof=1))


def _ecg_from_beats(beat_ms: np.ndarray, fs: float = 1000.0) -> np.ndarray:
    """A clean synthetic ECG (Q, R, S, T Gaussians) with R peaks exactly at ``beat_ms``."""
    t = np.arange(int(beat_ms[-1] + 1000)) / fs * 1000.0
    x = np.zeros(t.size)
    for centre_ms, width_ms, amp in ((-25, 8, -0.15), (0, 9, 1.2), (25, 8, -0.25), (250, 45, 0.3)):
        idx = (beat_ms[:, None] + centre_ms + np.arange(-4 * width_ms, 4 * width_ms + 1)[None, :]).astype(int)
        ok = (idx >= 0) & (idx < t.size)
        np.add.at(x, idx[ok], (amp * np.exp(-0.5 * ((idx - beat_ms[:, None] - centre_ms) / width_ms) ** 2))[ok])
    return x + np.random.default_rng(0).normal(0, 0.01, t.size)


def test_ecg_of_the_pyhrv_beats_gives_neurokits_hrv():
    beat_ms = 500.0 + np.r_[0, np.cumsum(NN_MS)]
    sig = RawSignal("ecg", START_NS, 1000.0, _ecg_from_beats(beat_ms), "mV", "synthetic")
    index = MinuteIndex.of(sig)
    feats = raw_features.extract(sig)
    _, found = run_chunked(lambda seg: ecg_detect(seg, 1000.0), sig.values, 1000.0)
    np.testing.assert_allclose(np.diff(found), NN_MS, atol=0.1)   # every beat, intervals to 0.1 ms
    iv = Intervals.of(found / 1000.0, index)
    assert iv.nn.mean() > 0.95                              # the 25 % rule keeps sinus arrhythmia
    rmssd = dict(zip((feats.channel("hrv_rmssd").t_utc_ns - START_NS) // MINUTE_NS, feats.channel("hrv_rmssd").value))
    sdnn = dict(zip((feats.channel("hrv_sdnn").t_utc_ns - START_NS) // MINUTE_NS, feats.channel("hrv_sdnn").value))
    end_s = found[1:] / 1000.0
    assert sorted(rmssd) == sorted(sdnn) == [0, 1, 2, 3, 4]   # 5 min 1.5 s: minute 5 is 1.5 s (partial)
    for k, value in rmssd.items():       # NeuroKit2 on the minute's NN intervals, told where the rejected ones were
        sel = (iv.minute == k) & iv.nn
        np.testing.assert_allclose([value, sdnn[k]], _nk(iv.ibi_ms[sel], end_s[sel]), rtol=1e-9)
    five = feats.channel("hrv_rmssd_5min"), feats.channel("hrv_sdnn_5min")
    assert [list((f.t_utc_ns - START_NS) // MINUTE_NS) for f in five] == [[4], [4]]
    sel = iv.nn & (iv.minute <= 4)
    np.testing.assert_allclose([five[0].value[0], five[1].value[0]], _nk(iv.ibi_ms[sel], end_s[sel]), rtol=1e-9)
    hr = feats.primary()
    ref_hr = iv.rate_minutes(index.n_minutes, 10)
    np.testing.assert_allclose(hr.value, ref_hr[(hr.t_utc_ns - START_NS) // MINUTE_NS], atol=1e-9)


@pytest.mark.parametrize("unit, scale", [("g", 1.0), ("m/s^2", 9.80665), ("1/64 g", 64.0)])
def test_enmo_of_a_known_amplitude_is_exact(unit, scale):
    fs, n = 32.0, 32 * 180
    angle = np.linspace(0, 6 * np.pi, n)                   # direction turns, magnitude stays 1.3 g
    xyz = 1.3 * np.column_stack([np.cos(angle) * np.sin(angle / 3), np.sin(angle) * np.sin(angle / 3),
                                 np.cos(angle / 3)])
    feats = raw_features.extract(RawSignal("acc", START_NS, fs, xyz * scale, unit, "synthetic"))
    np.testing.assert_allclose(feats.channel("enmo").value, 300.0, rtol=1e-12)
    np.testing.assert_allclose(feats.channel("activity_intensity").value, 2.0)    # 100 <= 300 < 400 mg


def walking_signal(fs: float, seconds: float, cadence_hz: float = 1.8, amp_g: float = 0.3, noise_g: float = 0.05,
                   seed: int = 0) -> np.ndarray:
    """Wrist acceleration (g) of a walk: arm swing at the step frequency plus its 2nd harmonic, gravity on z.

    The model of stepcount's test fixtures (OxWearables; one step per cycle
    of the 1.8 Hz swing: 108 steps/min).
    """
    rng = np.random.default_rng(seed)
    w = 2 * np.pi * cadence_hz * np.arange(int(fs * seconds)) / fs + rng.uniform(0, 2 * np.pi)
    xyz = np.column_stack([amp_g * (np.sin(w) + 0.3 * np.sin(2 * w)), 0.5 * amp_g * np.sin(w + np.pi / 4),
                           1.0 + 0.4 * amp_g * np.sin(w + np.pi / 2)])
    return xyz + rng.normal(0, noise_g, xyz.shape)


@pytest.mark.parametrize("fs", [15.0, 32.0, 100.0])
def test_steps_of_a_synthetic_walk_within_5_percent(fs):
    feats = raw_features.extract(RawSignal("acc", START_NS, fs, walking_signal(fs, 300), "g", "synthetic"))
    steps = feats.channel("steps").value
    assert steps.size == 5
    assert np.abs(steps / 108.0 - 1).max() <= 0.05, steps          # measured: 107-108 at every rate
    assert abs(steps.sum() / (5 * 108.0) - 1) <= 0.02


def test_ppg_sqi_agrees_with_neurokit_templatematch():
    fs = 64
    for noise_sd, motion in ((0.05, 0.1), (0.5, 1.0), (1.0, 2.0)):
        x = nk.ppg_simulate(duration=60, sampling_rate=fs, heart_rate=70, motion_amplitude=motion, drift=0.1,
                            powerline_amplitude=0.0, burst_number=0, random_state=4, random_state_distort=5)
        x = x + np.random.default_rng(0).normal(0, noise_sd * np.std(x), x.size)
        (clean,), pos = _detect(x, float(fs))
        pk = np.rint(pos).astype(np.int64)
        ours = template_sqi(clean, pk, fs, np.zeros(pk.size, np.int64), 1, 10)[0]
        q = nk.ppg_quality(clean, peaks=pk, sampling_rate=fs, method="templatematch")
        ref = np.clip(q[pk[:-1]], 0, 1).mean()             # NeuroKit2's correlation of each beat, as we clip it
        assert abs(ours - ref) < 0.02, (noise_sd, ours, ref)  # measured <= 0.015
