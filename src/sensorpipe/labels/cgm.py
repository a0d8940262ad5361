"""CGM-derived window targets and glycaemic events, from the ``glucose`` channel (mg/dL).

The glucose channel puts each CGM reading (one every ~5 min, some sensors
every 1 or 15 min) in its minute; minutes without a reading are unobserved.
Every statistic here uses the readings only, never an imputed minute.

**Targets** (per window, following the international consensus on CGM metrics,
Battelino et al., Diabetes Care 2019;42:1593 and Danne et al., Diabetes Care
2017;40:1631): mean glucose, coefficient of variation (100 * sample SD / mean),
and the share of readings in range 70-180 mg/dL, below 70 and above 180.
The consensus asks for >= 70 % of possible readings before metrics are
reported; here a window needs a reading in at least 70 % of its 5-minute
slots (:data:`MIN_COVERAGE`), else every CGM target is missing (NaN, never 0).

**Events** (Battelino et al., "Continuous glucose monitoring and metrics for
clinical trials: an international consensus statement", Lancet Diabetes
Endocrinol 2023;11:42-57, level 1 events):

* hypoglycaemia starts with >= 15 consecutive minutes below 70 mg/dL and ends
  only after >= 15 consecutive minutes at >= 70 mg/dL;
* hyperglycaemia starts with >= 15 consecutive minutes above 180 mg/dL and
  ends after >= 15 consecutive minutes at <= 180 mg/dL.

A reading stands for its minute and the following ones up to the next reading,
at most :data:`READING_SPAN_MIN` minutes (the 5-min sampling interval), so
three consecutive 5-min readings below 70 are 15 minutes below 70, and two are
10 minutes (not an event). A gap (minutes no reading covers) is neither low nor
in range: it interrupts the 15-minute runs that start or end an event, but does
not end an event by itself. Events are found within one window (a dip that
started before it counts when its qualifying 15 minutes lie inside).
The captions describe the same :func:`glucose_events` the counts use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorpipe.labels.base import ChannelLabelProcessor

LOW_MGDL = 70.0
HIGH_MGDL = 180.0
EVENT_MIN = 15            # consecutive minutes beyond the threshold that start an event
RECOVERY_MIN = 15         # consecutive minutes back across it that end one
READING_SPAN_MIN = 5      # minutes a reading stands for (the usual CGM sampling interval)
SLOT_MIN = 5              # coverage is counted in 5-minute slots of the window
MIN_COVERAGE = 0.70       # share of slots with a reading needed for the window's targets

CGM_LABELS = ("glucose_mean_mgdl", "glucose_cv_pct", "time_in_range_pct", "time_below_range_pct",
              "time_above_range_pct", "hypo_events", "hyper_events")


@dataclass(frozen=True)
class GlucoseEvent:
    """One level-1 glycaemic event in a window: minutes ``[start_min, end_min)`` from the window start.

    ``end_min`` is one past the last minute beyond the threshold (recovery
    starts there); ``extreme_mgdl`` is the lowest (hypo) or highest (hyper)
    reading of the event.
    """

    start_min: int
    end_min: int
    kind: str             # "hypo" | "hyper"
    extreme_mgdl: float


def glucose_events(glucose_mgdl: np.ndarray) -> list[GlucoseEvent]:
    """Level-1 hypo- and hyperglycaemic events of one window's per-minute glucose (NaN = no reading), by start."""
    g = np.asarray(glucose_mgdl, np.float64)
    if g.ndim != 1:
        raise ValueError(f"glucose_events wants one window's per-minute glucose (1-D); got shape {g.shape}")
    level, covered = _held_readings(g)
    events = (_events(g, covered & (level < LOW_MGDL), covered & (level >= LOW_MGDL), "hypo")
              + _events(g, covered & (level > HIGH_MGDL), covered & (level <= HIGH_MGDL), "hyper"))
    return sorted(events, key=lambda e: (e.start_min, e.kind))


def cgm_targets(glucose_mgdl: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
    """The CGM targets of windows ``[N, W]`` (values in mg/dL, observed = a reading), NaN below coverage."""
    g = np.where(observed, glucose_mgdl, np.nan).astype(np.float64)
    n, w = g.shape
    n_slots = -(-w // SLOT_MIN)
    pad = n_slots * SLOT_MIN - w
    slot_hit = np.pad(observed, ((0, 0), (0, pad))).reshape(n, n_slots, SLOT_MIN).any(axis=2)
    ok = slot_hit.sum(axis=1) >= MIN_COVERAGE * n_slots
    count = observed.sum(axis=1).astype(np.float64)
    safe = np.where(ok, count, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(g, axis=1) / safe
        var = np.nansum((g - mean[:, None]) ** 2, axis=1) / np.maximum(safe - 1, 1)
        out = {"glucose_mean_mgdl": mean,
               "glucose_cv_pct": 100.0 * np.sqrt(var) / mean,
               "time_in_range_pct": 100.0 * ((g >= LOW_MGDL) & (g <= HIGH_MGDL)).sum(axis=1) / safe,
               "time_below_range_pct": 100.0 * (g < LOW_MGDL).sum(axis=1) / safe,
               "time_above_range_pct": 100.0 * (g > HIGH_MGDL).sum(axis=1) / safe}
    hypo, hyper = np.zeros(n), np.zeros(n)
    for i in np.flatnonzero(ok):  # one iteration per covered window; glucose_events is vectorized over minutes
        events = glucose_events(g[i])
        hypo[i] = sum(e.kind == "hypo" for e in events)
        hyper[i] = sum(e.kind == "hyper" for e in events)
    out["hypo_events"], out["hyper_events"] = hypo, hyper
    return {k: np.where(ok, v, np.nan).astype(np.float32) for k, v in out.items()}


class CgmTargets(ChannelLabelProcessor):
    """CGM targets of every window of a unit whose output channels include ``glucose``."""

    name = "cgm_targets"
    produces = CGM_LABELS
    channel_name = "glucose"

    def from_channel(self, values, observed):
        return cgm_targets(values, observed)


# --- internals ---------------------------------------------------------------------------------
def _held_readings(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per minute, the latest reading at most READING_SPAN_MIN - 1 minutes back, and whether there is one."""
    idx = np.arange(g.size)
    last = np.maximum.accumulate(np.where(np.isfinite(g), idx, -1))
    covered = (last >= 0) & (idx - last < READING_SPAN_MIN)
    return np.where(covered, g[np.maximum(last, 0)], np.nan), covered


def _runs(flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of True."""
    d = np.diff(np.r_[0, flag.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _events(g: np.ndarray, beyond: np.ndarray, back: np.ndarray, kind: str) -> list[GlucoseEvent]:
    """Events from runs beyond the threshold; a run of >= RECOVERY_MIN minutes back across it closes one."""
    b_start, b_end = _runs(beyond)
    if not (b_end - b_start >= EVENT_MIN).any():
        return []
    r_start, r_end = _runs(back)
    keep = r_end - r_start >= RECOVERY_MIN
    r_start, r_end = r_start[keep], r_end[keep]
    extreme = np.fmin if kind == "hypo" else np.fmax
    out: list[GlucoseEvent] = []
    cur: list[int] | None = None          # [start, end] of the open event
    for s, e in zip(b_start.tolist(), b_end.tolist()):   # one iteration per excursion, not per minute
        if cur is not None:
            k = np.searchsorted(r_start, cur[1])
            if k < r_start.size and r_end[k] <= s:        # a full recovery between: the open event ended
                out.append(_event(g, cur, kind, extreme))
                cur = None
            else:
                cur[1] = e
                continue
        if e - s >= EVENT_MIN:
            cur = [s, e]
    if cur is not None:
        out.append(_event(g, cur, kind, extreme))
    return out


def _event(g: np.ndarray, span: list[int], kind: str, extreme) -> GlucoseEvent:
    seg = g[span[0]:span[1]]
    readings = seg[np.isfinite(seg)]   # a span starts at a reading, so there is at least one
    value = float(extreme.reduce(readings))
    return GlucoseEvent(int(span[0]), int(span[1]), kind, value)
