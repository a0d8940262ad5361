"""EDA -> tonic skin-conductance level (SCL, uS) and phasic response rate (SCR peaks/min) per minute.

* Rate: NeuroKit2's ``eda_clean`` low-passes at 3 Hz and silently skips
  that at 6 Hz or less, and the Empatica E4 records EDA at 4 Hz. So every
  EDA signal is first put on one ~8 Hz grid (``EDA_RATE_HZ``): linear
  interpolation from slower rates (it adds no peaks), polyphase resampling
  (``scipy.signal.resample_poly``, anti-aliased) from faster ones; EDA has
  no content above ~1 Hz. Every rate then takes the same, tested, path.
* Cleaning: a 1 Hz low-pass (4th-order Butterworth, zero phase, via
  ``nk.signal_filter``), the cut-off EDA Explorer uses for wrist EDA (Taylor
  et al. 2015); NeuroKit2's default 3 Hz lets through noise that a 0.05-uS
  peak criterion then counts.
* Decomposition: ``nk.eda_phasic(method="smoothmedian")`` (Biopac
  AcqKnowledge's median method: tonic = running median, phasic = the rest)
  with an 8-s median (``MEDIAN_WINDOW_S``; NeuroKit2's default 4 s eats
  half of a response that takes 2 s to rise: a 0.16-uS one kept 0.04 uS of
  phasic amplitude, below the threshold, where 8 s keeps 0.10; counts on
  NeuroKit2's simulated EDA are the same), in 30-minute chunks with 2 minutes of overlap (:mod:`.chunks`).
  Not the 0.05 Hz ``highpass`` method: its filter undershoots after each
  large response, and the rebound (7-8 % of the response) was counted as a
  response of its own on NeuroKit2's simulated EDA. ``eda_level`` is the
  minute mean of the tonic component at the original samples (so coverage
  is counted on the real samples).
* Responses: ``nk.signal_findpeaks``' peaks on the phasic component
  (:func:`scr_peaks`), keeping those whose prominence (NeuroKit2's SCR
  "Height") is at least ``SCR_MIN_AMPLITUDE_US`` = 0.05 uS: the upper end of
  the conventional 0.01-0.05 uS minimum SCR amplitudes (Boucsein et al.
  2012), because wrist devices are noisier than lab electrodes (at 0.01 uS,
  ``nk.eda_simulate(noise=0.01)`` at 4 Hz gives about twice its true count;
  at 0.05 uS exactly it). An absolute threshold, unlike ``eda_peaks``'
  default (10 % of the largest response in the signal), so a day's count
  does not depend on its single largest response. ``eda_scr_rate`` is the
  minute's count scaled to a full minute of samples.
* Signals with less than ``min_seconds`` of finite samples (shorter than the
  0.05 Hz filters need) keep the minute mean of the raw signal as the level
  and give no response rate (``eda_eda_scr_rate_minutes_too_short``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import ClassVar

import numpy as np

from sensorpipe.processing.features.base import (
    FeatureExtractor,
    Features,
    MinuteIndex,
    fill_gaps,
    finite_samples,
    minute_mean,
)
from sensorpipe.processing.features.chunks import cleaned, run_chunked
from sensorpipe.units import convert

EDA_RATE_HZ = 8.0
SCR_MIN_AMPLITUDE_US = 0.05
CLEAN_LOWPASS_HZ = 1.0
MEDIAN_WINDOW_S = 8


class EdaFeatures(FeatureExtractor):
    kind = "eda"
    channels = ("eda_level", "eda_scr_rate")
    min_seconds: ClassVar[float] = 30.0
    chunk_s: ClassVar[float] = 1800.0
    overlap_s: ClassVar[float] = 120.0

    def features(self, sig, index: MinuteIndex) -> Features:
        x, ok = finite_samples(sig)
        x = convert(x.ravel(), sig.unit, "uS")
        n = index.n_minutes
        support = np.bincount(index.minute[ok], minlength=n)
        fs = float(sig.sample_rate_hz)
        if ok.sum() < self.min_seconds * fs:
            level, _ = minute_mean(x, index.minute, n)
            return Features({"eda_level": level, "eda_scr_rate": np.full(n, np.nan)}, support,
                            withheld={"eda_scr_rate": {"too_short": np.ones(n, bool)}})
        t = np.arange(x.size) / fs
        t8, x8, fs8 = on_grid(fill_gaps(x, ok), t, fs)
        (tonic8,), scr = run_chunked(lambda seg: _decompose(seg, fs8), x8, fs8, self.chunk_s, self.overlap_s)
        tonic = np.interp(t, t8, tonic8)
        tonic[~ok] = np.nan
        level, _ = minute_mean(tonic, index.minute, n)
        count = np.bincount(index.of_times(t8[np.unique(scr)]), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):   # share of the minute's samples that exist
            rate = count / np.minimum(support / max(np.floor(fs * 60.0), 1.0), 1.0)
        return Features({"eda_level": level, "eda_scr_rate": rate}, support)


def on_grid(x: np.ndarray, t: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(grid times, values, grid rate) of ``x`` on the ~``EDA_RATE_HZ`` grid (see the module docstring)."""
    if fs <= EDA_RATE_HZ:
        t8 = np.arange(int(t[-1] * EDA_RATE_HZ) + 1) / EDA_RATE_HZ
        return t8, np.interp(t8, t, x), EDA_RATE_HZ
    ratio = Fraction(EDA_RATE_HZ / fs).limit_denominator(1000)
    from scipy.signal import resample_poly   # on first use: registering the extractors stays light

    x8 = resample_poly(x, ratio.numerator, ratio.denominator, padtype="line")  # no ramp to 0 at the ends
    fs8 = fs * ratio.numerator / ratio.denominator
    return np.arange(x8.size) / fs8, x8, fs8


def _decompose(seg: np.ndarray, fs: float) -> tuple[tuple[np.ndarray], np.ndarray]:
    """(tonic component,), SCR peak indices of one chunk; NaN tonic and no peaks if the filters overflow."""
    import neurokit2 as nk

    c = cleaned(nk.signal_filter, seg, fs, highcut=CLEAN_LOWPASS_HZ, method="butterworth", order=4)
    if c is None:
        return (np.full(seg.size, np.nan),), np.zeros(0, np.int64)
    parts = nk.eda_phasic(c, sampling_rate=fs, method="smoothmedian", smoothing_factor=MEDIAN_WINDOW_S)
    return (parts["EDA_Tonic"].to_numpy(),), scr_peaks(parts["EDA_Phasic"].to_numpy())


def scr_peaks(phasic: np.ndarray) -> np.ndarray:
    """``nk.signal_findpeaks(phasic, height_min=SCR_MIN_AMPLITUDE_US)["Peaks"]``, computed directly.

    NeuroKit2's function is ``scipy.signal.find_peaks`` plus a filter on
    ``peak_prominences`` (its "Height"), then an onset/offset search that is a
    pandas loop per peak (slow on hours of EDA) whose result is not needed
    here; scipy's ``prominence`` argument is that same filter (both keep
    prominence >= the threshold; tests/processing/test_raw_features_eda.py
    checks the equality).
    """
    from scipy.signal import find_peaks

    return find_peaks(phasic, prominence=SCR_MIN_AMPLITUDE_US)[0].astype(np.int64)
