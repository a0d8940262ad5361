"""ECG -> heart rate and HRV (1- and 5-minute RMSSD/SDNN) per minute from R peaks.

* Cleaning and peaks: NeuroKit2's ``ecg_clean`` (0.5 Hz high-pass and
  powerline filter) and ``ecg_findpeaks``, the QRS detector ``ecg_peaks``
  runs, in 30-minute chunks with 15 s of overlap (:mod:`.chunks`). Tested
  against an independent detector (``sleepecg``) on a 25-minute 1 kHz
  recording and on it resampled to 100 Hz: every minute within 1 bpm. Below
  ``min_rate_hz`` no minute is derived (the QRS complex is not resolved;
  counted as ``ecg_minutes_rate_below_detector_minimum``).
* Polarity: electrodes placed the other way round give an ECG with downward
  R waves. The test is NeuroKit2's ``ecg_invert`` criterion (in each 2-s
  window take the cleaned sample of largest magnitude; a negative median
  means inverted), applied per chunk to non-overlapping 2-s blocks because
  ``nk.ecg_invert`` builds every *sliding* window (N x 2 fs values: 24 GB
  for 25 minutes at 1 kHz). The filter is linear, so the cleaned signal is
  simply negated.
* Gaps: missing samples (NaN, e.g. saturated samples an adapter blanked)
  are linearly interpolated for detection but do not count towards a
  minute's coverage; a chunk whose filter output is not finite (garbage
  values) gives no beats.
* Timing: each R peak is refined to a sub-sample position on the cleaned
  signal (:func:`.chunks.refine_peaks`).
* Heart rate and HRV: :mod:`.beats`.
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



class EcgFeatures(FeatureExtractor):
    kind = "ecg"
    channels = ("heart_rate", *HRV_CHANNELS)
    no_value_reasons: ClassVar[dict[str, str]] = {c: "too_few_beats" for c in channels}
    min_beats: ClassVar[int] = 10
    min_rate_hz: ClassVar[float] = 50.0
    chunk_s: ClassVar[float] = 1800.0
    overlap_s: ClassVar[float] = 15.0

    def features(self, sig, index: MinuteIndex) -> Features:
        prepared = self.detector_input(sig, index, self.min_rate_hz)
        if isinstance(prepared, Features):
            return prepared
        x, fs, support = prepared
        _, beat_pos = run_chunked(lambda seg: _detect(seg, fs), x, fs, self.chunk_s, self.overlap_s)
        return Features(heart_features(np.unique(beat_pos) / fs, index, self.min_beats), support)


def _detect(seg: np.ndarray, fs: float) -> tuple[tuple, np.ndarray]:
    import neurokit2 as nk

    c = cleaned(nk.ecg_clean, seg, fs)
    if c is None:
        return (), np.zeros(0, np.int64)
    if ecg_inverted(c, fs):
        c = -c
    return (), refine_peaks(c, peaks(nk.ecg_findpeaks, c, fs, "ECG_R_Peaks"))


def ecg_inverted(clean: np.ndarray, fs: float, window_s: float = 2.0) -> bool:
    """NeuroKit2's ``ecg_invert`` test on non-overlapping windows (see the module docstring)."""
    w = max(int(window_s * fs), 1)
    k = clean.size // w
    if k == 0:
        return False
    with np.errstate(all="ignore"):
        blocks = (clean[: k * w] - clean.mean()).reshape(k, w)
        return bool(np.median(blocks[np.arange(k), np.abs(blocks).argmax(axis=1)]) < 0)
