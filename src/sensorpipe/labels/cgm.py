"""CGM-derived window targets and glycaemic events, from the ``glucose`` channel (mg/dL).

The glucose channel puts each CGM reading in its minute; minutes without a
reading are unobserved. Every statistic here uses the readings only, never an
imputed minute.

**Reading interval.** A sensor reads every few minutes: 5 for Dexcom G4-G7
and FreeStyle Libre 3, 15 for the Libre 1/2 historic series, 1 for some
streaming sensors. The interval comes from the source adapter that produced
the series (``SourceAdapter.reading_interval_min``, passed in
``WindowBatch.reading_interval_min``) or, when none is declared (long tables),
is inferred per window: the median of the minutes between consecutive
readings, rounded to whole minutes and kept within 1-15
(:func:`infer_reading_interval_min`). A declared interval is the device's
nominal one and an upper bound: a window whose readings come faster (a Libre 3
export, 5-min historic readings, through the LibreView adapter that declares
15) uses the faster interval. Inference cannot tell a 10-min device from a
5-min one that missed every other reading: declare the interval where it is
known.

**Coverage** (consensus: >= 70 % of the possible readings, Battelino et al.,
Diabetes Care 2019;42:1593): a window's coverage is its readings x interval
over its length, capped by the minutes those readings cover (a reading covers
its interval, see below; a burst of scans cannot cover more than the minutes
it spans). For a regular series this is exactly readings / possible readings:
a complete 15-min Libre day is 96 of 96 readings, a complete Dexcom day 288
of 288. Below :data:`MIN_COVERAGE` every CGM target is missing (NaN, never 0).

**A reading covers its interval.** A reading stands for its minute and the
following ones up to the next reading, at most interval +
:data:`JITTER_TOLERANCE_MIN` minutes: real exports carry seconds jitter
(Dexcom 22:11:59 then 22:17:00 land in minutes 6 apart), and without the
tolerance such a pair would leave a one-minute hole that breaks a run of lows.
Three consecutive 5-min readings below 70 are 15 minutes below 70, two are 10
(not an event); one 15-min Libre reading is 15 minutes. The same jitter can
shorten a run by a minute (readings 4 minutes apart after one written late):
a run of 15 - :data:`JITTER_TOLERANCE_MIN` minutes still counts as 15 when
its readings x interval make 15 (three 5-min readings, one 15-min reading),
never with fewer readings. A gap (minutes no reading covers) is neither low
nor in range: it interrupts the 15-minute runs that start or end an event,
but does not end an event by itself.

**Targets** (per window; Battelino et al., "Clinical targets for continuous
glucose monitoring data interpretation: recommendations from the international
consensus on time in range", Diabetes Care 2019;42:1593-1603, and Danne et
al., Diabetes Care 2017;40:1631):

* ``glucose_mean_mgdl``; ``glucose_cv_pct`` = 100 x sample SD / mean;
* ``time_in_range_pct``: share of readings in 70-180 mg/dL;
* ``time_below_range_pct`` (TBR level 1 and 2, < 70 mg/dL) and
  ``time_below_range_l2_pct`` (TBR level 2, < 54 mg/dL);
* ``time_above_range_pct`` (TAR, > 180 mg/dL) and ``time_above_range_l2_pct``
  (TAR level 2, > 250 mg/dL);
* ``gmi_pct``: glucose management indicator, 3.31 + 0.02392 x mean glucose
  in mg/dL (Bergenstal et al., Diabetes Care 2018;41:2275, adopted by the
  2019 consensus); an estimate of HbA1c (%), meaningful over 14 days or more.

**Censored readings** (Dexcom ``Low``/``High``, Libre ``LO``/``HI``) sit at the
glucose channel's registry bounds (see
:mod:`sensorpipe.processing.glucose_censoring`), so they count in every
range share and event on the right side: a Low is below 54 and 70, a High
above 250 and 180. Mean, SD/CV and GMI need a number: a Low enters them at
:data:`CENSORED_LOW_AS_MGDL` (40) and a High at :data:`CENSORED_HIGH_AS_MGDL`
(400), the reporting limits of Dexcom G4-G7 and FreeStyle Libre 3 and the
values Dexcom Clarity's own statistics use (Libre 1/2 report HI above 500,
so there a HI enters at a value it exceeds). Event extremes keep the stored
bound (the caption says "under 40" / "over 400").

**Events** (Battelino et al., "Continuous glucose monitoring and metrics for
clinical trials: an international consensus statement", Lancet Diabetes
Endocrinol 2023;11:42-57):

* level-1 hypoglycaemia starts with >= 15 consecutive minutes below 70 mg/dL
  and ends only after >= 15 consecutive minutes at >= 70 mg/dL;
* level-2 hypoglycaemia: >= 15 consecutive minutes below 54 mg/dL, ended by
  >= 15 consecutive minutes at >= 54 mg/dL;
* level-1 hyperglycaemia: >= 15 consecutive minutes above 180 mg/dL, ended by
  >= 15 consecutive minutes at <= 180 mg/dL;
* level-2 hyperglycaemia: >= 15 consecutive minutes above 250 mg/dL, ended by
  >= 15 consecutive minutes at <= 250 mg/dL.

A level-2 event lies inside a level-1 event and is counted in both counts, as
the consensus reports them. Events are found within one window (a dip that
started before it counts when its qualifying 15 minutes lie inside). The
captions describe the level-1 events of the same :func:`glucose_events`; they
see no declared interval, so they use the inferred one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorpipe.core.windows import WindowBatch
from sensorpipe.labels.base import ChannelLabelProcessor
from sensorpipe.processing.glucose_censoring import ABOVE_RANGE, BELOW_RANGE, censoring_codes

LOW_MGDL = 70.0              # level-1 hypoglycaemia below this
VERY_LOW_MGDL = 54.0         # level-2 hypoglycaemia below this
HIGH_MGDL = 180.0            # level-1 hyperglycaemia above this
VERY_HIGH_MGDL = 250.0       # level-2 hyperglycaemia above this
EVENT_MIN = 15               # consecutive minutes beyond the threshold that start an event
RECOVERY_MIN = 15            # consecutive minutes back across it that end one
MIN_COVERAGE = 0.70          # share of the possible readings needed for the window's targets
DEFAULT_READING_INTERVAL_MIN = 5      # when nothing is declared and a window has fewer than 2 readings
INFERRED_INTERVAL_RANGE_MIN = (1, 15)  # an inferred interval is kept within the intervals CGMs use
JITTER_TOLERANCE_MIN = 1     # a reading may land one minute late (seconds jitter) and still meet the next
CENSORED_LOW_AS_MGDL = 40.0  # value of a below-range reading in mean, SD/CV and GMI
CENSORED_HIGH_AS_MGDL = 400.0  # value of an above-range reading in mean, SD/CV and GMI
GMI_INTERCEPT_PCT = 3.31
GMI_PCT_PER_MGDL = 0.02392

#: (kind, level, threshold, beyond the threshold) of each event type
_EVENT_TYPES = (("hypo", 1, LOW_MGDL, np.less), ("hypo", 2, VERY_LOW_MGDL, np.less),
                ("hyper", 1, HIGH_MGDL, np.greater), ("hyper", 2, VERY_HIGH_MGDL, np.greater))

CGM_LABELS = ("glucose_mean_mgdl", "glucose_cv_pct", "gmi_pct", "time_in_range_pct", "time_below_range_pct",
              "time_below_range_l2_pct", "time_above_range_pct", "time_above_range_l2_pct", "hypo_events",
              "hypo_l2_events", "hyper_events", "hyper_l2_events")


@dataclass(frozen=True)
class GlucoseEvent:
    """One glycaemic event in a window: minutes ``[start_min, end_min)`` from the window start.

    ``end_min`` is one past the last minute beyond the threshold (recovery
    starts there); ``extreme_mgdl`` is the lowest (hypo) or highest (hyper)
    reading of the event (a censored reading at its stored bound); ``level``
    is the consensus level (1: < 70 / > 180 mg/dL, 2: < 54 / > 250 mg/dL).
    """

    start_min: int
    end_min: int
    kind: str             # "hypo" | "hyper"
    extreme_mgdl: float
    level: int = 1


def infer_reading_interval_min(observed: np.ndarray) -> np.ndarray:
    """Per window of ``observed [N, W]`` (or one ``[W]``), the median minutes between consecutive readings,
    rounded and kept within :data:`INFERRED_INTERVAL_RANGE_MIN`; NaN for a window with fewer than 2 readings."""
    obs = np.atleast_2d(np.asarray(observed, bool))
    idx = np.arange(obs.shape[1])
    last = np.maximum.accumulate(np.where(obs, idx, -1), axis=1)
    prev = np.concatenate([np.full((obs.shape[0], 1), -1), last[:, :-1]], axis=1)
    gap = np.where(obs & (prev >= 0), idx - prev, np.nan)
    n = np.count_nonzero(np.isfinite(gap), axis=1)
    has = n > 0
    med = np.full(obs.shape[0], np.nan)
    if has.any():   # nanmedian's numbers: rows sorted (NaN last), the mean of the middle two of the n gaps
        s, k = np.sort(gap[has], axis=1), n[has]
        rows = np.arange(s.shape[0])
        med[has] = (s[rows, (k - 1) // 2] + s[rows, k // 2]) / 2
    lo, hi = INFERRED_INTERVAL_RANGE_MIN
    return np.where(has, np.clip(np.floor(med + 0.5), lo, hi), np.nan)


def reading_intervals_min(observed: np.ndarray, declared_min: float | None = None) -> np.ndarray:
    """The reading interval (whole minutes, int64) of each window of ``observed [N, W]``: the declared one,
    or the inferred one when it is shorter or nothing is declared (see the module docstring)."""
    inferred = infer_reading_interval_min(observed)
    if declared_min is not None:
        if not declared_min > 0:
            raise ValueError(f"a declared CGM reading interval must be > 0 minutes, got {declared_min!r}")
        fallback = float(declared_min)
        inferred = np.fmin(inferred, fallback)
    else:
        fallback = float(DEFAULT_READING_INTERVAL_MIN)
    out = np.where(np.isfinite(inferred), inferred, fallback)
    return np.maximum(np.floor(out + 0.5), 1).astype(np.int64)


def glucose_events_per_window(glucose_mgdl: np.ndarray, reading_interval_min: float | None = None
                              ) -> list[list[GlucoseEvent]]:
    """:func:`glucose_events` of every window of ``glucose_mgdl [N, W]`` (NaN = no reading): the same events,
    with the reading intervals found for all windows at once and only the windows that
    :func:`may_have_events` searched."""
    g = np.asarray(glucose_mgdl, np.float64)
    interval = reading_intervals_min(np.isfinite(g), reading_interval_min)
    maybe = may_have_events(g, interval)
    return [_window_events(g[i], int(interval[i])) if maybe[i] else [] for i in range(g.shape[0])]


def may_have_events(g: np.ndarray, interval_min: np.ndarray,
                    held: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """bool ``[N]``: the windows of ``g [N, W]`` (NaN = no reading; reading intervals ``interval_min [N]``)
    where some event type's held level stays beyond its threshold for ``EVENT_MIN - JITTER_TOLERANCE_MIN``
    minutes in a row. No event starts in any other window (:func:`_lasts` needs a run that long), so their
    event search, one window at a time, can be skipped: a few array passes over all windows instead.
    ``held``: :func:`_held_readings` of the same ``g`` and intervals, when the caller has it."""
    level, covered = _held_readings(g, interval_min) if held is None else held
    need = EVENT_MIN - JITTER_TOLERANCE_MIN
    maybe = np.zeros(g.shape[0], bool)
    if g.shape[1] < need:
        return maybe
    for _, _, threshold, beyond_fn in _EVENT_TYPES:
        with np.errstate(invalid="ignore"):
            beyond = covered & beyond_fn(level, threshold)
        run = np.zeros((g.shape[0], g.shape[1] + 1), np.int32)     # beyond minutes before each minute
        np.cumsum(beyond, axis=1, out=run[:, 1:])
        maybe |= ((run[:, need:] - run[:, :-need]) == need).any(axis=1)   # some `need` minutes all beyond
    return maybe


def glucose_events(glucose_mgdl: np.ndarray, reading_interval_min: float | None = None) -> list[GlucoseEvent]:
    """Level-1 and level-2 hypo- and hyperglycaemic events of one window's per-minute glucose (NaN = no
    reading), by start, kind and level; ``reading_interval_min`` as declared by the source (None: inferred)."""
    g = np.asarray(glucose_mgdl, np.float64)
    if g.ndim != 1:
        raise ValueError(f"glucose_events wants one window's per-minute glucose (1-D); got shape {g.shape}")
    interval = reading_intervals_min(np.isfinite(g)[None], reading_interval_min)
    return _window_events(g, int(interval[0]))


def cgm_targets(glucose_mgdl: np.ndarray, observed: np.ndarray,
                reading_interval_min: float | None = None) -> dict[str, np.ndarray]:
    """The CGM targets of windows ``[N, W]`` (values in mg/dL, observed = a reading), NaN below coverage;
    ``reading_interval_min`` as declared by the source (None: inferred per window)."""
    observed = np.asarray(observed, bool)
    g = np.where(observed, glucose_mgdl, np.nan).astype(np.float64)
    n, w = g.shape
    interval = reading_intervals_min(observed, reading_interval_min)
    held = _held_readings(g, interval)
    covered = held[1]
    count = observed.sum(axis=1).astype(np.float64)
    coverage = np.minimum(covered.sum(axis=1), count * interval) / max(w, 1)
    ok = (coverage >= MIN_COVERAGE - 1e-9) & (count > 0)
    safe = np.where(ok, count, 1.0)
    codes = censoring_codes(g)
    g_num = np.where(codes == BELOW_RANGE, CENSORED_LOW_AS_MGDL,   # censored readings as their reporting limits
                     np.where(codes == ABOVE_RANGE, CENSORED_HIGH_AS_MGDL, g))

    def share(hit: np.ndarray) -> np.ndarray:
        return 100.0 * hit.sum(axis=1) / safe

    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(g_num, axis=1) / safe
        var = np.nansum((g_num - mean[:, None]) ** 2, axis=1) / np.maximum(safe - 1, 1)
        out = {"glucose_mean_mgdl": mean,
               "glucose_cv_pct": 100.0 * np.sqrt(var) / mean,
               "gmi_pct": GMI_INTERCEPT_PCT + GMI_PCT_PER_MGDL * mean,
               "time_in_range_pct": share((g >= LOW_MGDL) & (g <= HIGH_MGDL)),
               "time_below_range_pct": share(g < LOW_MGDL),
               "time_below_range_l2_pct": share(g < VERY_LOW_MGDL),
               "time_above_range_pct": share(g > HIGH_MGDL),
               "time_above_range_l2_pct": share(g > VERY_HIGH_MGDL)}
    counts = {_event_label(kind, level): np.zeros(n) for kind, level, _, _ in _EVENT_TYPES}
    # only the windows that may hold an event; the event search in each is vectorized over minutes
    for i in np.flatnonzero(ok & may_have_events(g, interval, held)):
        for e in _window_events(g[i], int(interval[i])):
            counts[_event_label(e.kind, e.level)][i] += 1
    out |= counts
    return {k: np.where(ok, out[k], np.nan).astype(np.float32) for k in CGM_LABELS}


class CgmTargets(ChannelLabelProcessor):
    """CGM targets of every window of a unit whose output channels include ``glucose``."""

    name = "cgm_targets"
    produces = CGM_LABELS
    channel_name = "glucose"

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        ch = batch.channel(self.channel_name)
        if ch is None or len(batch) == 0:
            return {}
        return cgm_targets(*ch, batch.reading_interval_min.get(self.channel_name))

    def from_channel(self, values, observed):
        return cgm_targets(values, observed)


# --- internals ---------------------------------------------------------------------------------
def _event_label(kind: str, level: int) -> str:
    """The count label of an event type: ``hypo_events`` (level 1), ``hypo_l2_events`` (level 2), ..."""
    return f"{kind}_events" if level == 1 else f"{kind}_l{level}_events"


def _held_readings(g: np.ndarray, interval_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per minute of windows ``g [N, W]``, the latest reading at most interval + JITTER_TOLERANCE_MIN - 1
    minutes back (it holds until the next reading), and whether there is one."""
    idx = np.arange(g.shape[1])
    last = np.maximum.accumulate(np.where(np.isfinite(g), idx, -1), axis=1)
    span = np.asarray(interval_min, np.int64)[:, None] + JITTER_TOLERANCE_MIN
    covered = (last >= 0) & (idx - last < span)
    level = np.take_along_axis(g, np.maximum(last, 0), axis=1)
    return np.where(covered, level, np.nan), covered


def _window_events(g: np.ndarray, interval_min: int) -> list[GlucoseEvent]:
    level, covered = _held_readings(g[None], np.array([interval_min]))
    level, covered = level[0], covered[0]
    readings_before = np.r_[0, np.cumsum(np.isfinite(g))]   # readings in minutes [a, b): [b] - [a]
    events = []
    for kind, lvl, threshold, beyond_fn in _EVENT_TYPES:
        with np.errstate(invalid="ignore"):
            beyond = covered & beyond_fn(level, threshold)
        events += _events(g, beyond, covered & ~beyond, kind, lvl, readings_before, interval_min)
    return sorted(events, key=lambda e: (e.start_min, e.kind, e.level))


def _runs(flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of True."""
    d = np.diff(np.r_[0, flag.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _lasts(start: np.ndarray, end: np.ndarray, need_min: int, readings_before: np.ndarray,
           interval_min: int) -> np.ndarray:
    """Runs of at least ``need_min`` minutes, or one jitter minute short with readings x interval enough."""
    minutes = end - start
    readings = readings_before[end] - readings_before[start]
    return (minutes >= need_min) | ((minutes >= need_min - JITTER_TOLERANCE_MIN) & (readings * interval_min >= need_min))


def _events(g: np.ndarray, beyond: np.ndarray, back: np.ndarray, kind: str, level: int,
            readings_before: np.ndarray, interval_min: int) -> list[GlucoseEvent]:
    """Events from runs beyond the threshold; a run of >= RECOVERY_MIN minutes back across it closes one."""
    b_start, b_end = _runs(beyond)
    starts = _lasts(b_start, b_end, EVENT_MIN, readings_before, interval_min)
    if not starts.any():
        return []
    r_start, r_end = _runs(back)
    keep = _lasts(r_start, r_end, RECOVERY_MIN, readings_before, interval_min)
    r_start, r_end = r_start[keep], r_end[keep]
    extreme = np.fmin if kind == "hypo" else np.fmax
    out: list[GlucoseEvent] = []
    cur: list[int] | None = None          # [start, end] of the open event
    for s, e, qualifies in zip(b_start.tolist(), b_end.tolist(), starts.tolist()):
        if cur is not None:
            k = np.searchsorted(r_start, cur[1])
            if k < r_start.size and r_end[k] <= s:        # a full recovery between: the open event ended
                out.append(_event(g, cur, kind, level, extreme))
                cur = None
            else:
                cur[1] = e
                continue
        if qualifies:
            cur = [s, e]
    if cur is not None:
        out.append(_event(g, cur, kind, level, extreme))
    return out


def _event(g: np.ndarray, span: list[int], kind: str, level: int, extreme) -> GlucoseEvent:
    seg = g[span[0]:span[1]]
    readings = seg[np.isfinite(seg)]   # a span starts at a reading, so there is at least one
    value = float(extreme.reduce(readings))
    return GlucoseEvent(int(span[0]), int(span[1]), kind, value, level)
