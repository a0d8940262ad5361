"""Helpers of the actigraphy adapter tests: read and validate a source, and the minute grid of one channel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from sensorpipe.config import SourceConfig, ValidationConfig
from sensorpipe.processing.grid import build_grid
from sensorpipe.schema.validate import validate_unit
from sensorpipe.sources.base import make_adapter
from tests.sources.adapter_case import DUMMY_ROOT

DUMMY = DUMMY_ROOT / "actigraphy"
MINUTE_NS = 60_000_000_000
#: archived sample recordings are dated as far back as 1918
ARCHIVE = ValidationConfig(plausible_from=dt.date(1900, 1, 1))


def read(adapter: str, path: Path, participants: Path | None = None, validation: ValidationConfig | None = None,
         **options) -> dict:
    """Validate every unit; returns {participant: (UnitInput, ValidationResult)}."""
    src = SourceConfig("acti", adapter, str(path), str(participants) if participants else None, options)
    a = make_adapter(src, str(path.parent))
    args = (validation,) if validation is not None else ()
    return {u.participant.participant_id: (inp := a.read_unit(u), validate_unit(inp, a.schema(), *args))
            for u in a.list_units()}


def minutes(res, channel: str, tz: str = "UTC") -> dict[int, float]:
    """UTC minute (minutes since 1970) -> the minute grid's value of ``channel``, observed minutes only."""
    grid = build_grid(res.observations, (channel,), tz)
    if grid is None:
        return {}
    seen = grid.observed[:, 0]
    idx = np.flatnonzero(seen)
    return {int(grid.start_minute + i): float(grid.values[i, 0]) for i in idx}


def expected(t_utc_s: np.ndarray, values: np.ndarray, how: str) -> dict[int, float]:
    """The same per-minute reduction (sum, mean or min) done the plain way: epochs binned by their UTC minute,
    NaN epochs skipped."""
    out: dict[int, list[float]] = {}
    for t, v in zip(t_utc_s.tolist(), values.tolist()):
        if not np.isnan(v):
            out.setdefault(int(t // 60), []).append(v)
    reduce = {"sum": np.sum, "min": np.min, "mean": lambda v: np.float32(np.mean(v))}[how]
    return {m: float(reduce(v)) for m, v in out.items()}


def utc_s(wall: dt.datetime, tz: str) -> int:
    """Epoch seconds of a local wall clock (the first occurrence in a repeated hour: fold=0)."""
    return int(wall.replace(tzinfo=ZoneInfo(tz)).timestamp())
