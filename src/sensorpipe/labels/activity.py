"""Activity class labels: activity-labelled recordings, Garmin activity sports and logged-exercise files.

Every source gives activity bouts as UTC intervals with an activity name from
:data:`~sensorpipe.core.labels.ACTIVITIES`; a window's ``activity`` is the
class covering most of its labelled time (exact, in nanoseconds), -1 when no
bout overlaps it, and each bout is an ``activity`` event on the minutes it
touches (see :mod:`sensorpipe.labels.intervals`).

* ``basicmotions_activity``: the case labels of ``.ts`` recordings
  (:meth:`~sensorpipe.sources.basicmotions.BasicMotionsAdapter.activity_bouts`).
* ``garmin_sport``: the sport each FIT session, TCX ``Activity`` or GPX track
  names, over the span of its trackpoints. A multisport ``transition`` is no
  activity.
* ``logged_activities``: an exercise log like Fitbit's or Apple Health's
  workouts, configured as ``options.activities`` (a CSV relative to the source
  path) on any source: ``participant_id,start,end,type``. ``start``/``end``
  are ISO 8601 with ``Z`` or an offset, or local wall-clock times without a
  zone, read in the participant's zone (a repeated fall-back hour is its first
  occurrence; a skipped spring-forward time is an error naming the line).

Native activity names (FIT sports, TCX ``Sport``, log types) map to the
unified classes by :func:`activity_of`: the unified names themselves and
common spellings (``Run``, ``Biking``, ``trail_running``, ``Tennis``,
``Weights``); any other exercise name is ``other_exercise``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from sensorpipe.core.labels import ACTIVITIES, BY_NAME, LabelEvent
from sensorpipe.core.refs import UnitRef
from sensorpipe.core.windows import WindowBatch
from sensorpipe.labels.base import LabelProcessor
from sensorpipe.labels.intervals import Interval, majority_class_ns, minute_events
from sensorpipe.sources._toolkit.memo import Memo, file_versions
from sensorpipe.sources.base import SourceError, make_adapter

#: (substring of the lower-cased native name, activity); first match wins, so specific words come first
_KEYWORDS = (
    ("transition", None), ("strength", "strength_training"), ("weight", "strength_training"),
    ("tennis", "racket_sports"), ("badminton", "racket_sports"), ("squash", "racket_sports"),
    ("padel", "racket_sports"), ("pickleball", "racket_sports"), ("racket", "racket_sports"),
    ("racquet", "racket_sports"), ("run", "running"), ("jog", "running"), ("walk", "walking"), ("hik", "walking"),
    ("cycl", "cycling"), ("bik", "cycling"), ("spinning", "cycling"), ("swim", "swimming"),
    ("stand", "standing"), ("sit", "sitting"),
)


def activity_of(native: str) -> str | None:
    """Unified activity class of a native activity/sport name; None for a multisport transition or no name."""
    low = native.strip().lower()
    if not low:
        return None
    if low in ACTIVITIES:
        return low
    for word, activity in _KEYWORDS:
        if word in low:
            return activity
    return "other_exercise"


class _BoutProcessor(LabelProcessor):
    """``activity`` labels and events from :meth:`bouts` (``(start_ns, end_ns, activity)``)."""

    produces = ("activity",)

    def bouts(self, unit: UnitRef) -> list[Interval]:
        raise NotImplementedError

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        return {"activity": majority_class_ns(self.bouts(batch.unit), BY_NAME["activity"].names,
                                              batch.start_utc_min, batch.size_min)}

    def label_events(self, unit: UnitRef) -> list[LabelEvent]:
        return minute_events(self.bouts(unit), "activity")


class BasicMotionsActivity(_BoutProcessor):
    """Case labels of activity-labelled ``.ts`` recordings."""

    name = "basicmotions_activity"

    def applies(self, unit: UnitRef) -> bool:
        return unit.source.adapter == "basicmotions"

    def bouts(self, unit: UnitRef) -> list[Interval]:
        return _cached(unit, "basicmotions", lambda: make_adapter(unit.source, unit.base_dir).activity_bouts(unit))


class GarminSport(_BoutProcessor):
    """The sport of each Garmin activity (FIT session, TCX Activity, GPX track)."""

    name = "garmin_sport"

    def applies(self, unit: UnitRef) -> bool:
        return unit.source.adapter == "garmin_activity"

    def bouts(self, unit: UnitRef) -> list[Interval]:
        return _cached(unit, "garmin", lambda: garmin_bouts(make_adapter(unit.source, unit.base_dir).sport_bouts(unit)))


def garmin_bouts(sport_bouts: list[tuple[int, int, str]]) -> list[Interval]:
    """Activity bouts of the adapter's sport bouts (each file parsed once per process: the read stored its bouts),
    sorted; multisport transitions dropped."""
    out = []
    for s, e, sport in sport_bouts:
        activity = activity_of(sport)
        if activity is not None:
            out.append((s, e, activity))
    return sorted(out)


class LoggedActivities(_BoutProcessor):
    """An exercise log (``options.activities``): participant_id, start, end, type."""

    name = "logged_activities"

    def applies(self, unit: UnitRef) -> bool:
        return bool(unit.source.options.get("activities"))

    def side_files(self, unit: UnitRef) -> list[str]:
        return [str(Path(unit.base_dir, unit.source.path, unit.source.options["activities"]))]

    def bouts(self, unit: UnitRef) -> list[Interval]:
        path = Path(unit.base_dir, unit.source.path, unit.source.options["activities"])
        if not path.is_file():
            raise SourceError(f"activities file {path} does not exist; fix sources[{unit.source.name}].options."
                              f"activities (a CSV relative to the source path)")
        return _cached(unit, "log", lambda: read_activity_log(path, unit.participant.participant_id,
                                                              unit.participant.tz), (str(path),))


def read_activity_log(path: Path, pid: str, tz: str) -> list[Interval]:
    """The participant's logged bouts ``(start_ns, end_ns, activity)``, sorted; errors name the line and the fix.

    Only this participant's rows are checked (another participant's bad row
    fails that participant's unit), in file order.
    """
    out = []
    for line, row in _log_rows(path).get(pid, ()):
        activity = activity_of(row.get("type") or "")
        if activity is None:
            raise SourceError(f"{path}, line {line}: type {row.get('type')!r} names no activity; use one of "
                              f"{', '.join(ACTIVITIES)} (or a sport name such as Run, Bike, Tennis)")
        s, e = (_instant(row.get(k) or "", tz, path, line, k) for k in ("start", "end"))
        if e <= s:
            raise SourceError(f"{path}, line {line}: end {row['end']!r} is not after start {row['start']!r}")
        out.append((s, e, activity))
    return sorted(out)


_LOGS: dict[tuple[str, bytes], dict[str, list[tuple[int, dict]]]] = {}
_LOGS_SIZE = 4


def _log_rows(path: Path) -> dict[str, list[tuple[int, dict]]]:
    """The log's rows as ``(line, row)`` grouped by participant id, parsed once per process and file content.

    A cohort's units share one log: parsing all of it for every participant
    cost a csv pass per unit. The key is the
    path and a digest of the bytes (reading and hashing is a small part of
    parsing), so a log rewritten within one timestamp tick at the same size
    is still read again.
    """
    data = path.read_bytes()
    key = (str(path), hashlib.blake2b(data, digest_size=16).digest())
    rows = _LOGS.get(key)
    if rows is None:
        rows = {}
        reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
        missing = {"participant_id", "start", "end", "type"} - set(reader.fieldnames or ())
        if missing:
            raise SourceError(f"{path}: needs columns participant_id, start, end, type; missing "
                              f"{', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            rows.setdefault((row.get("participant_id") or "").strip(), []).append((line, row))
        if len(_LOGS) >= _LOGS_SIZE:
            _LOGS.pop(next(iter(_LOGS)))
        _LOGS[key] = rows
    return rows


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: what a pandas Timestamp holds (``Timestamp.min.value``, ``Timestamp.max.value``): int64 ns less NaT
_NS_BOUNDS = (-(2 ** 63 - 1), 2 ** 63 - 1)


def _instant(text: str, tz: str, path: Path, line: int, column: str) -> int:
    """UTC ns of a log time: ISO 8601 with its offset, or local wall clock in the participant's zone."""
    s = text.strip()
    dot = s.find(".")
    try:   # with an offset (what exports write): the C ISO parser, ~10x a pandas Timestamp per string
        # (not for more than 6 fraction digits: it would drop the nanoseconds pandas keeps)
        dt = datetime.fromisoformat(s) if dot < 0 or not s[dot + 7:dot + 8].isdigit() else None
    except ValueError:
        dt = None
    if dt is not None and dt.tzinfo is not None:
        ns = (dt - _EPOCH) // _MICROSECOND * 1000   # exact: the same integer pandas gives (microseconds at most)
        if _NS_BOUNDS[0] <= ns <= _NS_BOUNDS[1]:
            return ns
    # local times (DST rules), nanosecond fractions and anything unusual: pandas decides, as always
    import pandas as pd

    try:
        ts = pd.Timestamp(text.strip())
    except ValueError:
        ts = pd.NaT
    if ts is pd.NaT or not text.strip():
        raise SourceError(f"{path}, line {line}: {column} {text!r} is not a time; write ISO 8601 such as "
                          f"2024-03-04T07:30:00Z, 2024-03-04T08:30:00+01:00 or local 2024-03-04 08:30:00")
    if ts.tzinfo is None:
        try:
            ts = ts.tz_localize(tz, ambiguous=True, nonexistent="raise")
        except ValueError:  # pandas' NonExistentTimeError
            raise SourceError(f"{path}, line {line}: local {column} {text!r} does not exist in {tz} (skipped by "
                              f"a daylight-saving change); write it with its UTC offset") from None
    return int(ts.as_unit("ns").value)


# --- per-process cache: the window labels and the events of a unit need the same bouts --------------------------
_CACHE = Memo(8)


def _cached(unit: UnitRef, kind: str, read, extra_files: tuple[str, ...] = ()) -> list[Interval]:
    """``read()`` once per unit and file versions (paths, sizes, modification times) and options."""
    key = (kind, unit.key, file_versions((*unit.files, *extra_files)), repr(sorted(unit.source.options.items())),
           unit.participant.tz, repr(sorted(unit.participant.attributes.items())))
    return list(_CACHE.get(key, lambda: tuple(read())))
