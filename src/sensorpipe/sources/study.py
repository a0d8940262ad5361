"""Studies: one person of one study is the unit of work, whatever sources saw them.

Sources that declare the same ``study`` describe the same people. A person's
rows from every such source (a wearable's minute file, a CGM export, a lab
recording) are read and validated per source, then fused onto one minute
grid, so a window carries every channel any of their sources observed, and the
pseudonym and the split come from (study, participant id) alone: one person is
never in two splits.

A participant id that appears in several sources of a study is one person.
Where sources name a person differently, the study's ``id_map`` (a CSV of
``source, source_participant_id, participant_id``) links them; ids it does not
list stay as they are.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sensorpipe.config import PipelineConfig
from sensorpipe.core.refs import UnitRef
from sensorpipe.sources._toolkit import limits as _limits
from sensorpipe.sources.base import SourceAdapter, SourceError

ID_MAP_COLUMNS = ("source", "source_participant_id", "participant_id")


@dataclass(frozen=True)
class PersonUnit:
    """One person of one study: the study's participant id and each source's unit of them.

    ``parts`` are in the order of ``sources`` in the config, which is also the
    default priority when two sources observe one channel in the same minute.
    """

    study: str
    participant_id: str
    parts: tuple[UnitRef, ...]

    @classmethod
    def of(cls, unit: "PersonUnit | UnitRef") -> "PersonUnit":
        """A person as it is, or one source's unit as a person of that source's study (no id map)."""
        if isinstance(unit, PersonUnit):
            return unit
        return cls(unit.source.study, unit.participant.participant_id, (unit,))

    @property
    def key(self) -> str:
        return f"{self.study}/{self.participant_id}"

    @property
    def tz(self) -> str:
        """The person's IANA zone: the first source's (a study's sources should agree; see the README)."""
        return self.parts[0].participant.tz

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(p.source.name for p in self.parts)


def read_id_map(path: Path, sources: set[str]) -> dict[tuple[str, str], str]:
    """``(source, source participant id) -> study participant id``, naming the line of any problem."""
    if not path.exists():
        raise SourceError(f"id map {path} does not exist; fix studies.<study>.id_map")
    out: dict[tuple[str, str], str] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ID_MAP_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SourceError(f"{path}: needs columns {', '.join(ID_MAP_COLUMNS)}; missing {', '.join(missing)}")
        for line, row in enumerate(reader, start=2):
            src, native, pid = ((row.get(c) or "").strip() for c in ID_MAP_COLUMNS)
            if not (src and native and pid):
                raise SourceError(f"{path}, line {line}: source, source_participant_id and participant_id must all "
                                  f"be filled")
            if src not in sources:
                raise SourceError(f"{path}, line {line}: source {src!r} is not a source of this study "
                                  f"({', '.join(sorted(sources))})")
            if out.get((src, native), pid) != pid:
                raise SourceError(f"{path}, line {line}: {src}/{native} is mapped to {out[(src, native)]!r} "
                                  f"and to {pid!r}; a source's participant is one person")
            out[(src, native)] = pid
    return out


def plan_persons(cfg: PipelineConfig, adapters: list[SourceAdapter]) -> list[PersonUnit]:
    """Group every source's units into persons of studies.

    Persons come in the order they first appear (sources in config order, each
    source's units in its own order), so a study of one source keeps its
    units' order and the normalization statistics merge as before. Two units
    of one source mapped to the same person are an error: the adapter already
    gathers all of a participant's files into one unit.
    """
    _limits.use(cfg.limits)   # listing units reads inputs (a shared file is partitioned here)
    sources_of: dict[str, set[str]] = {}
    for a in adapters:
        sources_of.setdefault(a.source.study, set()).add(a.source.name)
    id_maps = {study: read_id_map(Path(cfg.resolve(sc.id_map)), sources_of.get(study, set()))
               for study, sc in cfg.studies.items() if sc.id_map}
    parts: dict[tuple[str, str], list[UnitRef]] = {}    # insertion order = first appearance
    for a in adapters:
        study, id_map, seen = a.source.study, id_maps.get(a.source.study, {}), {}
        for u in a.list_units():
            native = u.participant.participant_id
            pid = id_map.get((a.source.name, native), native)
            if pid in seen:
                raise SourceError(f"source {a.source.name!r}: participants {seen[pid]!r} and {native!r} are both "
                                  f"mapped to study participant {pid!r}; fix the id map of study {study!r}")
            seen[pid] = native
            parts.setdefault((study, pid), []).append(u)
    return [PersonUnit(study, pid, tuple(refs)) for (study, pid), refs in parts.items()]
