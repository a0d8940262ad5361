"""Raw waveforms -> minute-level canonical observations.

PPG (BVP) and ECG give heart rate, and a respiration belt gives breathing
rate, from the intervals between successive beats or breaths (NeuroKit2's
cleaning and peak detectors; the per-minute median of the instantaneous
rates, see :func:`_interval_rate_minutes`); the accelerometer gives ENMO in
mg; EDA and skin temperature give their minute means. A minute is emitted
only when at least ``min_coverage`` of its samples exist, so a minute at the
edge of a session is not summarised from a few seconds; the others are
counted.

Each feature extractor is a small registered class (``kind`` -> extractor),
so a new signal kind is one new class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sensorpipe.schema.validate import CHANNEL_INDEX, Observations
from sensorpipe.sources.base import RawSignal
from sensorpipe.units import convert

log = logging.getLogger(__name__)
MINUTE_NS = 60_000_000_000
#: accepted beat-to-beat intervals (s): 200-30 bpm
BEAT_INTERVAL_S = (0.3, 2.0)
#: accepted breath-to-breath intervals (s): 60-4 breaths/min, the respiratory_rate channel's valid range
BREATH_INTERVAL_S = (1.0, 15.0)
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
      down; a minute needs at least ``min_beats`` accepted beats
      (:func:`_interval_rate_minutes`).
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
        rate = _interval_rate_minutes(t_s[peaks], sig.sample_rate_hz, minute, n_minutes, BEAT_INTERVAL_S,
                                      self.min_beats)
        return rate, np.bincount(minute, minlength=n_minutes)


class EcgHeartRate(FeatureExtractor):
    """Heart rate from ECG R peaks, with the same interval filter and per-minute median as PPG.

    * Cleaning and peaks: NeuroKit2's ``ecg_clean`` (0.5 Hz high-pass and
      powerline filter) and ``ecg_findpeaks``, the QRS detector ``ecg_peaks``
      runs (see :func:`_peaks`). Tested against an independent detector
      (``sleepecg``) on a 25-minute 1 kHz recording and on it resampled to
      100 Hz: every minute within 1 bpm. Below ``min_rate_hz`` no minute is
      derived (the QRS complex is not resolved).
    * Polarity: electrodes placed the other way round give an ECG with
      downward R waves. The test is NeuroKit2's ``ecg_invert`` criterion (in
      each 2-s window take the cleaned sample of largest magnitude; a negative
      median means inverted), applied to non-overlapping 2-s blocks because
      ``nk.ecg_invert`` builds every *sliding* window (N x 2 fs values: 24 GB
      for 25 minutes at 1 kHz). The filter is linear, so the cleaned signal is
      simply negated.
    * Gaps: missing samples (NaN, e.g. saturated samples an adapter blanked)
      are linearly interpolated for detection but do not count towards a
      minute's coverage (:func:`_detectable`); a signal whose filter output is
      not finite (garbage values) gives no minutes.
    """

    kind = "ecg"
    channel = "heart_rate"
    min_beats: ClassVar[int] = 10
    min_rate_hz: ClassVar[float] = 50.0

    def minute_values(self, sig, minute, n_minutes):
        import neurokit2 as nk

        fs = sig.sample_rate_hz
        x, support = _detectable(sig, minute, n_minutes, self.min_rate_hz)
        if x is None:
            return np.full(n_minutes, np.nan), support
        cleaned = _cleaned(nk.ecg_clean, x, fs)
        if cleaned is None:
            return np.full(n_minutes, np.nan), support
        if _ecg_inverted(cleaned, fs):
            cleaned = -cleaned
        peaks = _peaks(nk.ecg_findpeaks, cleaned, fs, "ECG_R_Peaks")
        rate = _interval_rate_minutes(peaks / fs, fs, minute, n_minutes, BEAT_INTERVAL_S, self.min_beats)
        return rate, support


def _ecg_inverted(cleaned: np.ndarray, fs: float, window_s: float = 2.0) -> bool:
    """NeuroKit2's ``ecg_invert`` test on non-overlapping windows (see :class:`EcgHeartRate`)."""
    w = max(int(window_s * fs), 1)
    k = cleaned.size // w
    if k == 0:
        return False
    with np.errstate(all="ignore"):
        blocks = (cleaned[: k * w] - cleaned.mean()).reshape(k, w)
        return bool(np.median(blocks[np.arange(k), np.abs(blocks).argmax(axis=1)]) < 0)


class RespirationRate(FeatureExtractor):
    """Breathing rate (breaths/min) from a respiration belt, chest band or thermistor.

    NeuroKit2's ``rsp_clean`` (Khodadad et al. 2018: 0.05-3 Hz band-pass) and
    ``rsp_findpeaks``, the detector ``rsp_peaks`` runs (one peak per
    exhalation onset); the rate of each breath is 60 / (time since the
    previous peak), kept when the interval is 1-15 s (60-4 breaths/min, the
    channel's valid range), and a minute is the median of its breaths' rates,
    needing at least ``min_breaths`` of them. The rate does not depend on the
    signal's unit or polarity. Gaps and garbage are handled as for
    :class:`EcgHeartRate`; below ``min_rate_hz`` no minute is derived.
    """

    kind = "resp"
    channel = "respiratory_rate"
    min_breaths: ClassVar[int] = 3
    min_rate_hz: ClassVar[float] = 10.0

    def minute_values(self, sig, minute, n_minutes):
        import neurokit2 as nk

        fs = sig.sample_rate_hz
        x, support = _detectable(sig, minute, n_minutes, self.min_rate_hz)
        if x is None:
            return np.full(n_minutes, np.nan), support
        cleaned = _cleaned(nk.rsp_clean, x, fs)
        if cleaned is None:
            return np.full(n_minutes, np.nan), support
        peaks = _peaks(nk.rsp_findpeaks, cleaned, fs, "RSP_Peaks")
        rate = _interval_rate_minutes(peaks / fs, fs, minute, n_minutes, BREATH_INTERVAL_S, self.min_breaths)
        return rate, support


def _detectable(sig: RawSignal, minute: np.ndarray, n_minutes: int,
                min_rate_hz: float) -> tuple[np.ndarray | None, np.ndarray]:
    """(signal ready for a peak detector, or None; finite samples per minute).

    Non-finite samples are linearly interpolated for detection (they still do
    not count as coverage). None, so that no minute is emitted (counted as
    ``<kind>_minutes_no_signal`` where coverage allows), when the rate is
    below ``min_rate_hz`` (the detector's filters do not exist there: logged),
    or when there are fewer than 10 s of finite samples or they are flat.
    """
    x = np.asarray(sig.values, np.float64).ravel()
    ok = np.isfinite(x)
    support = np.bincount(minute[ok], minlength=n_minutes)
    if sig.sample_rate_hz < min_rate_hz:
        log.warning("%s: %s at %g Hz is below the %g Hz its detector needs; no minutes derived",
                    sig.source_file, sig.kind, sig.sample_rate_hz, min_rate_hz)
        return None, support
    if ok.sum() < 10 * sig.sample_rate_hz or np.min(x[ok]) == np.max(x[ok]):
        return None, support
    if not ok.all():
        idx = np.arange(x.size)
        x = np.interp(idx, idx[ok], x[ok])
    return x, support


def _cleaned(clean, x: np.ndarray, fs: float) -> np.ndarray | None:
    """A NeuroKit2 ``*_clean`` filter's output, or None when it is not finite.

    Garbage values (e.g. 1e308) overflow the filters; NeuroKit2 then tries to
    interpolate the resulting NaNs and raises IndexError or ValueError.
    """
    try:
        with np.errstate(all="ignore"):
            cleaned = np.asarray(clean(x, sampling_rate=fs), np.float64)
    except (IndexError, ValueError):
        return None
    return cleaned if np.isfinite(cleaned).all() else None


def _peaks(find, cleaned: np.ndarray, fs: float, key: str) -> np.ndarray:
    """Sample indices from a NeuroKit2 ``*_findpeaks`` detector (the detector inside ``*_peaks``).

    ``*_peaks`` also formats a per-sample frame, which fails when nothing is
    found; the detectors themselves raise IndexError or ValueError on
    featureless input (e.g. a flat stretch after cleaning) instead of
    returning no peaks, so those mean "no peaks" here.
    """
    try:
        return np.asarray(find(cleaned, sampling_rate=fs)[key], np.int64)
    except (IndexError, ValueError):
        return np.zeros(0, np.int64)


def _skewness(d: np.ndarray) -> float:
    d = d - d.mean()
    sd = d.std()
    return float((d ** 3).mean() / sd ** 3) if sd > 0 else 0.0


def _interval_rate_minutes(event_s: np.ndarray, sample_rate_hz: float, minute: np.ndarray, n_minutes: int,
                           interval_s: tuple[float, float], min_count: int) -> np.ndarray:
    """Per-minute median of the instantaneous rates (events/min) of successive events.

    ``event_s`` are beat or breath times in seconds from the signal's first
    sample, increasing. Each interval outside ``interval_s`` is rejected (a
    missed or spurious event); an accepted interval's rate ``60 / interval``
    belongs to the minute of the event that ends it, looked up through the
    sample-to-minute index ``minute``. Minutes with fewer than ``min_count``
    accepted intervals are NaN.
    """
    if event_s.size < 2:
        return np.full(n_minutes, np.nan)
    ibi_s = np.diff(event_s)
    ok = (ibi_s >= interval_s[0]) & (ibi_s <= interval_s[1])
    src_index = np.minimum((event_s[1:][ok] * sample_rate_hz).astype(np.int64), minute.size - 1)
    return _minute_median(60.0 / ibi_s[ok], minute[src_index], n_minutes, min_count)


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
