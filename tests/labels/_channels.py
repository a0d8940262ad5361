"""A :class:`WindowBatch` with channel data, for tests of window-derived label processors."""

from __future__ import annotations

import numpy as np

from sensorpipe.config import SourceConfig
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.core.windows import WindowBatch


def unit(attributes: dict[str, str] | None = None, participants: str | None = None,
         pid: str = "p01") -> UnitRef:
    source = SourceConfig("study", "long_table", "study", participants)
    return UnitRef(source, "/data", Participant(pid, "Europe/Berlin", attributes or {}), ())


def channel_batch(channels: dict[str, np.ndarray], start_utc_min: list[int] | None = None,
                  offset_min: int = 0, ref: UnitRef | None = None) -> WindowBatch:
    """Windows from per-channel ``[N, W]`` arrays; NaN = not observed."""
    names = tuple(channels)
    values = np.stack([np.asarray(channels[c], np.float64) for c in names], axis=2)
    n, w = values.shape[:2]
    starts = np.asarray(start_utc_min if start_utc_min is not None else np.arange(n) * w, np.int64)
    return WindowBatch(values=np.nan_to_num(values).astype(np.float32), observed=np.isfinite(values), channels=names,
                       start_utc_min=starts, tz_offset_min=np.full((n, w), offset_min, np.int16), unit=ref or unit())
