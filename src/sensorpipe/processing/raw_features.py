"""Raw waveforms -> minute-level canonical observations.

PPG (BVP) gives heart rate from beat intervals (NeuroKit2's cleaning and
Elgendi peak detector); the accelerometer gives ENMO in mg; EDA and skin
temperature give their minute means. A minute is emitted only when at least
``min_coverage`` of its samples exist, so a minute at the edge of a session
is not summarised from a few seconds; the others are counted.

Each feature extractor is a small registered class (``kind`` -> extractor),
so a new signal kind is one new class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sensorpipe.schema.validate import CHANNEL_INDEX, Observations
from sensorpipe.sources.base import RawSignal
from sensorpipe.units import convert

MINUTE_NS = 60_000_000_000
_EXTRACTORS: dict[str, type["FeatureExtractor"]] = {}


@dataclass
class MinuteFeatures:
    """Minute observations from one raw signal plus what was not emitted and why."""

    observations: Observations
    samples_in: int
    counts: dict[str, int]


class FeatureExtractor:
    """Turns one raw signal into minute values of one canonical channel."""

    kind: ClassVar[str] = ""
    channel: ClassVar[str] = ""
    min_coverage: ClassVar[float] = 0.5

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if cls.kind:
            if cls.kind in _EXTRACTORS:
                raise TypeError(f"feature extractor for {cls.kind!r} already registered")
            _EXTRACTORS[cls.kind] = cls

    def minute_values(self, sig: RawSignal, minute: np.ndarray, n_minutes: int) -> tuple[np.ndarray, np.ndarray]:
        """(value per minute, valid mask per minute); ``minute`` is each sample's minute index."""
        raise NotImplementedError


def _minute_mean(values: np.ndarray, minute: np.ndarray, n_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(values)
    sums = np.bincount(minute[ok], weights=values[ok], minlength=n_minutes)
    cnt = np.bincount(minute[ok], minlength=n_minutes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / cnt, cnt


class EdaLevel(FeatureExtractor):
    kind = "eda"
    channel = "eda_level"

    def minute_values(self, sig, minute, n_minutes):
        return _minute_mean(convert(sig.values.astype(np.float64), sig.unit, "uS"), minute, n_minutes)


class SkinTemperature(FeatureExtractor):
    kind = "temp"
    channel = "skin_temperature"

    def minute_values(self, sig, minute, n_minutes):
        return _minute_mean(convert(sig.values.astype(np.float64), sig.unit, "degC"), minute, n_minutes)


class Enmo(FeatureExtractor):
    """Euclidean norm minus one g, negatives set to zero, in mg (van Hees et al. 2013)."""

    kind = "acc"
    channel = "enmo"

    def minute_values(self, sig, minute, n_minutes):
        xyz_mg = convert(sig.values.astype(np.float64), sig.unit, "mg")
        enmo = np.maximum(np.sqrt((xyz_mg ** 2).sum(axis=1)) - 1000.0, 0.0)
        return _minute_mean(enmo, minute, n_minutes)


class PpgHeartRate(FeatureExtractor):
    """Heart rate from PPG beats: mean of the instantaneous rates of the beats in each minute.

    Beat intervals outside 0.3-2.0 s (200-30 bpm) are rejected as artefacts;
    a minute needs at least ``min_beats`` accepted beats.
    """

    kind = "ppg"
    channel = "heart_rate"
    min_beats: ClassVar[int] = 10

    def minute_values(self, sig, minute, n_minutes):
        import neurokit2 as nk

        fs = sig.sample_rate_hz
        x = np.nan_to_num(sig.values.astype(np.float64))
        cleaned = nk.ppg_clean(x, sampling_rate=fs, method="elgendi")
        peaks = np.asarray(nk.ppg_findpeaks(cleaned, sampling_rate=fs, method="elgendi")["PPG_Peaks"], np.int64)
        if peaks.size < 2:
            return np.full(n_minutes, np.nan), np.zeros(n_minutes, np.int64)
        ibi_s = np.diff(peaks) / fs
        ok = (ibi_s >= 0.3) & (ibi_s <= 2.0)
        beat_minute = minute[peaks[1:]][ok]
        hr = 60.0 / ibi_s[ok]
        sums = np.bincount(beat_minute, weights=hr, minlength=n_minutes)
        beats = np.bincount(beat_minute, minlength=n_minutes)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums / beats
        mean[beats < self.min_beats] = np.nan
        # coverage is judged on samples, as for the other channels
        return mean, np.bincount(minute, minlength=n_minutes)


def extract(sig: RawSignal, file_index: int = 0) -> MinuteFeatures:
    """Minute observations of ``sig`` (UTC minute starts), with counts of minutes not emitted."""
    try:
        extractor = _EXTRACTORS[sig.kind]()
    except KeyError:
        raise ValueError(f"{sig.source_file}: no feature extractor for raw signal kind {sig.kind!r}; "
                         f"known: {', '.join(sorted(_EXTRACTORS))}") from None
    n = sig.values.shape[0]
    first_min = sig.start_utc_ns // MINUTE_NS
    t_ns = sig.start_utc_ns + np.round(np.arange(n) * (1e9 / sig.sample_rate_hz)).astype(np.int64)
    minute = (t_ns // MINUTE_NS - first_min).astype(np.int64)
    n_minutes = int(minute[-1]) + 1 if n else 0
    values, support = extractor.minute_values(sig, minute, n_minutes)
    expected = sig.sample_rate_hz * 60.0
    covered = support >= extractor.min_coverage * expected if extractor.kind != "ppg" else \
        np.bincount(minute, minlength=n_minutes) >= extractor.min_coverage * expected
    emit = covered & np.isfinite(values)
    idx = np.flatnonzero(emit)
    first_sample = np.searchsorted(minute, idx)
    obs = Observations(np.full(idx.size, CHANNEL_INDEX[extractor.channel], np.int16),
                       (first_min + idx) * MINUTE_NS, values[idx].astype(np.float64),
                       np.full(idx.size, file_index, np.int32), first_sample.astype(np.int64),
                       [sig.source_file], np.full(idx.size, -1, np.int64))
    counts = {f"{sig.kind}_minutes_partial": int((~covered).sum()),
              f"{sig.kind}_minutes_no_signal": int((covered & ~np.isfinite(values)).sum())}
    return MinuteFeatures(obs, n, {k: v for k, v in counts.items() if v})


def known_kinds() -> dict[str, str]:
    """Raw signal kind -> canonical channel it feeds."""
    return {k: v.channel for k, v in sorted(_EXTRACTORS.items())}
