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
    """Heart rate from PPG beats: median of the instantaneous rates of the beats in each minute.

    * Polarity: raw optical PPG is often light *intensity*, which falls as
      blood volume rises, so beats come upside down. An upright pulse has a
      fast systolic upstroke, i.e. a positively skewed first difference; a
      negatively skewed one is inverted before peak detection.
    * Low rates: NeuroKit2's Elgendi windows are set in seconds and need about
      50 Hz or more (at 20 Hz its 111-ms peak window is two samples and beats
      are missed), so slower signals are linearly interpolated to
      ``detect_rate_hz`` first; peak times are mapped back to real time.
    * Robustness: beat intervals outside 0.3-2.0 s (200-30 bpm) are rejected,
      and the per-minute *median* keeps a missed beat from dragging the minute
      down; a minute needs at least ``min_beats`` accepted beats.
    """

    kind = "ppg"
    channel = "heart_rate"
    min_beats: ClassVar[int] = 10
    detect_rate_hz: ClassVar[float] = 64.0

    def minute_values(self, sig, minute, n_minutes):
        import neurokit2 as nk

        fs = sig.sample_rate_hz
        x = np.nan_to_num(sig.values.astype(np.float64))
        t_s = np.arange(x.size) / fs
        if fs < 50.0:
            t_s = np.arange(int(x.size * self.detect_rate_hz / fs)) / self.detect_rate_hz
            x = np.interp(t_s, np.arange(x.size) / fs, x)
            fs = self.detect_rate_hz
        cleaned = nk.ppg_clean(x, sampling_rate=fs, method="elgendi")
        if _skewness(np.diff(cleaned)) < 0:
            cleaned = nk.ppg_clean(-x, sampling_rate=fs, method="elgendi")
        peaks = np.asarray(nk.ppg_findpeaks(cleaned, sampling_rate=fs, method="elgendi")["PPG_Peaks"], np.int64)
        samples = np.bincount(minute, minlength=n_minutes)
        if peaks.size < 2:
            return np.full(n_minutes, np.nan), samples
        beat_t = t_s[peaks]
        ibi_s = np.diff(beat_t)
        ok = (ibi_s >= 0.3) & (ibi_s <= 2.0)
        src_index = np.minimum((beat_t[1:][ok] * sig.sample_rate_hz).astype(np.int64), minute.size - 1)
        return _minute_median(60.0 / ibi_s[ok], minute[src_index], n_minutes, self.min_beats), samples


def _skewness(d: np.ndarray) -> float:
    d = d - d.mean()
    sd = d.std()
    return float((d ** 3).mean() / sd ** 3) if sd > 0 else 0.0


def _minute_median(values: np.ndarray, minute: np.ndarray, n_minutes: int, min_count: int) -> np.ndarray:
    """Median of ``values`` per minute (NaN below ``min_count``), sort-based, no loop per minute."""
    out = np.full(n_minutes, np.nan)
    if not values.size:
        return out
    order = np.lexsort((values, minute))
    m, v = minute[order], values[order]
    starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    counts = np.diff(np.r_[starts, m.size])
    lo = v[starts + (counts - 1) // 2]
    hi = v[starts + counts // 2]
    med = (lo + hi) / 2
    keep = counts >= min_count
    out[m[starts[keep]]] = med[keep]
    return out


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
    covered = support >= extractor.min_coverage * expected
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
