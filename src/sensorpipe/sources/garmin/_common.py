"""Shared by the Garmin activity readers: one file's trackpoints and how they become native rows.

Each reader (FIT, TCX, GPX) fills a :class:`Track`: per trackpoint its time
(as the file writes it), heart rate (verbatim), cadence, cumulative distance
and whether the sport counts steps. :func:`track_tables` turns a track into
the adapter's native rows:

* ``heart_rate``: one row per trackpoint with a heart rate, value verbatim.
* ``distance_increment``: metres covered since the previous trackpoint that
  has a distance (the first one counts from 0), from the cumulative distance
  counter. The minute aggregation sums them, so the minute value is m/min.
* ``run_steps``: steps since the previous trackpoint for running, walking and
  hiking, from the cadence: Garmin writes running cadence as strides (one
  foot) per minute, so steps = 2 x cadence x dt / 60, with dt the seconds
  since the previous trackpoint when that is between 0 and
  :data:`MAX_GAP_S`, else 1 s (the first trackpoint, the one after a pause,
  or one next to a broken time). Cycling cadence is pedal revolutions, not
  steps, and is not used.

A trackpoint at the same instant as the one before it (TCX repeats the last
trackpoint of a lap as the first of the next) gives rows whose field is
``repeat:<field>``: validation quarantines them as ``unknown_field``, so they
are counted, and they do not shorten the distance increments.

Derived rows (distance, steps) carry the derived value; their ``time`` and
``source_row`` still point at the trackpoint they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.core.refs import Participant
from sensorpipe.core.timeparse import NAT
from sensorpipe.sources.base import repeat_string

MAX_GAP_S = 10.0
#: FIT sport names (and the words in TCX Sport / GPX <type>) whose cadence is strides per minute
STEP_SPORTS = ("running", "walking", "hiking")


@dataclass
class Track:
    """Trackpoints of one file, in file order."""

    time: pa.Array              # as written: FIT seconds since 1989-12-31 UTC (int64) or ISO text
    t_utc_ns: np.ndarray        # int64, NAT where unparseable
    time_error: np.ndarray | None
    heart_rate: pa.Array        # verbatim (int for FIT, text for TCX/GPX), null where the point has none
    cadence: np.ndarray         # float64 strides (or revolutions) per minute, NaN where absent
    step_sport: np.ndarray      # bool: the point belongs to a running/walking/hiking activity
    distance_m: np.ndarray      # float64 cumulative metres, NaN where absent
    has_distance: np.ndarray    # bool: the point carries a distance element/field (even a broken one)
    row: np.ndarray             # int64 1-based trackpoint / record ordinal
    sport: np.ndarray | None = None  # str per point: the sport its activity/session names ("" when none)


def is_step_sport(name: str | None) -> bool:
    low = (name or "").lower()
    return any(s[:3] in low for s in STEP_SPORTS)  # "run", "wal", "hik": Running, trail_running, ...


def sport_bouts(track: Track) -> list[tuple[int, int, str]]:
    """``(start_utc_ns, end_utc_ns, sport)`` of each run of trackpoints of one sport (as the file names it).

    A bout spans its first to its last timed trackpoint plus one second (the
    devices record at 1 Hz), so pauses inside an activity stay inside it;
    points without a parseable time or a sport are skipped.
    """
    if track.sport is None:
        return []
    ok = (track.t_utc_ns != NAT) & (track.sport != "")
    t, sp = track.t_utc_ns[ok], track.sport[ok]
    if t.size == 0:
        return []
    edges = np.flatnonzero(sp[1:] != sp[:-1]) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, t.size]
    return [(int(t[a:b].min()), int(t[a:b].max()) + 1_000_000_000, str(sp[a])) for a, b in zip(starts, ends)]


def to_float(values: list) -> np.ndarray:
    """Numbers or number-like text to float64 (NaN where absent or not a number)."""
    import pandas as pd

    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(np.float64)


def track_tables(track: Track, participant: Participant, path: Path) -> list[pa.Table]:
    """Native tables (heart rate, distance increments, running steps) of one file's track."""
    t = track.t_utc_ns
    ok_t = t != NAT
    repeat = np.zeros(t.shape[0], bool)  # TCX repeats a lap's last trackpoint as the next lap's first
    repeat[1:] = (t[1:] == t[:-1]) & ok_t[1:]
    parts = []
    hr_rows = np.flatnonzero(np.asarray(track.heart_rate.is_valid().to_numpy(zero_copy_only=False)))
    if hr_rows.size:
        parts.append(_table("heart_rate", track, hr_rows, track.heart_rate.take(pa.array(hr_rows)), repeat,
                            participant, path))
    d_rows = np.flatnonzero(track.has_distance)
    if d_rows.size:
        cum = track.distance_m[d_rows]
        use = np.isfinite(cum) & ~repeat[d_rows]
        inc = np.full(d_rows.size, np.nan)
        inc[use] = np.diff(cum[use], prepend=0.0)
        parts.append(_table("distance_increment", track, d_rows, pa.array(inc), repeat, participant, path))
    s_rows = np.flatnonzero(track.step_sport & ~np.isnan(track.cadence))
    if s_rows.size:
        dt = np.diff(np.where(ok_t, t, 0) / 1e9, prepend=np.nan)
        ok_dt = np.r_[False, ok_t[1:] & ok_t[:-1]] & (dt > 0) & (dt <= MAX_GAP_S)
        dt = np.where(ok_dt, dt, 1.0)
        steps = 2.0 * track.cadence[s_rows] * dt[s_rows] / 60.0
        parts.append(_table("run_steps", track, s_rows, pa.array(steps), repeat, participant, path))
    return parts


def _table(field: str, track: Track, rows: np.ndarray, values: pa.Array, repeat: np.ndarray,
           participant: Participant, path: Path) -> pa.Table:
    n = rows.size
    take = pa.array(rows)
    err = pa.nulls(n, pa.string()) if track.time_error is None else pa.array(track.time_error[rows], pa.string())
    fields = pa.DictionaryArray.from_arrays(pa.array(repeat[rows].astype(np.int32)),
                                            pa.array([field, f"repeat:{field}"], pa.string()))
    return pa.table({
        "participant_id": repeat_string(participant.participant_id, n),
        "field": fields,
        "time": track.time.take(take),
        "t_utc_ns": pa.array(track.t_utc_ns[rows], pa.int64()),
        "time_error": err,
        "value": values,
        "unit": pa.nulls(n, pa.string()),
        "source_file": repeat_string(str(path), n),
        "source_row": pa.array(track.row[rows], pa.int64()),
    })
