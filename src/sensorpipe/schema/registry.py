"""Per-source schemas: what each native field means, in which unit, at which time.

A :class:`SourceSchema` is declared by an adapter (for configurable adapters,
built from the config). Its fingerprint versions it in the metadata database:
a changed schema is a new version, an unchanged one is found again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

from sensorpipe import channels as registry
from sensorpipe.config import stable_hash
from sensorpipe.units import affine

TimeFormat = Literal["epoch_ms", "epoch_s", "iso", "local", "timestamp"]
TIME_CONVENTIONS = {
    "epoch_ms": "UTC, integer milliseconds since 1970-01-01",
    "epoch_s": "UTC, seconds since 1970-01-01",
    "iso": "ISO-8601 with Z or an explicit offset",
    "local": "local wall clock with no offset, in the participant's IANA zone",
    "timestamp": "Arrow/Parquet timestamp column: absolute with a zone, UTC when naive",
}


@dataclass(frozen=True)
class FieldSpec:
    """One native field: the canonical channel it feeds and its native unit."""

    name: str
    channel: str
    unit: str
    categories: dict[str, int] = field(default_factory=dict)

    def check(self) -> None:
        ch = registry.get(self.channel)
        affine(self.unit, ch.unit)  # raises UnitError naming both units


@dataclass(frozen=True)
class SourceSchema:
    """The declared schema of one source, with a version bumped on change."""

    adapter: str
    version: int
    time_convention: str
    fields: tuple[FieldSpec, ...]
    raw_signals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in self.fields:
            f.check()

    @property
    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def fingerprint(self) -> str:
        return stable_hash(asdict(self))
