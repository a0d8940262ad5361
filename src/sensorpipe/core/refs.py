"""Who and what a unit of work is: a participant of one source, and the picklable handle on their files.

A *unit* is one participant of one configured source. Planning (the source
adapter's ``list_units``) makes a :class:`UnitRef` per unit; workers get only
the ref and re-open the unit from it, so it holds plain data and the source's
config section, never an open file or an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class SourceSection(Protocol):
    """What a ref needs of its source's config section (``sensorpipe.config.SourceConfig``).

    A protocol, not the config class itself: the data model sits below the
    config layer and must not import it.
    """

    name: str
    adapter: str
    path: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Participant:
    """A participant of one source: its native id, IANA zone and table attributes."""

    participant_id: str
    tz: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitRef:
    """A picklable handle on one unit of work: enough to re-open it in a worker."""

    source: SourceSection
    base_dir: str
    participant: Participant
    files: tuple[str, ...]
    file_groups: tuple[int, ...] = ()  # adapter-specific group of each file (e.g. its column layout)
    #: per file, this participant's rows of a shared file as partitioned at planning ("" = read the file itself)
    partitions: tuple[str, ...] = ()
    #: per file, its content fingerprint when planning already hashed it ("" = hash it in pass 1)
    fingerprints: tuple[str, ...] = ()

    def known_fingerprints(self) -> dict[str, str]:
        return {f: fp for f, fp in zip(self.files, self.fingerprints) if fp}

    @property
    def key(self) -> str:
        return f"{self.source.name}/{self.participant.participant_id}"
