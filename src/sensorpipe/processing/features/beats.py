"""Beat (or breath) times -> per-minute rate and time-domain HRV, vectorized over the whole signal.

Rate: the instantaneous rate of each interval between successive events is
``60 / interval``; intervals outside a plausible range (0.3-2.0 s for beats,
200-30 bpm) are a missed or spurious event and are rejected; a minute is the
*median* of the rates of its intervals (an interval belongs to the minute of
the event that ends it), so one missed beat cannot drag the minute down.

HRV (Task Force of the ESC/NASPE 1996; the same formulas as NeuroKit2's
``hrv_time`` and pyhrv): on the normal-to-normal (NN) intervals of a window,
``RMSSD = sqrt(mean(diff(NN)^2))`` and ``SDNN = std(NN, ddof=1)``, in ms.
An interval is NN when it is in range and within 25 % of the median of the
11 in-range intervals centred on it: Kubios' threshold-based artefact
correction at its "medium" level (0.25 s at 60 bpm, scaled with the
heart rate), rejecting instead of interpolating. A missed beat (+100 %) or
a split one (about -50 %) is far outside; healthy sinus arrhythmia mostly
inside (3 % of pyhrv's irregular sample NN series is rejected, against 7 %
with the classic 20 % rule). A successive difference needs both of its
intervals NN. Windows are the minute itself (at least as many NN intervals
as the heart rate needs beats), and the trailing 5 minutes ending at each
minute (the standard short-term length; NN intervals lasting at least 4 of
the 5 minutes); only NN intervals and differences wholly
inside the window count, exactly as if the window's NN series were given to
``nk.hrv_time`` (tests/processing/test_feature_references.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorpipe.processing.features.base import MinuteIndex, minute_median

#: accepted beat-to-beat intervals (s): 200-30 bpm
BEAT_INTERVAL_S = (0.3, 2.0)
#: accepted breath-to-breath intervals (s): 60-4 breaths/min, the respiratory_rate channel's valid range
BREATH_INTERVAL_S = (1.0, 15.0)
#: an in-range interval further than this fraction from its local median is not NN
NN_MAX_DEVIATION = 0.25
#: intervals in that local median
NN_MEDIAN_INTERVALS = 11


def interval_rate_minutes(event_s: np.ndarray, sample_rate_hz: float, minute: np.ndarray, n_minutes: int,
                          interval_s: tuple[float, float], min_count: int) -> np.ndarray:
    """Per-minute median of the instantaneous rates (events/min) of successive events.

    ``event_s`` are beat or breath times in seconds from the signal's first
    sample, increasing. Each interval outside ``interval_s`` is rejected; an
    accepted interval's rate ``60 / interval`` belongs to the minute of the
    event that ends it, looked up through the sample-to-minute index
    ``minute``. Minutes with fewer than ``min_count`` accepted intervals are NaN.
    """
    if event_s.size < 2:
        return np.full(n_minutes, np.nan)
    ibi_s = np.diff(event_s)
    ok = (ibi_s >= interval_s[0]) & (ibi_s <= interval_s[1])
    src_index = np.minimum((event_s[1:][ok] * sample_rate_hz).astype(np.int64), minute.size - 1)
    return minute_median(60.0 / ibi_s[ok], minute[src_index], n_minutes, min_count)


@dataclass(frozen=True)
class Intervals:
    """Every interval between successive events, its minute, and whether it is in range / NN."""

    ibi_ms: np.ndarray
    minute: np.ndarray
    in_range: np.ndarray
    nn: np.ndarray

    @classmethod
    def of(cls, event_s: np.ndarray, index: MinuteIndex,
           interval_s: tuple[float, float] = BEAT_INTERVAL_S) -> Intervals:
        ibi_s = np.diff(np.asarray(event_s, np.float64))
        in_range = (ibi_s >= interval_s[0]) & (ibi_s <= interval_s[1])
        nn = in_range.copy()
        if in_range.any():
            from scipy.ndimage import median_filter   # on first use: registering the extractors stays light

            local = median_filter(ibi_s[in_range], size=NN_MEDIAN_INTERVALS, mode="nearest")
            nn[in_range] = np.abs(ibi_s[in_range] - local) <= NN_MAX_DEVIATION * local
        minute = index.of_times(event_s[1:]) if ibi_s.size else np.zeros(0, np.int64)
        return cls(ibi_s * 1000.0, minute, in_range, nn)

    def rate_minutes(self, n_minutes: int, min_count: int) -> np.ndarray:
        """Median instantaneous rate (per min) of the in-range intervals of each minute."""
        return minute_median(60_000.0 / self.ibi_ms[self.in_range], self.minute[self.in_range], n_minutes,
                             min_count)


def _window_sum(per_minute: np.ndarray, window_min: int) -> np.ndarray:
    """Sum over the trailing ``window_min`` minutes ending at each minute."""
    if window_min == 1:
        return per_minute
    return np.convolve(per_minute, np.ones(window_min))[: per_minute.size]


def hrv_minutes(ibi_ms: np.ndarray, nn: np.ndarray, minute: np.ndarray, n_minutes: int, window_min: int = 1,
                min_nn: int = 10, min_nn_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(RMSSD, SDNN) in ms of the NN intervals in the trailing ``window_min`` minutes ending at each minute.

    ``ibi_ms`` are successive intervals in order, ``nn`` marks the accepted
    ones and ``minute`` is each interval's minute (non-decreasing). A window
    needs ``min_nn`` NN intervals lasting ``min_nn_s`` seconds in all for
    SDNN, and ``min_nn - 1`` successive differences besides for RMSSD;
    otherwise NaN.
    """
    nan = np.full(n_minutes, np.nan)
    if not nn.any():
        return nan, nan.copy()
    x = ibi_ms - np.median(ibi_ms[nn])          # centred: the variance from sums keeps its precision
    m = minute[nn]
    cnt = _window_sum(np.bincount(m, minlength=n_minutes).astype(np.float64), window_min)
    dur_s = _window_sum(np.bincount(m, weights=ibi_ms[nn], minlength=n_minutes), window_min) / 1000.0
    s1 = _window_sum(np.bincount(m, weights=x[nn], minlength=n_minutes), window_min)
    s2 = _window_sum(np.bincount(m, weights=x[nn] ** 2, minlength=n_minutes), window_min)
    pair = nn[1:] & nn[:-1]
    d2 = np.diff(ibi_ms)[pair] ** 2
    m1, m2 = minute[:-1][pair], minute[1:][pair]
    inside = m1 == m2                           # both intervals in the same minute: in every window holding it
    d_sum = _window_sum(np.bincount(m2[inside], weights=d2[inside], minlength=n_minutes), window_min)
    d_cnt = _window_sum(np.bincount(m2[inside], minlength=n_minutes).astype(np.float64), window_min)
    if window_min > 1:                          # pairs straddling minutes m2-1 | m2: windows holding both
        cross = m2 - m1 == 1                    # (successive events are at most one minute apart)
        bs = np.bincount(m2[cross], weights=d2[cross], minlength=n_minutes)
        bc = np.bincount(m2[cross], minlength=n_minutes).astype(np.float64)
        d_sum = d_sum + _window_sum(bs, window_min - 1)
        d_cnt = d_cnt + _window_sum(bc, window_min - 1)
    enough = (cnt >= max(min_nn, 2)) & (dur_s >= min_nn_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmssd = np.where(enough & (d_cnt >= max(min_nn - 1, 1)), np.sqrt(d_sum / d_cnt), np.nan)
        var = (s2 - s1 * s1 / cnt) / (cnt - 1)
        sdnn = np.where(enough, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return rmssd, sdnn


#: the HRV channels a beat detector feeds, besides heart_rate
HRV_CHANNELS = ("hrv_rmssd", "hrv_sdnn", "hrv_rmssd_5min", "hrv_sdnn_5min")


#: a 5-minute HRV window needs NN intervals lasting this long (4 of its 5 minutes)
HRV_5MIN_MIN_NN_S = 240.0


def heart_features(event_s: np.ndarray, index: MinuteIndex, min_beats: int,
                   hrv_minute_ok: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """heart_rate and the HRV channels of each minute from beat times (s since the first sample).

    A minute's HRV needs ``min_beats`` NN intervals (as its heart rate
    needs ``min_beats`` in-range ones); a 5-minute window needs NN intervals
    lasting ``HRV_5MIN_MIN_NN_S`` seconds, so it is never computed from a
    much shorter stretch (SDNN grows with the length of the record).
    ``hrv_minute_ok`` (per minute) excludes the NN intervals of the other
    minutes from every HRV window (e.g. minutes of poor PPG quality).
    """
    n = index.n_minutes
    iv = Intervals.of(event_s, index)
    nn = iv.nn if hrv_minute_ok is None or not iv.nn.size else iv.nn & hrv_minute_ok[iv.minute]
    r1, s1 = hrv_minutes(iv.ibi_ms, nn, iv.minute, n, 1, min_beats)
    r5, s5 = hrv_minutes(iv.ibi_ms, nn, iv.minute, n, 5, min_beats, HRV_5MIN_MIN_NN_S)
    return {"heart_rate": iv.rate_minutes(n, min_beats), "hrv_rmssd": r1, "hrv_sdnn": s1,
            "hrv_rmssd_5min": r5, "hrv_sdnn_5min": s5}
