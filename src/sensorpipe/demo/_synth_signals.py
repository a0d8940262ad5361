"""Signal models behind the synthetic demo sources (:mod:`sensorpipe.demo.synthetic`).

A participant's recording is a UTC minute grid plus *behaviour* scheduled on the
participant's LOCAL wall clock (nightly sleep ~22:30-07:00, daytime walks and
runs, off-wrist gaps), converted to UTC with the IANA zone so that behaviour
stays put in local time across DST changes. Physiology (heart rate, calories,
sleep stages, SpO2, skin temperature, HRV, respiration, glucose) and the
Empatica E4 waveforms are derived from that behaviour with whole-array numpy
operations and first-order IIR filters; the only Python loops run per night,
per walk or per participant. All randomness comes from the ``Generator``
passed in, so a seed fixes every value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def lfilter(*args, **kwargs):
    """``scipy.signal.lfilter``, imported on first use: importing the demo sources (for their config, as the
    benchmark does) does not load scipy.signal (half a second); generating signals, or a run, does."""
    from scipy.signal import lfilter as f

    return f(*args, **kwargs)


def lfilter_zi(*args, **kwargs):
    from scipy.signal import lfilter_zi as f

    return f(*args, **kwargs)


DAY = 86_400
STAGE_WAKE, STAGE_LIGHT, STAGE_DEEP, STAGE_REM = 0, 1, 2, 3


# --- small helpers ---------------------------------------------------------
def local_to_utc(local_s, tz: str) -> np.ndarray:
    """Naive local wall-clock epoch seconds -> UTC epoch seconds (skipped DST times shift forward)."""
    import pandas as pd

    idx = pd.DatetimeIndex(np.asarray(local_s, np.int64).astype("datetime64[s]"))
    aware = idx.tz_localize(tz, nonexistent="shift_forward", ambiguous=np.zeros(len(idx), bool))
    return aware.tz_convert("UTC").tz_localize(None).values.astype("datetime64[s]").astype(np.int64)


def utc_to_local(utc_s, tz: str) -> np.ndarray:
    """UTC epoch seconds -> naive local wall-clock epoch seconds in ``tz``."""
    import pandas as pd

    idx = pd.DatetimeIndex(np.asarray(utc_s, np.int64).astype("datetime64[s]")).tz_localize("UTC")
    return idx.tz_convert(tz).tz_localize(None).values.astype("datetime64[s]").astype(np.int64)


def ar1(rng: np.random.Generator, n: int, sd: float, phi: float) -> np.ndarray:
    """AR(1) noise with stationary standard deviation ``sd``."""
    return lfilter([1.0], [1.0, -phi], rng.normal(0.0, sd * np.sqrt(1.0 - phi * phi), n))


def lag(x: np.ndarray, tau: float) -> np.ndarray:
    """First-order low-pass (unit DC gain), time constant ``tau`` in samples."""
    x = np.asarray(x, np.float64)
    a = 1.0 - np.exp(-1.0 / tau)
    b, den = [a], [1.0, a - 1.0]
    return lfilter(b, den, x, zi=lfilter_zi(b, den) * (x[0] if x.size else 0.0))[0]


def in_intervals(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of ``t`` inside any ``[start, end)``; intervals may overlap."""
    opened = np.searchsorted(np.sort(starts), t, side="right")
    closed = np.searchsorted(np.sort(ends), t, side="right")
    return opened > closed


def interval_index(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the (sorted, disjoint) interval holding each ``t``, -1 outside all."""
    i = np.searchsorted(starts, t, side="right") - 1
    ok = (i >= 0) & (t < ends[np.clip(i, 0, None)] if len(ends) else False)
    return np.where(ok, i, -1)


def to_minute(s: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(s, np.float64) / 60.0) * 60).astype(np.int64)


# --- participant profile -----------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """Per-participant constants of the signal models."""

    tz: str
    rest_hr: float  # bpm
    fitness: float  # exercise heart-rate gain multiplier
    bmr: float  # kcal/min
    run_share: float  # share of bouts that are runs
    hrv_ms: float  # nightly RMSSD level
    spo2: float  # %
    temp_f: float  # sleeping wrist skin temperature, degF
    resp: float  # sleeping breaths/min
    eda_us: float  # skin conductance level, uS
    ill_hr: float  # resting-HR rise after symptom onset, bpm
    ill_resp: float  # respiratory-rate rise after symptom onset


def draw_profile(rng: np.random.Generator, tz: str) -> Profile:
    u = rng.random(11)
    return Profile(tz=tz, rest_hr=55 + 15 * u[0], fitness=0.8 + 0.4 * u[1], bmr=1.0 + 0.3 * u[2],
                   run_share=0.05 + 0.3 * u[3], hrv_ms=25 + 45 * u[4], spo2=95.5 + 1.5 * u[5],
                   temp_f=92.4 + 1.2 * u[6], resp=13.0 + 3.0 * u[7], eda_us=1.0 + 5.0 * u[8],
                   ill_hr=3 + 5 * u[9], ill_resp=1 + 2 * u[10])


# --- behaviour on the local clock --------------------------------------------
@dataclass
class Timeline:
    """One participant's minute grid with behaviour and minute-level physiology."""

    profile: Profile
    start_local: int  # naive local epoch s of local midnight, day 0
    days: int
    t: np.ndarray  # minute starts, UTC epoch s
    local: np.ndarray  # the same minutes on the local wall clock (naive epoch s)
    nights: np.ndarray  # (n, 2) main-sleep [onset, wake) in UTC s, whole minutes, may exceed the grid
    gaps: np.ndarray  # (n, 2) off-wrist [start, end) in UTC s
    asleep: np.ndarray
    worn: np.ndarray
    stage_t: np.ndarray  # 30-s sleep epochs (UTC s) inside the grid
    stage: np.ndarray  # their stage codes
    minute_stage: np.ndarray  # stage at each minute, -1 awake
    night_of: np.ndarray  # night index of each minute, -1 awake
    steps: np.ndarray  # steps/min (0 asleep); defined even off-wrist
    intensity: np.ndarray  # 0 (rest) .. ~1.4 (running)
    illness: np.ndarray  # 0..1 ramp after symptom onset
    hr: np.ndarray  # minute-mean heart rate, bpm
    kcal: np.ndarray  # kcal/min
    bouts: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))  # walks/runs: start, end, is_run

    @property
    def day_starts(self) -> np.ndarray:
        """UTC s of each local midnight, day 0 .. days-1."""
        return local_to_utc(self.start_local + DAY * np.arange(self.days), self.profile.tz)


def build_timeline(rng: np.random.Generator, profile: Profile, start_date: str, days: int,
                   onset_day: int | None = None) -> Timeline:
    """Behaviour and minute-level physiology for ``days`` local days from ``start_date``."""
    tz = profile.tz
    start_local = int(np.datetime64(start_date, "D").astype("datetime64[s]").astype(np.int64))
    t0, t1 = local_to_utc([start_local, start_local + days * DAY], tz)
    t = np.arange(t0, t1, 60, dtype=np.int64)
    local = utc_to_local(t, tz)
    nights = _draw_nights(rng, start_local, days, tz)
    stage_t, stage = _all_stages(rng, nights, t0, t1)
    gaps = _draw_gaps(rng, start_local, days, tz)
    night_of = interval_index(t, nights[:, 0], nights[:, 1])
    asleep = night_of >= 0
    minute_stage = _minute_stage(t, asleep, stage_t, stage)
    illness = np.zeros(t.size) if onset_day is None else np.clip((local - start_local - onset_day * DAY) / DAY, 0, 1)
    steps, bouts = _steps(rng, profile, t, local, start_local, days, asleep, onset_day)
    intensity = steps / 115.0
    tl = Timeline(profile, start_local, days, t, local, nights, gaps, asleep, ~in_intervals(t, gaps[:, 0], gaps[:, 1]),
                  stage_t, stage, minute_stage, night_of, steps, intensity, illness, np.empty(0), np.empty(0))
    tl.bouts = bouts
    tl.hr = _minute_hr(rng, tl)
    tl.kcal = _minute_kcal(rng, tl)
    return tl


def _minute_stage(t, asleep, stage_t, stage) -> np.ndarray:
    out = np.full(t.size, -1, np.int64)
    if stage_t.size:
        pos = np.searchsorted(stage_t, t).clip(0, stage_t.size - 1)
        hit = asleep & (stage_t[pos] == t)
        out[hit] = stage[pos[hit]]
    out[asleep & (out < 0)] = STAGE_LIGHT
    return out


def _weekend_nights(start_local: int, k: np.ndarray) -> np.ndarray:
    dow = (start_local // DAY + k + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return (dow == 4) | (dow == 5)  # Friday and Saturday nights


def _draw_nights(rng, start_local: int, days: int, tz: str) -> np.ndarray:
    k = np.arange(-1, days)
    late = _weekend_nights(start_local, k)
    onset = start_local + k * DAY + 22.5 * 3600 + late * 2400 + np.clip(rng.normal(0, 900, k.size), -2700, 2700)
    wake = start_local + (k + 1) * DAY + 7 * 3600 + late * 3600 + np.clip(rng.normal(0, 1200, k.size), -3600, 3600)
    return np.column_stack([local_to_utc(to_minute(onset), tz), local_to_utc(to_minute(wake), tz)])


def _draw_gaps(rng, start_local: int, days: int, tz: str) -> np.ndarray:
    n = max(1, int(rng.poisson(2.5 * days / 7)))
    start = start_local + rng.integers(0, days, n) * DAY + rng.uniform(8 * 3600, 20 * 3600, n)
    dur = 60 * np.exp(rng.uniform(np.log(35), np.log(240), n))
    start = local_to_utc(to_minute(start), tz)
    return np.column_stack([start, start + to_minute(dur)])


def _night_stages(rng, onset: int, wake: int) -> tuple[np.ndarray, np.ndarray]:
    """30-s hypnogram of one night: ~90-min cycles, deep early, REM late, brief wakes."""
    ep = np.arange(onset, wake, 30, dtype=np.int64)
    n = ep.size
    tau = (ep - onset) / 60.0
    cyc_len = np.clip(rng.normal(92, 10, 16), 75, 115)
    cyc_end = np.cumsum(cyc_len)
    k = np.minimum(np.searchsorted(cyc_end, tau, side="right"), 15)
    pos = (tau - (cyc_end[k] - cyc_len[k])) / cyc_len[k] + 0.04 * ar1(rng, n, 1.0, 0.9)
    deep = np.clip(0.42 - 0.11 * np.arange(16) + rng.normal(0, 0.04, 16), 0, 0.45)[k]
    rem = np.clip(0.08 + 0.07 * np.arange(16) + rng.normal(0, 0.03, 16), 0.03, 0.5)[k]
    stage = np.full(n, STAGE_LIGHT)
    stage[(pos >= 0.15) & (pos < 0.15 + deep)] = STAGE_DEEP
    stage[pos >= 1 - rem] = STAGE_REM
    n_wakes = rng.poisson(1.3 * n / 120)
    w_start = (rng.random(n_wakes) ** 0.7 * n).astype(np.int64)
    marks = np.zeros(n + 1)
    np.add.at(marks, w_start, 1)
    np.add.at(marks, np.minimum(w_start + 1 + rng.geometric(0.35, n_wakes), n), -1)
    stage[np.cumsum(marks[:n]) > 0] = STAGE_WAKE
    stage[: rng.integers(2, 24)] = STAGE_WAKE  # sleep latency
    stage[n - rng.integers(1, 5):] = STAGE_WAKE  # awake before getting up
    return ep, stage


def _all_stages(rng, nights: np.ndarray, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [_night_stages(rng, int(a), int(b)) for a, b in nights]  # one loop per night
    ep = np.concatenate([p[0] for p in parts])
    st = np.concatenate([p[1] for p in parts]).astype(np.float64)
    keep = (ep >= t0) & (ep < t1)
    return ep[keep], st[keep]


def _steps(rng, prof: Profile, t, local, start_local: int, days: int, asleep, onset_day) -> tuple[np.ndarray, np.ndarray]:
    """Steps/min: walks (~112/min) and runs (~160/min) of 10-60 min, sporadic steps while awake; and the bouts.

    The bouts ``(n, 3)`` are ``[start, end)`` UTC s and 1 for a run (0 a walk),
    as scheduled (sleep and off-wrist time are not cut out here).
    """
    counts = 1 + rng.poisson(1.3, days)
    if onset_day is not None:
        sick = np.arange(days) >= onset_day
        counts[sick] = rng.binomial(counts[sick], 0.35)
    day = np.repeat(np.arange(days), counts)
    n = day.size
    hour = np.where(rng.random(n) < 0.85, rng.uniform(7.5, 21.0, n), rng.uniform(6.0, 23.0, n))
    run = rng.random(n) < prof.run_share
    dur = np.where(run, rng.uniform(15, 50, n), 10 + 50 * rng.random(n) ** 1.5) * 60
    cadence = np.where(run, rng.normal(160, 6, n), rng.normal(112, 6, n))
    start = local_to_utc(to_minute(start_local + day * DAY + hour * 3600), prof.tz)
    order = np.argsort(start, kind="stable")
    start, dur, cadence = start[order], dur[order], cadence[order]
    end = np.minimum(start + to_minute(dur), np.append(start[1:], np.iinfo(np.int64).max))
    bout = interval_index(t, start, end)
    hod = (local % DAY) / 3600.0
    moving = rng.random(t.size) < 0.08 + 0.2 * np.exp(-(((hod - 13) / 5) ** 2))
    sporadic = np.where(moving, rng.poisson(rng.uniform(4, 30, t.size)), 0)
    walk = np.where(bout >= 0, cadence[bout.clip(0)] * rng.normal(1, 0.05, t.size), sporadic)
    return np.where(asleep, 0.0, np.round(walk).clip(0)), np.column_stack([start, end, run[order]]).astype(np.int64)


def _minute_hr(rng, tl: Timeline) -> np.ndarray:
    """Circadian level, night dip by sleep stage, lagged exercise response, illness, noise."""
    p = tl.profile
    hod = (tl.local % DAY) / 3600.0
    awake = p.rest_hr + 9 + 3 * np.cos(2 * np.pi * (hod - 16) / 24)
    i = tl.night_of.clip(0)
    frac = (tl.t - tl.nights[i, 0]) / (tl.nights[i, 1] - tl.nights[i, 0])
    stage_off = np.array([6.0, 0.0, -2.0, 3.0])[tl.minute_stage.clip(0)]
    sleep = p.rest_hr - 2 - 5 * np.sin(np.pi * frac) + stage_off
    level = lag(np.where(tl.asleep, sleep, awake), 5)
    x = tl.intensity
    exercise = 22 * p.fitness * lag(x + 0.8 * x * x, 1.5) + 6 * lag(x, 12)
    hr = level + exercise + p.ill_hr * tl.illness + ar1(rng, tl.t.size, 2.5, 0.9)
    return hr.clip(38, 200)


def _minute_kcal(rng, tl: Timeline) -> np.ndarray:
    s = np.where(tl.worn, tl.steps, 0.0)  # off-wrist: the device estimates BMR only
    base = tl.profile.bmr * np.where(tl.asleep, 0.92, 1.0)
    return np.round(base + 0.022 * s * (1 + s / 120) + np.abs(rng.normal(0, 0.03, s.size)), 3)


# --- derived streams (native rates) ----------------------------------------
def hr_5s(rng, tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Heart rate every 5 s while worn, integer bpm, with a few dropped samples."""
    t5 = np.arange(tl.t[0], tl.t[-1] + 60, 5, dtype=np.int64)
    m = (t5 - tl.t[0]) // 60
    hr = np.interp(t5, tl.t + 30, tl.hr) + ar1(rng, t5.size, 1.2, 0.8)
    keep = tl.worn[m] & (rng.random(t5.size) >= 0.015 + 0.06 * (tl.intensity[m] > 0.5))
    return t5[keep], np.round(hr[keep]).clip(38, 200)


def sleep_minutes(rng, tl: Timeline, level: float, sd: float, phi: float, stage_off) -> np.ndarray:
    """A per-minute sleep-time series: level + stage offsets + AR(1) noise (full grid)."""
    return level + np.asarray(stage_off, np.float64)[tl.minute_stage.clip(0)] + ar1(rng, tl.t.size, sd, phi)


def hrv_rmssd(rng, tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    sel = tl.asleep & tl.worn & (tl.t % 300 == 0)
    night = rng.lognormal(0, 0.12, len(tl.nights))[tl.night_of.clip(0)]
    factor = np.array([0.7, 1.0, 1.25, 0.85])[tl.minute_stage.clip(0)]
    v = tl.profile.hrv_ms * night * factor * rng.lognormal(0, 0.18, tl.t.size)
    return tl.t[sel], np.round(v[sel], 1)


def spo2(rng, tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    sel = tl.asleep & tl.worn
    dips = lfilter([1.0], [1.0, -0.6], (rng.random(tl.t.size) < 0.01) * rng.uniform(2, 4, tl.t.size))
    v = tl.profile.spo2 + ar1(rng, tl.t.size, 0.6, 0.95) - dips
    return tl.t[sel], np.round(v[sel].clip(92, 99), 1)


def skin_temp_f(rng, tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    sel = tl.asleep & tl.worn
    i = tl.night_of.clip(0)
    since = (tl.t - tl.nights[i, 0]) / 60.0
    v = (tl.profile.temp_f + rng.normal(0, 0.25, len(tl.nights))[i] + 0.9 * (1 - np.exp(-since / 50))
         + ar1(rng, tl.t.size, 0.12, 0.97))
    return tl.t[sel], np.round(v[sel].clip(91, 95), 2)


def respiratory_rate(rng, tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    sel = tl.asleep & tl.worn
    v = sleep_minutes(rng, tl, tl.profile.resp, 0.5, 0.9, [1.0, 0.0, -0.6, 0.5]).clip(12, 18)
    v = v + tl.profile.ill_resp * tl.illness
    return tl.t[sel], np.round(v[sel], 1)


def resting_hr(rng, tl: Timeline, onset_day: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One value per local day, stamped at local midnight."""
    k = np.arange(tl.days)
    ill = 0.0 if onset_day is None else np.clip(k + 0.5 - onset_day, 0, 1)
    return tl.day_starts, np.round(tl.profile.rest_hr + rng.normal(0, 1.0, k.size) + tl.profile.ill_hr * ill)


def eda_scans(rng, tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """2-3 three-minute 1-Hz skin-conductance scans per day while awake and worn."""
    day = np.repeat(np.arange(tl.days), 2 + rng.integers(0, 2, tl.days))
    local = tl.start_local + day * DAY + np.round(rng.uniform(9 * 3600, 21 * 3600, day.size))
    start = local_to_utc(local, tl.profile.tz)
    m = ((start - tl.t[0]) // 60).clip(0, tl.t.size - 1)
    start = start[tl.worn[m] & ~tl.asleep[m]]
    secs = np.arange(180)
    level = tl.profile.eda_us * rng.lognormal(0, 0.35, start.size)[:, None]
    drift = rng.normal(0, 0.2, start.size)[:, None] * secs / 180
    v = level + drift + ar1(rng, start.size * 180, 0.02, 0.9).reshape(-1, 180)
    return (start[:, None] + secs).ravel(), np.round(v.ravel().clip(0.05), 3)


# --- glucose (CGM) ------------------------------------------------------------
GLUCOSE = {  # status: (fasting mg/dL range, mg/dL per g carbs, peak min, dawn, exercise drop, drift sd, noise sd)
    "none": ((85, 98), 0.7, 40, 4, 10, 5, 2.0),
    "prediabetes": ((100, 122), 1.0, 50, 8, 15, 7, 2.5),
    "type2": ((130, 175), 1.8, 75, 20, 25, 12, 3.5),
}
MEALS = np.array([[7.5, 0.6, 30, 60, 0.2], [12.75, 0.6, 40, 90, 0.1], [19.25, 0.7, 50, 100, 0.05],
                  [15.5, 0.9, 15, 30, 0.6]])  # local hour, sd h, carbs g min/max, skip probability


def glucose_minutes(rng, tl: Timeline, status: str) -> np.ndarray:
    """Interstitial glucose (mg/dL) per minute: fasting level, meals, dawn rise, exercise, drift."""
    (lo, hi), gain, peak, dawn, ex, drift_sd, _ = GLUCOSE[status]
    n = tl.t.size
    day = np.repeat(np.arange(tl.days), len(MEALS))
    meal = np.tile(MEALS, (tl.days, 1))
    local = tl.start_local + day * DAY + 3600 * rng.normal(meal[:, 0], meal[:, 1])
    carbs = rng.uniform(meal[:, 2], meal[:, 3]) * (rng.random(day.size) >= meal[:, 4])
    idx = (local_to_utc(to_minute(local), tl.profile.tz) - tl.t[0]) // 60
    ok = (idx >= 0) & (idx < n)
    ok[ok] &= ~tl.asleep[idx[ok]]
    impulse = np.zeros(n)
    np.add.at(impulse, idx[ok], carbs[ok])
    x = np.arange(360) / peak
    rise = np.convolve(impulse, x * x * np.exp(2 * (1 - x)))[:n] * gain
    hod = (tl.local % DAY) / 3600.0
    g = (rng.uniform(lo, hi) + rise + dawn * np.exp(-0.5 * ((hod - 6.5) / 1.2) ** 2)
         - ex * lag(tl.intensity, 30) + ar1(rng, n, drift_sd, 0.998))
    return lag(g, 7)


def cgm_readings(rng, tl: Timeline, status: str) -> tuple[np.ndarray, np.ndarray]:
    """5-min CGM readings (UTC s, integer mg/dL) with a sensor offset, noise and short gaps; values beyond the
    sensor's 40-400 mg/dL reporting range are kept (an export writes them as ``Low`` / ``High``)."""
    g = glucose_minutes(rng, tl, status)
    sel = np.arange(tl.t.size) % 5 == rng.integers(0, 5)
    n_gaps = max(1, int(rng.poisson(3 * tl.days / 7)))
    gs = tl.t[0] + 60 * rng.integers(0, tl.t.size, n_gaps)
    gaps = np.column_stack([gs, gs + 60 * rng.integers(5, 31, n_gaps)])
    sel &= ~in_intervals(tl.t, gaps[:, 0], gaps[:, 1])
    v = g * rng.normal(1, 0.04) + rng.normal(0, GLUCOSE[status][6], g.size)
    return tl.t[sel], np.round(v[sel]).clip(20, 600)


# --- Empatica E4 session --------------------------------------------------------
@dataclass
class E4Session:
    """Waveforms of one E4 session; ``segments`` are (condition, start, end) UTC s."""

    start_s: int
    segments: list[tuple[str, int, int]]
    bvp: np.ndarray  # 64 Hz, a.u.
    acc: np.ndarray  # 32 Hz (n, 3) int, 1/64 g
    eda: np.ndarray  # 4 Hz uS
    temp: np.ndarray  # 4 Hz degC
    hr: np.ndarray  # 1 Hz bpm from start + 10 s


def e4_session(rng, start_s: int, hours: float) -> E4Session:
    """Lab protocol (baseline 20 min, TSST-like stress 10 min, recovery 20 min), then free living with walks."""
    n = int(round(hours * 3600))
    b = int(rng.integers(300, 600)) + np.array([0, 1200, 1800, 3000])
    if b[-1] + 60 > n:
        raise ValueError(f"an E4 session of {hours} h is too short for the 50-min lab protocol")
    stress = np.zeros(n)
    stress[b[1]:b[2]] = 1.0
    walk, cadence = _walks(rng, n, b[-1])
    hr = (62 + 13 * rng.random() + rng.uniform(15, 25) * lag(stress, 40) + rng.uniform(25, 35) * lag(walk, 30)
          + ar1(rng, n, 2.0, 0.995) + ar1(rng, n, 1.0, 0.7))
    resp = 14 + 4 * lag(stress, 30) + 6 * lag(walk, 30) + ar1(rng, n, 0.8, 0.99)
    seg = [(c, start_s + int(b[i]), start_s + int(b[i + 1])) for i, c in enumerate(("baseline", "stress", "recovery"))]
    csum = np.cumsum(np.concatenate([[0.0], hr]))
    return E4Session(start_s, seg, _bvp(rng, hr, resp, walk, stress, cadence), _acc(rng, n, b, walk, cadence),
                     _eda(rng, stress, walk), _temp(rng, stress, walk), (csum[11:] - csum[1:-10]) / 10)


def _walks(rng, n: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    walk, cadence = np.zeros(n), np.full(n, 1.85)
    s = after + int(rng.integers(300, 1200))
    while s < n:
        e = min(n, s + int(rng.integers(600, 1500)))
        walk[s:e], cadence[s:e] = 1.0, rng.normal(1.85, 0.08)
        s = e + int(rng.integers(1800, 5400))
    return walk, cadence


def _per_sample(x: np.ndarray, fs: int) -> np.ndarray:
    """Per-second series -> ``fs`` Hz by linear interpolation."""
    return np.interp(np.arange(x.size * fs) / fs, np.arange(x.size), x)


def _bvp(rng, hr, resp, walk, stress, cadence, fs: int = 64) -> np.ndarray:
    """PPG pulse (systolic + diastolic wave) at the instantaneous HR with RSA, respiration and motion."""
    amp = rng.uniform(25, 60)
    resp_phase = 2 * np.pi * np.cumsum(_per_sample(resp, fs)) / 60 / fs
    hr_i = _per_sample(hr, fs) + rng.uniform(2, 4) * np.sin(resp_phase)
    u = np.cumsum(hr_i) / 60 / fs % 1.0
    pulse = np.exp(-(((u - 0.2) / 0.075) ** 2)) + 0.35 * np.exp(-(((u - 0.42) / 0.12) ** 2)) - 0.207
    a = amp * (1 - 0.3 * _per_sample(lag(stress, 60), fs)) * (1 + 0.12 * np.sin(resp_phase))
    w = _per_sample(walk, fs)
    steps = np.sin(2 * np.pi * np.cumsum(_per_sample(cadence, fs)) / fs)
    motion = w * amp * (0.8 * lag(rng.normal(0, 3, w.size), 4) + 0.5 * steps)
    return a * pulse + 0.15 * amp * np.sin(resp_phase + 0.5) + motion + rng.normal(0, 0.02 * amp, w.size)


def _acc(rng, n: int, bounds, walk, cadence, fs: int = 32) -> np.ndarray:
    """Gravity (64 = 1 g) on the current wrist posture, small fidgets, arm swing while walking."""
    breaks = np.unique(np.concatenate([[0], bounds, np.cumsum(rng.exponential(600, n // 300 + 10)).astype(np.int64)]))
    breaks = breaks[breaks < n]
    v = rng.normal([0.1, 0.25, 0.95], 0.35, (breaks.size, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    g = v[np.searchsorted(breaks, np.arange(n), side="right") - 1]
    g[walk > 0] = np.array([-0.9, 0.3, 0.3]) / np.linalg.norm([-0.9, 0.3, 0.3])  # arm hanging
    w = np.repeat(walk, fs)
    phase = 2 * np.pi * np.cumsum(np.repeat(cadence, fs)) / fs
    swing = np.column_stack([18 * np.sin(phase) + 8 * np.sin(2 * phase + 1), 15 * np.sin(phase / 2), 6 * np.sin(phase)])
    acc = np.column_stack([lag(np.repeat(g[:, j], fs), 16) for j in range(3)]) * 64
    acc += w[:, None] * (swing + rng.normal(0, 5, (w.size, 3))) + rng.normal(0, 0.7, (w.size, 3))
    return np.round(acc).clip(-128, 127).astype(np.int64)


def _scr(rng, rate_per_s, amp_mean, fs: int) -> np.ndarray:
    """Phasic skin-conductance responses: Poisson onsets through a bi-exponential kernel."""
    events = rng.random(rate_per_s.size) < rate_per_s / fs
    impulse = events * rng.exponential(amp_mean)
    kd, kr = np.exp(-1 / (4.0 * fs)), np.exp(-1 / (0.75 * fs))
    k = np.arange(40 * fs)
    peak = np.max(kd ** k - kr ** k)
    return (lfilter([1.0], [1.0, -kd], impulse) - lfilter([1.0], [1.0, -kr], impulse)) / peak


def _eda(rng, stress, walk, fs: int = 4) -> np.ndarray:
    s, w = _per_sample(stress, fs), _per_sample(walk, fs)
    level = rng.lognormal(np.log(3), 0.5) * np.exp(ar1(rng, s.size, 0.15, 0.99995))
    tonic = level + rng.uniform(1, 3) * lag(s, 120 * fs) + 0.5 * lag(w, 300 * fs)
    phasic = _scr(rng, (1.5 + 7 * s + 2 * w) / 60, 0.12 + 0.3 * s, fs)
    return (tonic.clip(1, 10) + phasic + rng.normal(0, 0.003, s.size)).clip(0.01)


def _temp(rng, stress, walk, fs: int = 4) -> np.ndarray:
    s, w = _per_sample(stress, fs), _per_sample(walk, fs)
    t = np.arange(s.size) / fs
    v = (rng.uniform(33, 34.5) - 2.2 * np.exp(-t / 480) - 0.4 * lag(s, 180 * fs) - 0.3 * lag(w, 300 * fs)
         + ar1(rng, s.size, 0.1, 0.9999))
    return v.clip(31, 35)
