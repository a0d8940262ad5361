"""What one unit's stages counted and how long they took, mergeable into the run's totals.

Shaped after datatrove's per-step stats: a stage says ``stats.count(reason, n)``
for what it drops or changes, and runs its work inside ``with
stats.timed(stage):``; the driver adds the units' stats up with
:meth:`UnitStats.merged` (the benchmark's stage shares). Timing is wall time of
the block only, so the orchestration between stages is not charged to any of
them, and a stage timed twice in one unit (a person's sources are read one by
one) adds up. Plain dicts inside, so the stats travel in a unit's JSON summary
and back from a worker process unchanged.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator


@dataclass
class UnitStats:
    """Counts by reason, wall seconds by stage and peaks for one unit (or, merged, for many)."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)   # high-water marks (peak RSS): merged by max

    @classmethod
    def of(cls, d: "UnitStats | dict") -> "UnitStats":
        """Stats back from their JSON form (a cached unit summary), or unchanged."""
        return d if isinstance(d, UnitStats) else cls(**d)

    def count(self, reason: str, n: int = 1) -> None:
        """Add ``n`` to ``reason``'s count (a zero still names the reason, as a drop that did not happen)."""
        self.counts[reason] = self.counts.get(reason, 0) + int(n)

    def peak(self, name: str, value: float) -> None:
        """Keep the highest ``value`` seen for ``name``."""
        self.peaks[name] = max(self.peaks.get(name, value), value)

    def under(self, prefix: str) -> dict[str, int]:
        """The counts named ``<prefix>:<rest>``, keyed by ``rest``, in the order they were first counted
        (``under("windows_dropped")`` -> ``{"too_missing": 3}``)."""
        head = f"{prefix}:"
        return {k[len(head):]: n for k, n in self.counts.items() if k.startswith(head)}

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the block's wall seconds to ``stage`` (also when the block raises or returns early)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t

    def merge(self, other: "UnitStats") -> "UnitStats":
        """Add ``other``'s counts and seconds to these and keep the higher peaks (in place); returns self."""
        for k, n in other.counts.items():
            self.count(k, n)
        for k, s in other.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + s
        for k, v in other.peaks.items():
            self.peak(k, v)
        return self

    @classmethod
    def merged(cls, many: Iterable["UnitStats"]) -> "UnitStats":
        """The sum of ``many`` (the run's totals from its units')."""
        total = cls()
        for s in many:
            total.merge(s)
        return total
