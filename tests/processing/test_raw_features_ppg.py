"""PPG heart rate, HRV and quality; chunked detection; the extractor registry."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import pytest

from sensorpipe.core.inputs import RawSignal
from sensorpipe.processing import raw_features
from sensorpipe.processing.features.base import Features, MinuteIndex
from sensorpipe.processing.features.ppg import PpgFeatures
from sensorpipe.schema.validate import CHANNEL_NAMES

nk = pytest.importorskip("neurokit2")
START_NS = 1_700_000_040 * 10**9
MINUTE_NS = 60_000_000_000


def _ppg(seconds: int, fs: int = 64, hr: float = 66.0, seed: int = 2) -> np.ndarray:
    return nk.ppg_simulate(duration=seconds, sampling_rate=fs, heart_rate=hr, frequency_modulation=0.2,
                           ibi_randomness=0.05, drift=0.1, motion_amplitude=0.1, powerline_amplitude=0.0,
                           burst_number=0, random_state=seed, random_state_distort=seed)


def _minutes(obs) -> list[int]:
    return [int(m) for m in (obs.t_utc_ns - START_NS) // MINUTE_NS]


def test_clean_ppg_gives_every_channel():
    feats = raw_features.extract(RawSignal("ppg", START_NS, 64.0, _ppg(360), "a.u.", "sim"))
    assert {CHANNEL_NAMES[c] for c in feats.observations.channel} == set(raw_features.kind_channels()["ppg"])
    np.testing.assert_allclose(feats.primary().value, 66.0, atol=2.0)
    assert (feats.channel("ppg_sqi").value > 0.95).all()
    assert _minutes(feats.channel("hrv_rmssd")) == list(range(6))
    assert _minutes(feats.channel("hrv_rmssd_5min")) == [4, 5]       # windows need 4 minutes of NN intervals
    assert feats.counts == {"ppg_hrv_rmssd_5min_minutes_too_few_beats": 4,
                            "ppg_hrv_sdnn_5min_minutes_too_few_beats": 4}


def _ppg_from_beats(beat_s: np.ndarray, fs: float, seconds: float, seed: int = 0) -> np.ndarray:
    """A pulse wave (systolic peak at 20 % of each beat, diastolic wave) with beats starting at ``beat_s``."""
    t = np.arange(int(seconds * fs)) / fs
    j = (np.searchsorted(beat_s, t, side="right") - 1).clip(0, beat_s.size - 2)
    u = (t - beat_s[j]) / (beat_s[j + 1] - beat_s[j])
    pulse = np.exp(-(((u - 0.2) / 0.075) ** 2)) + 0.35 * np.exp(-(((u - 0.42) / 0.12) ** 2))
    return pulse + np.random.default_rng(seed).normal(0, 0.01, t.size)


@pytest.mark.parametrize("fs", [20.0, 32.0, 64.0])
def test_low_hrv_is_measured_at_wearable_rates(fs):
    """RMSSD ~10 ms (a resting heart at 80 bpm with weak sinus arrhythmia): beat timing must be sub-sample.

    Measured within 0.4 ms at 20, 32 and 64 Hz. With whole-sample peak
    times (detection runs at 64 Hz for all three) RMSSD read 14-16 ms: the
    timing error adds T^2/2 = (11 ms)^2 to RMSSD^2.
    """
    k = np.arange(400)
    nn = 750 + 12 * np.sin(2 * np.pi * k / 4.3) + np.random.default_rng(3).normal(0, 4, k.size)
    beat_s = np.r_[0, np.cumsum(nn)] / 1000 + 0.3
    peak_s = beat_s[:-1] + 0.2 * np.diff(beat_s)            # where each systolic peak really is
    feats = raw_features.extract(RawSignal("ppg", START_NS, fs, _ppg_from_beats(beat_s, fs, 240), "a.u.", "sim"))
    ibi = np.diff(peak_s) * 1000
    minute = (peak_s[1:] // 60).astype(np.int64)
    for k in range(4):
        d = np.diff(ibi[minute == k])
        assert abs(feats.channel("hrv_rmssd").value[k] - np.sqrt(np.mean(d ** 2))) < 1.0
        assert abs(feats.channel("hrv_sdnn").value[k] - np.std(ibi[minute == k], ddof=1)) < 1.0


def test_motion_minutes_keep_heart_rate_but_withhold_hrv():
    fs = 64
    x = _ppg(180, fs)
    rng = np.random.default_rng(0)
    x[fs * 60: fs * 120] += rng.normal(0, 2.0 * x.std(), fs * 60)   # minute 1: heavy artefact
    feats = raw_features.extract(RawSignal("ppg", START_NS, float(fs), x, "a.u.", "sim"))
    sqi = dict(zip(_minutes(feats.channel("ppg_sqi")), feats.channel("ppg_sqi").value))
    assert sqi[1] < 0.9 < min(sqi[0], sqi[2])
    assert _minutes(feats.channel("hrv_rmssd")) == [0, 2]
    assert feats.counts["ppg_hrv_rmssd_minutes_low_sqi"] == 1
    assert feats.counts["ppg_hrv_sdnn_minutes_low_sqi"] == 1


def test_chunked_detection_gives_the_same_beats():
    sig = RawSignal("ppg", START_NS + 7 * 10**9, 64.0, _ppg(900), "a.u.", "sim")
    index = MinuteIndex.of(sig)

    class Whole(PpgFeatures, register=False):
        chunk_s = 1e9

    class Small(PpgFeatures, register=False):
        chunk_s = 120.0                                     # 8 chunks with 15 s of overlap

    a, b = Whole().features(sig, index).values, Small().features(sig, index).values
    for ch in ("heart_rate", "hrv_rmssd", "hrv_sdnn", "hrv_rmssd_5min", "hrv_sdnn_5min"):
        np.testing.assert_allclose(a[ch], b[ch], rtol=1e-9, err_msg=ch)   # the same beats (to rounding)
    np.testing.assert_allclose(a["ppg_sqi"], b["ppg_sqi"], atol=0.01)   # filter edges differ by chunk


def test_flat_or_too_short_ppg_is_counted_not_raised():
    feats = raw_features.extract(RawSignal("ppg", START_NS, 64.0, np.zeros(64 * 120), "a.u.", "flat"))
    assert len(feats.observations) == 0 and feats.counts == {"ppg_minutes_no_detectable_signal": 2}


# --- registry ---------------------------------------------------------------------------------
class _Constant(raw_features.FeatureExtractor, register=False):
    """A plugin-style extractor: the minute mean of a 'light' sensor, in the skin_temperature channel."""

    kind = "test_light"
    channels = ("skin_temperature",)
    no_value_reasons: ClassVar[dict[str, str]] = {"skin_temperature": "dark"}

    def features(self, sig, index):
        v = np.full(index.n_minutes, 30.0)
        v[1] = np.nan
        return Features({"skin_temperature": v}, np.bincount(index.minute, minlength=index.n_minutes))


@pytest.fixture
def registered():
    raw_features.register_extractor(_Constant)
    yield _Constant
    raw_features.EXTRACTORS.pop("test_light", None)


def test_a_registered_extractor_is_used_and_its_gaps_counted(registered):
    assert raw_features.register_extractor(_Constant) is _Constant          # again: a no-op
    assert raw_features.known_kinds()["test_light"] == "skin_temperature"
    feats = raw_features.extract(RawSignal("test_light", START_NS, 1.0, np.zeros(180), "lx", "x"))
    assert _minutes(feats.observations) == [0, 2]
    assert feats.counts == {"test_light_skin_temperature_minutes_dark": 1}


def test_registry_refuses_clashes_and_unknown_channels(registered):
    with pytest.raises(TypeError, match="already registered"):
        type("Other", (_Constant,), {})                    # subclassing registers, and the kind is taken

    class Mine(_Constant, register=False):
        pass

    with pytest.raises(TypeError, match="already registered"):
        raw_features.register_extractor(Mine)
    raw_features.register_extractor(Mine, replace=True)
    assert raw_features.EXTRACTORS["test_light"] is Mine
    with pytest.raises(ValueError, match="unknown channel"):
        type("Bad", (raw_features.FeatureExtractor,), {"kind": "test_bad", "channels": ("no_such_channel",)})
    assert "test_bad" not in raw_features.EXTRACTORS


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ValueError, match=r"f.csv: unknown raw signal kind \(feature extractor\) 'nope'; allowed: "
                                         r"acc, ecg, eda, ppg.*sensorpipe.features"):
        raw_features.extract(replace(RawSignal("ppg", START_NS, 64.0, np.zeros(10), "a.u.", "f.csv"), kind="nope"))
