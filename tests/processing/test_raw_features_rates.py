"""Every signal kind at the native rates of the real formats: values where the rate allows, a counted reason where not.

Rates: Empatica E4 (EDA and temperature 4 Hz, accelerometer 32 Hz, BVP 64
Hz), a smartwatch PPG (~19.6 Hz, tests/data/e2epyppg), WESAD's RespiBAN
(700 Hz), BITalino / PLUX OpenSignals (10, 100, 1000 Hz), EDF recordings
(128, 256 Hz). Never an exception.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.core.inputs import RawSignal
from sensorpipe.processing import raw_features
from tests.processing.test_feature_references import walking_signal

nk = pytest.importorskip("neurokit2")
START_NS = 1_700_000_040 * 10**9
SECONDS = 125                                               # two full minutes and 5 s (partial)
RATES = (4.0, 10.0, 19.6, 32.0, 64.0, 100.0, 128.0, 256.0, 700.0, 1000.0)


def _signal(kind: str, fs: float) -> tuple[np.ndarray, str]:
    n = int(SECONDS * fs)
    t = np.arange(n) / fs
    if kind == "ppg":                                       # a pulse every 0.8 s: 75 bpm
        u = (t % 0.8) / 0.8
        return np.exp(-(((u - 0.2) / 0.075) ** 2)) + 0.35 * np.exp(-(((u - 0.42) / 0.12) ** 2)), "a.u."
    if kind == "ecg":
        x = nk.ecg_simulate(duration=SECONDS + 1, sampling_rate=max(round(fs), 1), heart_rate=70,
                            method="simple", random_state=1)
        return np.interp(t, np.arange(x.size) / round(fs), x), "mV"
    if kind == "resp":
        return np.sin(2 * np.pi * t / 4.0), "a.u."          # 15 breaths/min
    if kind == "acc":
        return walking_signal(fs, SECONDS), "g"
    if kind == "eda":
        x = nk.eda_simulate(duration=SECONDS, sampling_rate=4, scr_number=4, noise=0.0, random_state=1)
        return np.interp(t, np.arange(x.size) / 4.0, x) + 2.0, "uS"
    return np.full(n, 33.0), "degC"


EXPECTED = {"ppg": ("heart_rate", 75.0, 1.0, 10.0), "ecg": ("heart_rate", 70.0, 3.0, 50.0),
            "resp": ("respiratory_rate", 15.0, 0.5, 10.0), "acc": ("steps", 108.0, 6.0, 10.0),
            "eda": ("eda_level", None, None, 0.0), "temp": ("skin_temperature", 33.0, 1e-9, 0.0)}


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_native_rates(kind, fs):
    x, unit = _signal(kind, fs)
    feats = raw_features.extract(RawSignal(kind, START_NS, fs, x, unit, f"{kind}@{fs}"))
    channel, value, tol, min_rate = EXPECTED[kind]
    assert feats.counts.get(f"{kind}_minutes_partial") == 1             # the last 5 s
    got = feats.channel(channel).value
    if fs < min_rate:
        assert got.size == 0
        reasons = {k for k in feats.counts if k != f"{kind}_minutes_partial"}
        assert reasons and all(feats.counts[k] == 2 for k in reasons), feats.counts
        return
    assert got.size == 2, feats.counts
    if value is not None:
        np.testing.assert_allclose(got, value, atol=tol)
    else:
        assert np.isfinite(got).all() and (got > 1.0).all()
