"""Labelled time intervals (condition segments, activity bouts) -> per-window class labels and label events.

Every interval-style label source (segments.csv of a lab study, WESAD's label
stream, BasicMotions cases, Garmin sessions, an exercise log) reduces to a list
of ``[start, end)`` intervals with a class name. One function turns them into
the window label, so every processor answers "which class covers most
labelled time of this window" the same way, and one turns them into
:class:`~sensorpipe.core.labels.LabelEvent` s on whole minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.labels import LabelEvent


#: (start, end, class name): end exclusive, both in the same integer unit (UTC minutes or ns)
Interval = tuple[int, int, str]


def majority_class(intervals: Sequence[Interval], names: Sequence[str], win_start: np.ndarray,
                   win_len: int) -> np.ndarray:
    """Per window ``[win_start, win_start + win_len)``: index in ``names`` of the class with most labelled time.

    Overlap is measured exactly in the intervals' unit (minutes, or
    nanoseconds for sub-minute segments such as WESAD's 700-Hz label stream),
    so a window's label is the class covering most of its *labelled* time,
    however little that is; -1 where no interval overlaps the window. Ties go
    to the class listed first in ``names`` (deterministic). One iteration per
    interval, vectorized over windows. A class not in ``names`` is a caller
    bug (readers validate names and name the file) and raises ``ValueError``.
    """
    starts = np.asarray(win_start, np.int64)
    covered = np.zeros((starts.shape[0], len(names)), np.int64)
    index = {n: i for i, n in enumerate(names)}
    for s, e, name in intervals:
        if name not in index:
            raise ValueError(f"class {name!r} is not one of {', '.join(names)}")
        lo = np.maximum(starts, int(s))
        hi = np.minimum(starts + win_len, int(e))
        covered[:, index[name]] += np.maximum(hi - lo, 0)
    return np.where(covered.sum(axis=1) > 0, covered.argmax(axis=1), -1).astype(np.int64)


def majority_class_ns(intervals_ns: Sequence[Interval], names: Sequence[str], win_start_min: np.ndarray,
                      size_min: int) -> np.ndarray:
    """:func:`majority_class` for intervals in UTC nanoseconds and windows in UTC minutes."""
    return majority_class(intervals_ns, names, np.asarray(win_start_min, np.int64) * MINUTE_NS, size_min * MINUTE_NS)


def minute_events(intervals_ns: Sequence[Interval], kind: str) -> list[LabelEvent]:
    """Label events on whole UTC minutes: each interval covers every minute it touches.

    ``[floor(start), ceil(end))`` in minutes, so a 20-s WESAD segment is a
    one-minute event rather than vanishing, and two segments meeting inside a
    minute both claim it (the window labels use the exact times).
    """
    out = []
    for s, e, name in intervals_ns:
        if e <= s:
            continue
        out.append(LabelEvent(int(s) // MINUTE_NS, -(-int(e) // MINUTE_NS), kind, name))
    return out
