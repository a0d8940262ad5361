"""Accelerometer (any rate; g, m/s^2 or 1/64 g) -> ENMO, MAD, steps, activity intensity and zero-crossing rate.

All from the vector magnitude ``r = |(x, y, z)|`` in mg, per minute:

* ``enmo`` (mg): mean of ``max(r - 1000 mg, 0)`` (van Hees et al. 2013).
* ``acc_mad`` (mg): mean amplitude deviation, ``mean(|r - mean_epoch(r)|)``
  over the 5-s epochs of the minute (Vaha-Ypya et al. 2015; GGIR's MAD with
  5-s epochs), i.e. every sample's deviation from its own epoch's mean.
* ``activity_intensity`` (0-3): the minute's ENMO against GGIR's default
  cut-points ``threshold.lig/mod/vig = 40/100/400 mg`` (rounded from the
  wrist ENMO cut-points of Hildebrand et al. 2014, 2017): 0 sedentary below
  40, 1 light, 2 moderate from 100, 3 vigorous from 400 mg.
* ``steps`` (steps/min): peak counting on the gravity-removed magnitude as
  in OxWearables' ``stepcount`` (``V = |a| - 1 g`` clipped to +/-2 g,
  filtered, ``scipy.signal.find_peaks`` with a minimum distance and
  prominence, one peak per step). stepcount counts only inside windows its
  trained walk detector accepts; here a rule stands in for it, in the
  spirit of Verisense's continuity check (Gu et al. 2017): a peak is a step
  only inside a run of at least ``STEP_MIN_RUN`` peaks whose successive
  intervals all lie in ``STEP_INTERVAL_S`` (50-240 steps/min). Thresholds:
  0.5-3 Hz band-pass (4th-order Butterworth, zero phase: cadences of
  30-180 steps/min, the 2nd harmonic of the arm swing attenuated), peaks at
  least 0.25 s apart with a prominence of at least 0.1 g. An estimate
  (tested on a synthetic 1.8 Hz walk: within 5 %), not a validated
  pedometer. Above 50 Hz the magnitude is first averaged in blocks down to
  at most 50 Hz; below ``MIN_STEP_RATE_HZ`` there is no band to filter, so
  steps and the zero-crossing rate are withheld (``rate_below_10hz``).
* ``acc_zcr`` (Hz): zero crossings per second of that band-passed magnitude,
  counting a crossing only when the signal passes from above +25 mg to
  below -25 mg or back (a dead band, so sensor noise and 1/64-g
  quantisation at rest do not count).
"""

from __future__ import annotations

import numpy as np

from sensorpipe.processing.features.base import (
    FeatureExtractor,
    Features,
    MinuteIndex,
    fill_gaps,
    finite_samples,
    minute_mean,
)
from sensorpipe.units import convert

ENMO_CUTPOINTS_MG = (40.0, 100.0, 400.0)
EPOCH_NS = 5_000_000_000
STEP_BAND_HZ = (0.5, 3.0)
STEP_MIN_DISTANCE_S = 0.25
STEP_MIN_PROMINENCE_G = 0.1
STEP_INTERVAL_S = (0.25, 1.2)
STEP_MIN_RUN = 4
ZCR_DEADBAND_G = 0.025
MIN_STEP_RATE_HZ = 10.0
MAX_STEP_RATE_HZ = 50.0


class AccelerometerFeatures(FeatureExtractor):
    kind = "acc"
    channels = ("enmo", "acc_mad", "steps", "activity_intensity", "acc_zcr")

    def features(self, sig, index: MinuteIndex) -> Features:
        x, ok = finite_samples(sig)
        x = x.reshape(x.shape[0], -1)
        n = index.n_minutes
        support = np.bincount(index.minute[ok], minlength=n)
        r = np.full(x.shape[0], np.nan)
        r[ok] = np.sqrt((convert(x[ok], sig.unit, "mg") ** 2).sum(axis=1))
        enmo, _ = minute_mean(np.maximum(r - 1000.0, 0.0), index.minute, n)
        epoch = index.offset_ns // EPOCH_NS
        e_mean, _ = minute_mean(r, epoch, int(epoch[-1]) + 1 if epoch.size else 0)
        mad, _ = minute_mean(np.abs(r - e_mean[epoch]), index.minute, n)
        intensity = np.where(np.isfinite(enmo), np.searchsorted(ENMO_CUTPOINTS_MG, enmo, side="right"), np.nan)
        values = {"enmo": enmo, "acc_mad": mad, "activity_intensity": intensity.astype(np.float64)}
        fs = float(sig.sample_rate_hz)
        if fs < MIN_STEP_RATE_HZ or ok.sum() < 2:
            nan = np.full(n, np.nan)
            values.update(steps=nan, acc_zcr=nan.copy())
            allm = np.ones(n, bool)
            return Features(values, support, withheld={"steps": {"rate_below_10hz": allm},
                                                       "acc_zcr": {"rate_below_10hz": allm}})
        v, fs_d, k = _band_passed_magnitude(fill_gaps(r, ok), fs)
        steps = step_times(v, fs_d)
        values["steps"] = np.bincount(index.of_times(steps), minlength=n).astype(np.float64)
        crossing = zero_crossings(v) * k / fs          # seconds since the first sample
        seconds = support / fs
        with np.errstate(invalid="ignore", divide="ignore"):
            values["acc_zcr"] = np.bincount(index.of_times(crossing), minlength=n) / seconds
        return Features(values, support)


def _band_passed_magnitude(r_mg: np.ndarray, fs: float) -> tuple[np.ndarray, float, int]:
    """(``|a| - 1 g`` in g, clipped to +/-2 g, block-averaged to <= 50 Hz and band-passed; its rate; block size)."""
    v = np.clip(r_mg / 1000.0 - 1.0, -2.0, 2.0)
    k = int(np.ceil(fs / MAX_STEP_RATE_HZ))
    if k > 1:
        m = v.size // k
        v = v[: m * k].reshape(m, k).mean(axis=1)
    fs_d = fs / k
    from scipy.signal import butter, sosfiltfilt   # on first use: registering the extractors stays light

    sos = butter(4, STEP_BAND_HZ, btype="bandpass", fs=fs_d, output="sos")
    try:
        return sosfiltfilt(sos, v), fs_d, k
    except ValueError:  # shorter than the filter's edge padding (a few seconds): nothing to count
        return np.zeros(v.size), fs_d, k


def step_times(v: np.ndarray, fs: float) -> np.ndarray:
    """Times (s) of the peaks of ``v`` that count as steps: prominent, and in a regular run (see module doc)."""
    from scipy.signal import find_peaks

    pk, _ = find_peaks(v, distance=max(int(STEP_MIN_DISTANCE_S * fs), 1), prominence=STEP_MIN_PROMINENCE_G)
    if pk.size < STEP_MIN_RUN:
        return np.zeros(0)
    t = pk / fs
    d = np.diff(t)
    good = ((d >= STEP_INTERVAL_S[0]) & (d <= STEP_INTERVAL_S[1])).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.r_[0, good, 0]))
    start, end = edges[::2], edges[1::2]            # runs of good intervals [start, end): peaks start..end
    long = end - start + 1 >= STEP_MIN_RUN
    mark = np.bincount(start[long], minlength=t.size + 1) - np.bincount(end[long] + 1, minlength=t.size + 1)
    return t[np.cumsum(mark)[: t.size] > 0]


def zero_crossings(v: np.ndarray) -> np.ndarray:
    """Sample indices where ``v`` crosses from beyond one side of the dead band to beyond the other."""
    beyond = np.flatnonzero(np.abs(v) > ZCR_DEADBAND_G)
    if beyond.size < 2:
        return np.zeros(0, np.int64)
    pos = v[beyond] > 0
    return beyond[1:][pos[1:] != pos[:-1]]
