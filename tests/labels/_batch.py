"""A :class:`WindowBatch` of given window starts for label-processor tests (no channel data needed)."""

from __future__ import annotations

import numpy as np

from sensorpipe.core.refs import UnitRef
from sensorpipe.core.windows import WindowBatch


def minute(iso: str) -> int:
    """UTC minute of an ISO time without zone (read as UTC)."""
    return int(np.datetime64(iso, "m").astype(np.int64))


def batch(unit: UnitRef, starts_iso: list[str], size_min: int, offset_min: int = 0) -> WindowBatch:
    starts = np.array([minute(s) for s in starts_iso], np.int64)
    n = starts.shape[0]
    return WindowBatch(values=np.zeros((n, size_min, 0), np.float32), observed=np.zeros((n, size_min, 0), bool),
                       channels=(), start_utc_min=starts, tz_offset_min=np.full((n, size_min), offset_min, np.int16),
                       unit=unit)
