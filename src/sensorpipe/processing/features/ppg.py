"""PPG (BVP) -> heart rate, HRV (1- and 5-minute RMSSD/SDNN) and a signal-quality index per minute.

* Beats: NeuroKit2's ``ppg_clean`` (Elgendi: 0.5-8 Hz Butterworth) and
  ``ppg_findpeaks`` (Elgendi et al. 2013), run in 30-minute chunks with 15 s
  of overlap (:mod:`.chunks`).
* Polarity: raw optical PPG is often light *intensity*, which falls as blood
  volume rises, so beats come upside down. An upright pulse has a fast
  systolic upstroke, i.e. a positively skewed first difference; a chunk whose
  cleaned first difference is negatively skewed is negated (the filter is
  linear, so that equals cleaning the negated signal).
* Low rates: the Elgendi windows are set in seconds and need about 50 Hz or
  more (at 20 Hz its 111-ms peak window is two samples and beats are
  missed), so slower signals are linearly interpolated to
  ``detect_rate_hz`` first; beat times are mapped back to real time. Below
  ``min_rate_hz`` (10 Hz) no minute is derived
  (``ppg_minutes_rate_below_detector_minimum``).
* Timing: each systolic peak is refined to a sub-sample position on the
  cleaned signal (:func:`.chunks.refine_peaks`), which matters for HRV.
* Heart rate and HRV: :mod:`.beats` (interval range filter, per-minute
  median rate, NN filter, RMSSD/SDNN of the minute and of the trailing 5
  minutes).
* Quality (``ppg_sqi``, 0-1): template matching after Orphanidou et al.
  (2015) and NeuroKit2's ``ppg_quality(method="templatematch")``: each beat
  (a window one median beat interval long, centred on its peak) is
  correlated with the minute's average beat; the minute's SQI is the mean
  correlation, negatives counted as 0. A minute needs ``min_beats`` beats.
  Within 0.015 of NeuroKit2's index on the same minute (the test in
  tests/processing/test_feature_references.py).
  HRV is far more sensitive to a misplaced beat than the median heart rate,
  so the NN intervals of minutes with SQI below ``hrv_min_sqi`` (0.9) are
  left out of every HRV window (counted as ``ppg_hrv_*_minutes_low_sqi``);
  heart rate is kept. Measured: a synthetic E4 day scores 0.996 at rest and
  0.58 (median) while walking; the real wrist recording in tests/data
  0.74-0.99.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sensorpipe.processing.features.base import (
    FeatureExtractor,
    Features,
    MinuteIndex,
)
from sensorpipe.processing.features.beats import HRV_CHANNELS, heart_features
from sensorpipe.processing.features.chunks import (
    cleaned,
    peaks,
    refine_peaks,
    run_chunked,
)



class PpgFeatures(FeatureExtractor):
    kind = "ppg"
    channels = ("heart_rate", *HRV_CHANNELS, "ppg_sqi")
    no_value_reasons: ClassVar[dict[str, str]] = {c: "too_few_beats" for c in channels}
    min_beats: ClassVar[int] = 10
    detect_rate_hz: ClassVar[float] = 64.0
    min_rate_hz: ClassVar[float] = 10.0
    hrv_min_sqi: ClassVar[float] = 0.9
    chunk_s: ClassVar[float] = 1800.0
    overlap_s: ClassVar[float] = 15.0

    def features(self, sig, index: MinuteIndex) -> Features:
        prepared = self.detector_input(sig, index, self.min_rate_hz)
        if isinstance(prepared, Features):
            return prepared
        x, fs, support = prepared
        if fs < 50.0:
            t_s = np.arange(int(x.size * self.detect_rate_hz / fs)) / self.detect_rate_hz
            x = np.interp(t_s, np.arange(x.size) / fs, x)
            fs = self.detect_rate_hz
        (clean,), beat_pos = run_chunked(lambda seg: _detect(seg, fs), x, fs, self.chunk_s, self.overlap_s)
        beat_pos = np.unique(beat_pos)
        beat_idx = np.rint(beat_pos).astype(np.int64)
        sqi = template_sqi(clean, beat_idx, fs, index.of_times(beat_pos / fs), index.n_minutes, self.min_beats)
        good = sqi >= self.hrv_min_sqi
        values = heart_features(beat_pos / fs, index, self.min_beats, good)
        values["ppg_sqi"] = sqi
        low = np.isfinite(sqi) & ~good
        return Features(values, support, withheld={c: {"low_sqi": low} for c in ("hrv_rmssd", "hrv_sdnn")})


def _detect(seg: np.ndarray, fs: float) -> tuple[tuple[np.ndarray], np.ndarray]:
    """(cleaned, upright PPG chunk; its systolic peaks, refined to sub-sample positions), nothing on overflow."""
    import neurokit2 as nk

    c = cleaned(nk.ppg_clean, seg, fs, method="elgendi")
    if c is None:
        return (np.zeros(seg.size),), np.zeros(0, np.int64)
    if _skewness(np.diff(c)) < 0:
        c = -c
    return (c,), refine_peaks(c, peaks(nk.ppg_findpeaks, c, fs, "PPG_Peaks", method="elgendi"))


def _skewness(d: np.ndarray) -> float:
    d = d - d.mean()
    sd = d.std()
    return float((d ** 3).mean() / sd ** 3) if sd > 0 else 0.0


def template_sqi(signal: np.ndarray, beat_idx: np.ndarray, fs: float, beat_minute: np.ndarray, n_minutes: int,
                 min_beats: int) -> np.ndarray:
    """Mean correlation (negatives as 0) of each minute's beats with the minute's average beat; NaN below ``min_beats``.

    One (beats x window) matrix and ``np.add.reduceat`` over the beats of
    each minute (beats are in time order); no loop per beat or minute.
    """
    out = np.full(n_minutes, np.nan)
    if beat_idx.size < 2:
        return out
    ibi = np.diff(beat_idx)
    ibi = ibi[(ibi >= 0.3 * fs) & (ibi <= 2.0 * fs)]
    w = int(np.median(ibi)) if ibi.size else int(fs)
    pre = w // 2
    keep = (beat_idx - pre >= 0) & (beat_idx - pre + w <= signal.size)
    b, m = beat_idx[keep], beat_minute[keep]
    if b.size < min_beats or w < 3:
        return out
    segs = signal[b[:, None] + np.arange(-pre, w - pre)[None, :]]
    segs = segs - segs.mean(axis=1, keepdims=True)
    starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    counts = np.diff(np.r_[starts, m.size])
    template = np.add.reduceat(segs, starts, axis=0) / counts[:, None]
    t_rows = np.repeat(np.arange(starts.size), counts)
    tpl = template[t_rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ij,ij->i", segs, tpl) / np.sqrt(np.einsum("ij,ij->i", segs, segs) *
                                                        np.einsum("ij,ij->i", tpl, tpl))
    r = np.clip(np.nan_to_num(r, nan=0.0), 0.0, 1.0)
    mean_r = np.bincount(t_rows, weights=r) / counts
    full = counts >= min_beats
    out[m[starts[full]]] = mean_r[full]
    return out
