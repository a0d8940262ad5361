"""ECG heart rate and respiration rate extractors (lab recordings: chest bands, ECG electrodes).

ECG data: ``systole/datasets/Task1_ECG.npy`` from the ``systole`` 0.3.1 sdist
(GPL-3, so it is fetched here with ``pip download --no-deps`` and never
committed; the test is skipped when the registry cannot be reached): 25.6 min
of a healthy young adult's ECG at 1 kHz (Legrand et al. 2020).

Reference: the sdist's ``rr.txt`` does NOT belong to this ECG: its 245
intervals (3.6 min) are multiples of 1000/75 ms, i.e. beats of the 75 Hz
``ppg.npy`` recording. So the reference beats come from an independent,
published QRS detector, ``sleepecg.detect_heartbeats`` (BSD-3; a
Pan-Tompkins-derived detector validated on MIT-BIH, GUDB and LTDB; no
NeuroKit2 code), run on the 1 kHz signal, and the reference minute value is
computed here, in plain numpy, with the rule the extractor documents (beat
intervals 0.3-2.0 s, rate of the beat that ends the interval, median per
minute, at least 10 beats).

Measured when this test was written: 1 kHz max |diff| 0.09 bpm over 25
minutes; 100 Hz (polyphase resampled) max 0.72 bpm, median 0.2.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from sensorpipe.core.inputs import RawSignal
from sensorpipe.processing import raw_features
from sensorpipe.schema.validate import CHANNEL_INDEX

START_NS = 1_700_000_040 * 10**9  # a UTC minute boundary, so minute k of the grid is seconds [60k, 60k + 60)
MINUTE_NS = 60_000_000_000


@pytest.fixture(scope="module")
def systole_ecg(tmp_path_factory) -> np.ndarray:
    """The 1 kHz ECG of systole 0.3.1 (GPL-3: fetched at test time, never committed)."""
    d = tmp_path_factory.mktemp("systole")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "systole==0.3.1", "-d", str(d)], check=True, capture_output=True, timeout=120)
        (sdist,) = d.glob("systole-0.3.1.tar.gz")
        with tarfile.open(sdist) as tar:
            member = tar.getmember("systole-0.3.1/src/systole/datasets/Task1_ECG.npy")
            with tar.extractfile(member) as fh:
                return np.load(io.BytesIO(fh.read()))
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as e:
        pytest.skip(f"systole 0.3.1 sdist (GPL-3 ECG sample) could not be fetched from PyPI: {e}")


def _reference_minutes(ecg: np.ndarray, fs: float) -> dict[int, float]:
    """Minute index -> median beat rate from sleepecg's R peaks (plain numpy, no sensorpipe code)."""
    sleepecg = pytest.importorskip("sleepecg", reason="sleepecg (BSD-3) is the independent QRS detector")
    beats_s = sleepecg.detect_heartbeats(ecg, fs) / fs
    ibi = np.diff(beats_s)
    ok = (ibi >= 0.3) & (ibi <= 2.0)
    rate, minute = 60.0 / ibi[ok], (beats_s[1:][ok] // 60).astype(int)
    return {int(m): float(np.median(rate[minute == m])) for m in np.unique(minute) if (minute == m).sum() >= 10}


def _ours(values: np.ndarray, fs: float, kind: str = "ecg", unit: str = "mV",
          channel: str = "") -> dict[int, float]:
    """Minute index -> value of ``channel`` (default: the kind's primary channel, heart or breathing rate)."""
    obs = raw_features.extract(RawSignal(kind, START_NS, fs, values, unit, "test")).observations
    obs = obs.take(obs.channel == CHANNEL_INDEX[channel or raw_features.known_kinds()[kind]])
    return {int((t - START_NS) // MINUTE_NS): float(v) for t, v in zip(obs.t_utc_ns, obs.value)}


@pytest.mark.parametrize("fs, tol", [(1000, 1.0), (100, 1.0)])
@pytest.mark.parametrize("sign", [1, -1], ids=["upright", "inverted"])
def test_ecg_heart_rate_matches_an_independent_detector(systole_ecg, fs, tol, sign):
    from scipy.signal import resample_poly

    ref = _reference_minutes(systole_ecg, 1000.0)
    x = systole_ecg if fs == 1000 else resample_poly(systole_ecg, fs, 1000)
    ours = _ours(sign * x, float(fs))
    assert systole_ecg.size == 1_536_570                  # 25 minutes and 36.6 s: the 26th minute is >= 50 % covered
    assert sorted(ours) == list(range(26))
    diff = np.array([abs(ours[m] - ref[m]) for m in ours])
    assert diff.max() < tol, f"worst minute {int(diff.argmax())}: {diff.max():.2f} bpm"
    assert 60 < min(ours.values()) and max(ours.values()) < 100   # a seated adult


def test_ecg_channel_and_minute_starts(systole_ecg):
    x = systole_ecg[:180_000]
    feats = raw_features.extract(RawSignal("ecg", START_NS + 30 * 10**9, 1000.0, x, "mV", "t"))
    obs = feats.observations
    # starts at :30 s: minute 0 has 30 s (50 %: kept), minutes 1 and 2 full, minute 3 has 30 s (kept)
    for ch in ("heart_rate", "hrv_rmssd", "hrv_sdnn"):
        sel = obs.channel == CHANNEL_INDEX[ch]
        assert list((obs.t_utc_ns[sel] - START_NS) // MINUTE_NS) == [0, 1, 2, 3], ch
    # 3 minutes of beats never fill 4 of a 5-minute window's minutes: no 5-minute HRV, each minute counted
    assert not np.isin(obs.channel, [CHANNEL_INDEX["hrv_rmssd_5min"], CHANNEL_INDEX["hrv_sdnn_5min"]]).any()
    assert feats.counts == {"ecg_hrv_rmssd_5min_minutes_too_few_beats": 4, "ecg_hrv_sdnn_5min_minutes_too_few_beats": 4}


def test_ecg_gaps_do_not_count_as_coverage(systole_ecg):
    x = systole_ecg[:180_000].copy()
    x[60_000:100_000] = np.nan                              # minute 1 loses 40 of its 60 s
    feats = raw_features.extract(RawSignal("ecg", START_NS, 1000.0, x, "mV", "t"))
    hr = feats.observations.take(feats.observations.channel == CHANNEL_INDEX["heart_rate"])
    assert list((hr.t_utc_ns - START_NS) // MINUTE_NS) == [0, 2]
    assert feats.counts["ecg_minutes_partial"] == 1
    assert feats.counts["ecg_hrv_sdnn_5min_minutes_too_few_beats"] == 2     # minutes 0 and 2


@pytest.mark.parametrize("kind", ["ecg", "resp"])
def test_garbage_signal_gives_no_minutes_and_no_error(kind):
    x = np.random.default_rng(0).normal(size=120 * 700)
    x[5000] = np.inf
    x[7000] = 1e308
    feats = raw_features.extract(RawSignal(kind, START_NS, 700.0, x, "a.u.", "t"))
    assert len(feats.observations) == 0 or np.isfinite(feats.observations.value).all()


@pytest.mark.parametrize("fs", [700.0, 25.0])
def test_respiration_rate_of_a_simulated_15_per_minute_breathing(fs):
    """A breathing signal whose true rate is exactly 15/min (NeuroKit2's sinusoidal model plus noise)."""
    import neurokit2 as nk

    x = nk.rsp_simulate(duration=300, sampling_rate=int(fs), respiratory_rate=15, method="sinusoidal",
                        noise=0.05, random_state=7)
    ours = _ours(x, fs, kind="resp", unit="a.u.")
    assert sorted(ours) == [0, 1, 2, 3, 4]
    assert np.abs(np.array(list(ours.values())) - 15.0).max() < 1.0
    obs = raw_features.extract(RawSignal("resp", START_NS, fs, x, "a.u.", "t")).observations
    assert np.all(obs.channel == CHANNEL_INDEX["respiratory_rate"])


def test_respiration_rate_of_realistic_simulated_breathing():
    """The BreathMetrics model varies each breath around 15/min on purpose, so minutes scatter around 15."""
    import neurokit2 as nk

    x = nk.rsp_simulate(duration=300, sampling_rate=700, respiratory_rate=15, method="breathmetrics",
                        noise=0.05, random_state=2)
    rates = np.array(list(_ours(x, 700.0, kind="resp", unit="a.u.").values()))
    assert rates.size == 5
    assert abs(np.median(rates) - 15.0) < 0.5 and np.abs(rates - 15.0).max() < 1.5


def test_respiration_rate_does_not_depend_on_polarity_or_scale():
    import neurokit2 as nk

    x = nk.rsp_simulate(duration=180, sampling_rate=100, respiratory_rate=12, random_state=3)
    a = _ours(x, 100.0, kind="resp", unit="a.u.")
    b = _ours(-250.0 * x + 40.0, 100.0, kind="resp", unit="%")
    assert sorted(a) == sorted(b) == [0, 1, 2]
    np.testing.assert_allclose([a[m] for m in a], [12.0] * 3, atol=1.0)
    np.testing.assert_allclose([b[m] for m in b], [12.0] * 3, atol=1.5)


def test_interval_rate_minutes_exact():
    fs = 10.0
    minute = np.repeat(np.arange(3), 600)                    # 3 minutes of samples at 10 Hz
    beats = np.r_[np.arange(0, 60, 1.0), 60 + np.arange(0, 60, 0.5), 120 + np.arange(0, 5, 1.0)]
    beats = np.insert(beats, 30, 29.95)                      # a spurious beat 50 ms before the one at 30 s
    rate = raw_features._interval_rate_minutes(beats, fs, minute, 3, raw_features.BEAT_INTERVAL_S, 10)
    # minute 0: 60 bpm (the 0.05-s interval is rejected, the 0.95-s one is outvoted by 58 one-second ones);
    # minute 1: 120 bpm (the 60.0 - 59.0 = 1.0 s interval ending in it is 60 bpm, outvoted);
    # minute 2: 5 beats < 10: NaN
    np.testing.assert_allclose(rate[:2], [60.0, 120.0])
    assert np.isnan(rate[2])


def test_known_kinds_include_ecg_and_resp():
    kinds = raw_features.known_kinds()
    assert kinds["ecg"] == "heart_rate" and kinds["resp"] == "respiratory_rate" and kinds["ppg"] == "heart_rate"
