"""Progress of a pass over units: a tqdm bar on a terminal, one log line every few seconds elsewhere.

Off a terminal (CI, ``nohup``, a pipe) tqdm draws nothing, and a long run said nothing until its summary.
There :class:`ProgressLog` writes one line to stderr at most every ``run.progress_interval_s`` seconds:
units done of total, rows per second (of the units' ``rows_in`` and raw samples, when the results carry them;
units per second otherwise) and the ETA. It is driven by the updates (no thread: a driver with a second
thread no longer forks its workers, see executors.resolve_start_method), so a line comes with the first unit
finished after the interval.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

_interval_s = 10.0   # set for the length of a run by progress_every (the driver, from the run's config)


@contextmanager
def progress_every(seconds: float) -> Iterator[None]:
    """Within the block, off a terminal, passes log a progress line every ``seconds`` (0: never)."""
    global _interval_s
    before, _interval_s = _interval_s, float(seconds)
    try:
        yield
    finally:
        _interval_s = before


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ProgressLog:
    """``update(result)`` per finished unit; prints ``<desc>: 12/40 units (30%), 1,234 rows/s, ETA 0:00:42``
    when ``interval_s`` has passed since the start or the last line."""

    def __init__(self, total: int, desc: str, interval_s: float, stream: Any = None,
                 clock: Any = time.monotonic) -> None:
        self.total, self.desc, self.interval_s = total, desc, interval_s
        self.stream, self.clock = stream, clock
        self.done = self.rows = 0
        self.start = self.last = clock()

    def update(self, result: Any = None) -> None:
        self.done += 1
        self.rows += int(getattr(result, "rows_in", 0) or 0) + int(getattr(result, "raw_samples_in", 0) or 0)
        now = self.clock()
        if self.interval_s > 0 and now - self.last >= self.interval_s and self.done < self.total:
            self.last = now
            print(self.line(now), file=self.stream or sys.stderr, flush=True)

    def line(self, now: float) -> str:
        took = max(now - self.start, 1e-9)
        rate = f"{self.rows / took:,.0f} rows/s" if self.rows else f"{self.done / took:.2f} units/s"
        eta = took / self.done * (self.total - self.done) if self.done else float("nan")
        return (f"{self.desc}: {self.done}/{self.total} units ({self.done / self.total:.0%}), {rate}, "
                f"ETA {_clock(eta) if eta == eta else '?'}")

    def __enter__(self) -> "ProgressLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class _Bar:
    """A tqdm bar whose ``update`` takes the unit's result (ignored), like :class:`ProgressLog`."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, result: Any = None) -> None:
        self.bar.update()

    def __enter__(self) -> "_Bar":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)


def progress(total: int, desc: str) -> "_Bar | ProgressLog":
    """A tqdm bar on a terminal (stderr), else a :class:`ProgressLog` at the run's interval."""
    if sys.stderr is not None and hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        from sensorpipe.runners.executors import tqdm

        return _Bar(tqdm(total=total, desc=desc, unit="unit", leave=False))
    return ProgressLog(total, desc, _interval_s)
