"""Shared by the lab-recording adapters (OpenSignals, EDF, WESAD): whose zone, and when a recording began.

Lab recorders write the start of a recording as a local wall-clock date and
time with no offset. :func:`local_start_ns` places it in the participant's
IANA zone with the rules of :func:`sensorpipe.core.timeparse.parse_local`:
on the fall-back day a start in the repeated hour is its first occurrence
(the earlier, daylight-time instant); a start in the hour skipped on the
spring-forward day does not exist and raises :class:`SourceError` naming the
file, because every sample of the recording is timed from it (quarantining it
would silently lose the whole file).

A recorder cannot record twice at once: when a start in the repeated hour,
placed at its first occurrence, makes a recording overlap an earlier one of
the same device for the same participant, it is the hour's second pass, and
:func:`without_overlaps` moves it there. So two sessions recorded either side
of the clock change never share a minute.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.core.inputs import RawSignal
from sensorpipe.core.refs import Participant
from sensorpipe.sources.base import SourceError, check_zone

_FMT = "%Y-%m-%d %H:%M:%S.%f"


def participant(pid: str, table: dict[str, Participant], default_tz: str | None, where: str,
                table_path: str | None) -> Participant:
    """The participants-table row of ``pid``, else one in ``default_tz`` (``options.tz``), else an error."""
    if pid in table:
        return table[pid]
    if default_tz:
        check_zone(default_tz, "options.tz")
        return Participant(pid, default_tz)
    raise SourceError(f"{where}: participant {pid!r} has no time zone: add a row with its IANA tz to the "
                      f"participants table ({table_path or 'sources[].participants is not set'}) or set options.tz")


def local_start_ns(wall: dt.datetime, tz: str, where: str) -> int:
    """UTC nanoseconds of a naive local recording start (DST rules in the module docstring)."""
    t_ns, err = timeparse.parse_local(pa.array([wall.strftime(_FMT)]), _FMT, tz)
    if err is not None and err[0] == timeparse.NONEXISTENT:
        raise SourceError(f"{where}: the recording start {wall.isoformat(sep=' ')} does not exist in {tz} (it falls "
                          f"in the hour skipped when clocks spring forward); check the recorder's clock and the "
                          f"participant's tz, or correct the start in the file")
    if err is not None:
        raise SourceError(f"{where}: the recording start {wall!r} cannot be placed in time")
    return int(t_ns[0])


def repeat_shift_ns(wall: dt.datetime, tz: str) -> int:
    """How far the second occurrence of an ambiguous (fall-back) wall clock is after the first; 0 if unambiguous."""
    import pandas as pd

    ts = pd.Timestamp(wall)
    try:
        return int(ts.tz_localize(tz, ambiguous=False).value - ts.tz_localize(tz, ambiguous=True).value)
    except (ValueError, OverflowError):  # nonexistent (reported by local_start_ns) or out of range
        return 0


@dataclass
class Recording:
    """One file's signals, its recorder, and the shift to its start's second occurrence (0 if unambiguous)."""

    device: str
    signals: list[RawSignal] = field(default_factory=list)
    repeat_shift_ns: int = 0

    def span(self) -> tuple[int, int]:
        """First sample and end (exclusive) over all signals, UTC ns."""
        ends = [s.start_utc_ns + int(round(s.values.shape[0] * 1e9 / s.sample_rate_hz)) for s in self.signals]
        return min(s.start_utc_ns for s in self.signals), max(ends)


def without_overlaps(recordings: list[Recording]) -> list[RawSignal]:
    """Every recording's signals, a repeated-hour start moved to its second occurrence where needed (module doc).

    Recordings are taken in order of their (first-occurrence) start; one whose
    start was ambiguous and that overlaps a recording already placed for the
    same device moves by ``repeat_shift_ns``.
    """
    out: list[RawSignal] = []
    placed: dict[str, list[tuple[int, int]]] = {}
    for rec in sorted((r for r in recordings if r.signals), key=lambda r: (r.device, r.span()[0])):
        start, end = rec.span()
        spans = placed.setdefault(rec.device, [])
        if rec.repeat_shift_ns and any(start < e and s < end for s, e in spans):
            rec.signals = [dataclasses.replace(s, start_utc_ns=s.start_utc_ns + rec.repeat_shift_ns)
                           for s in rec.signals]
            start, end = start + rec.repeat_shift_ns, end + rec.repeat_shift_ns
        spans.append((start, end))
        out.extend(rec.signals)
    return out
