"""Respiration (belt, chest band, thermistor) -> breathing rate (breaths/min) per minute.

NeuroKit2's ``rsp_clean`` (Khodadad et al. 2018: 0.05-3 Hz band-pass) and
``rsp_findpeaks``, the detector ``rsp_peaks`` runs (one peak per exhalation
onset), in 30-minute chunks with 60 s of overlap (the 0.05 Hz filter's
transient is long). The rate of each breath is 60 / (time since the previous
peak), kept when the interval is 1-15 s (60-4 breaths/min, the channel's
valid range), and a minute is the median of its breaths' rates, needing at
least ``min_breaths`` of them. The rate does not depend on the signal's unit
or polarity. Gaps and garbage are handled as for ECG; below ``min_rate_hz``
no minute is derived.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sensorpipe.processing.features.base import (
    FeatureExtractor,
    Features,
    MinuteIndex,
)
from sensorpipe.processing.features.beats import BREATH_INTERVAL_S, Intervals
from sensorpipe.processing.features.chunks import cleaned, peaks, run_chunked



class RespirationFeatures(FeatureExtractor):
    kind = "resp"
    channels = ("respiratory_rate",)
    no_value_reasons: ClassVar[dict[str, str]] = {"respiratory_rate": "too_few_breaths"}
    min_breaths: ClassVar[int] = 3
    min_rate_hz: ClassVar[float] = 10.0
    chunk_s: ClassVar[float] = 1800.0
    overlap_s: ClassVar[float] = 60.0

    def features(self, sig, index: MinuteIndex) -> Features:
        prepared = self.detector_input(sig, index, self.min_rate_hz)
        if isinstance(prepared, Features):
            return prepared
        x, fs, support = prepared
        _, idx = run_chunked(lambda seg: _detect(seg, fs), x, fs, self.chunk_s, self.overlap_s)
        iv = Intervals.of(np.unique(idx) / fs, index, BREATH_INTERVAL_S)
        return Features({"respiratory_rate": iv.rate_minutes(index.n_minutes, self.min_breaths)}, support)


def _detect(seg: np.ndarray, fs: float) -> tuple[tuple, np.ndarray]:
    import neurokit2 as nk

    c = cleaned(nk.rsp_clean, seg, fs)
    if c is None:
        return (), np.zeros(0, np.int64)
    return (), peaks(nk.rsp_findpeaks, c, fs, "RSP_Peaks")
