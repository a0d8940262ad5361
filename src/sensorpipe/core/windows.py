"""The windows of one unit: the one container that windowing, labels and captions share.

:func:`sensorpipe.processing.window.cut_windows` makes a :class:`WindowBatch`
from the minute grid (with what it dropped, by reason); pass 1 adds the unit
and its devices' reading intervals for the label processors; pass 2 rebuilds
one from the unit cache, with the label events relative to each window, for
the caption levels; the faithfulness check makes a one-window batch from a
stored record. So a label processor and a caption level read the same fields
under the same names.

``values`` are in real units before imputation: only ``observed`` cells are
data, so nothing derived from a batch ever counts an imputed minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensorpipe.core.grid import DAY_MIN
from sensorpipe.core.refs import UnitRef

#: A label event as captions read it: ``(start_min, end_min, kind, name)``, minutes relative to the window's
#: first minute, clipped to the window (``sensorpipe.core.labels.LabelEvent`` holds UTC minutes instead).
WindowEvent = tuple[int, int, str, str]


@dataclass(eq=False, kw_only=True)
class WindowBatch:
    """``N`` windows of ``size_min`` minutes over ``C`` output channels, stacked.

    ``start_utc_min`` and ``tz_offset_min`` place every minute in UTC and
    local time; ``local_min`` (minutes after local midnight, derived from
    them unless given, e.g. from a record's stored clock) lets captions state
    wall-clock times even across a DST change. ``reading_interval_min`` maps
    a channel to the reading interval (minutes) its sources declare
    (``SourceAdapter.reading_interval_min``, e.g. Dexcom glucose every 5); a
    channel not in it has its interval inferred from the data (see
    :mod:`sensorpipe.labels.cgm`). ``dropped`` and ``minutes_not_windowed``
    are what windowing did not keep, counted by reason (they reach the
    metadata); ``grid_start_minute`` is the UTC minute of the grid's row 0,
    so :attr:`start_row` finds each window on the grid it was cut from.
    """

    values: np.ndarray                       # [N, W, C] float32, real units; only observed cells are data
    observed: np.ndarray                     # [N, W, C] bool
    channels: tuple[str, ...]
    start_utc_min: np.ndarray | None = None  # [N] int64, UTC minute since epoch of each window's first minute
    tz_offset_min: np.ndarray | None = None  # [N, W] int16, local UTC offset in force at each minute
    local_min: np.ndarray | None = None      # [N, W] int64, minutes after local midnight
    unit: UnitRef | None = None              # the unit the windows belong to (label processors read it)
    reading_interval_min: dict[str, float] = field(default_factory=dict)
    events: list[list[WindowEvent]] = field(default_factory=list)   # per window, sorted by start
    grid_start_minute: int = 0
    dropped: dict[str, int] = field(default_factory=dict)           # windows not kept, by reason
    minutes_not_windowed: int = 0            # minutes with data that no kept window covers

    def __post_init__(self) -> None:
        n, w = self.values.shape[:2]
        if self.start_utc_min is None:
            self.start_utc_min = np.zeros(n, np.int64)
        if self.tz_offset_min is None:
            self.tz_offset_min = np.zeros((n, w), np.int16)
        if self.local_min is None:
            local = self.start_utc_min.astype(np.int64)[:, None] + np.arange(w) + self.tz_offset_min
            self.local_min = local % DAY_MIN
        if not self.events:
            self.events = [[] for _ in range(n)]
        self._cache: dict[str, Any] = {}

    @classmethod
    def empty(cls, size_min: int, channels: tuple[str, ...]) -> "WindowBatch":
        """No window at all (a unit without data), with the shapes a batch of ``size_min`` windows has."""
        C = len(channels)
        return cls(values=np.zeros((0, size_min, C), np.float32), observed=np.zeros((0, size_min, C), bool),
                   channels=tuple(channels))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def size_min(self) -> int:
        return int(self.values.shape[1])

    @property
    def start_row(self) -> np.ndarray:
        """``[N]`` int64: the grid row where each window starts."""
        return self.start_utc_min - self.grid_start_minute

    def index(self, name: str) -> int | None:
        """Column of channel ``name``, or None when it is not an output channel."""
        return self.channels.index(name) if name in self.channels else None

    def channel(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(values [N, W], observed [N, W])`` of one channel, or None when it is not an output channel."""
        j = self.index(name)
        if j is None:
            return None
        return self.values[:, :, j], self.observed[:, :, j]

    def local_day(self) -> np.ndarray:
        """Local calendar day (days since 1970-01-01) of each window's first minute."""
        off = self.tz_offset_min[:, 0].astype(np.int64) if len(self) else np.zeros(0, np.int64)
        return (self.start_utc_min + off) // DAY_MIN

    def window(self, i: int) -> "WindowBatch":
        """Window ``i`` alone, as a batch of one."""
        return WindowBatch(values=self.values[i:i + 1], observed=self.observed[i:i + 1], channels=self.channels,
                           start_utc_min=self.start_utc_min[i:i + 1], tz_offset_min=self.tz_offset_min[i:i + 1],
                           local_min=self.local_min[i:i + 1], unit=self.unit,
                           reading_interval_min=self.reading_interval_min, events=[self.events[i]],
                           grid_start_minute=self.grid_start_minute)

    def channel_major(self) -> tuple[np.ndarray, np.ndarray]:
        """``values`` and ``observed`` as contiguous ``[N, C, W]`` copies, made once per batch: every
        level's per-channel reductions read contiguous minutes (faster than strided across interleaved
        channels), and the levels share the copies instead of transposing the window each."""
        if "cm" not in self._cache:
            self._cache["cm"] = (np.ascontiguousarray(self.values.transpose(0, 2, 1)),
                                 np.ascontiguousarray(self.observed.transpose(0, 2, 1)))
        return self._cache["cm"]

    def any_observed(self) -> np.ndarray:
        """``[N, W]``: minutes with at least one channel observed (computed once per batch)."""
        if "any" not in self._cache:   # over the channel-major copy: rows of minutes OR-ed, 50x the axis-2 any
            self._cache["any"] = self.channel_major()[1].any(axis=1)
        return self._cache["any"]
