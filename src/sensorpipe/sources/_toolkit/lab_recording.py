"""What the lab-recording adapters share (EDF, BIOPAC AcqKnowledge, PhysioNet WFDB): files, owners, labels, units.

A lab recording is one file (or one record) holding several evenly sampled
signals with a label and a physical unit each. These adapters differ only in
how they open a file and find its start time; they share:

- how files become units (:class:`LabRecordingAdapter`): ``participant_from``
  ``stem`` (the file stem is the participant id), ``folder`` (the top folder
  under the source path) or ``table`` (the participants table's ``file``
  column, ``;``-separated paths relative to the source path);
- how labels pick the signal of each raw kind (:func:`choose`): a kind takes
  the first label matching its first pattern that matches any label, so a
  recording with two respiration belts gives one respiration signal;
- how units are checked (:func:`in_unit`): ECG to mV, EDA to uS and
  temperature to degC must convert, others are kept as written.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from sensorpipe.config import ConfigError
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.sources._toolkit import recording_start as _recording_start
from sensorpipe.schema.registry import SourceSchema
from sensorpipe.sources.base import SourceAdapter, SourceError
from sensorpipe.units import UnitError, affine

#: physical dimension -> factor to mV (ECG)
TO_MV = {"uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "mv": 1.0, "v": 1e3, "volts": 1e3, "millivolts": 1.0}
#: kinds whose values must be in a canonical unit (feature extractors convert them)
TARGET_UNIT = {"eda": "uS", "temp": "degC"}


@dataclass(frozen=True)
class LabOptions:
    """Options every lab-recording adapter takes; a subclass sets ``default_kinds`` and the ``glob`` and
    ``kinds`` defaults."""

    default_kinds: ClassVar[dict[str, tuple[str, ...]]] = {}
    glob: str = "**/*"
    tz: str | None = None
    participant_from: Literal["stem", "folder", "table"] = "stem"
    #: kind -> label patterns (fnmatch, case-insensitive), tried in order
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: label -> physical unit, overriding the file's
    units: dict[str, str] = field(default_factory=dict)

    def validate(self, path: str) -> None:
        unknown = sorted(set(self.kinds) - set(self.default_kinds))
        if unknown:
            raise ConfigError(f"{path}.kinds: {unknown[0]!r} is not a raw signal kind this adapter reads; "
                              f"use {', '.join(self.default_kinds)}")


@dataclass(frozen=True)
class TimedLabOptions(LabOptions):
    """For formats whose files may carry no clock time: their local starts, given in the config."""

    #: file name or path relative to the source path -> local wall-clock start ``YYYY-MM-DDThh:mm:ss``
    start_times: dict[str, str] = field(default_factory=dict)


class LabRecordingAdapter(SourceAdapter):
    """Base of the one-recording-per-file adapters: units from files, recordings placed without overlaps.

    Subclasses set ``Options`` (with ``glob``, ``tz``, ``participant_from``,
    ``kinds`` and ``units``) and implement :meth:`read_recording`.
    """

    def read_recording(self, path: Path, who: Participant) -> _recording_start.Recording:
        raise NotImplementedError

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(),
                            raw_signals=tuple(f"{'|'.join(p)}:{k}" for k, p in sorted(self.options.kinds.items())))

    def list_units(self) -> list[UnitRef]:
        root, paths = self.files_matching(self.options.glob)
        if not paths:
            raise SourceError(f"source {self.source.name!r}: no file matches {self.options.glob!r} under {root}")
        table = self.participants()
        owner = self._owners(table) if self.options.participant_from == "table" else {}
        files: dict[str, list[Path]] = {}
        for p in paths:
            rel = p.relative_to(root)
            if self.options.participant_from == "stem":
                pid = p.stem
            elif self.options.participant_from == "folder":
                pid = rel.parts[0] if len(rel.parts) > 1 else p.stem
            else:
                pid = owner.get(rel.as_posix())
                if pid is None:
                    raise SourceError(f"{p}: no row of the participants table ({self.source.participants}) names "
                                      f"{rel.as_posix()!r} in its file column; add it (files are ';'-separated)")
            files.setdefault(pid, []).append(p)
        return [self.unit_ref(_recording_start.participant(pid, table, self.options.tz, str(fs[0]),
                                                           self.source.participants), fs)
                for pid, fs in sorted(files.items())]

    def _owners(self, table) -> dict[str, str]:
        owner: dict[str, str] = {}
        for pid, part in table.items():
            for f in (part.attributes.get("file") or "").split(";"):
                if f.strip():
                    owner[Path(f.strip()).as_posix()] = pid
        if not owner:
            raise SourceError(f"participants table {self.source.participants}: participant_from is 'table' but no "
                              f"row has a file column naming its recordings")
        return owner

    def read_unit(self, unit: UnitRef) -> UnitInput:
        recordings = [self.read_recording(Path(f), unit.participant) for f in unit.files]
        return UnitInput(unit, [], _recording_start.without_overlaps(recordings))

    def configured_start(self, path: Path) -> dt.datetime | None:
        """The local wall-clock start ``options.start_times`` gives this file (by path relative to the source
        path, or by file name), or None."""
        starts = getattr(self.options, "start_times", {}) or {}
        root = self.root if self.root.is_dir() else self.root.parent
        for key in (path.relative_to(root).as_posix() if path.is_relative_to(root) else None, path.name):
            if key is not None and key in starts:
                try:
                    return dt.datetime.fromisoformat(starts[key])
                except ValueError:
                    raise SourceError(f"options.start_times[{key!r}] = {starts[key]!r} is not an ISO date and time "
                                      f"(YYYY-MM-DDThh:mm:ss, local wall clock)") from None
        return None


def choose(labels: list[str], kinds: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """kind -> signal index: the first label matching the kind's first pattern that matches any label."""
    chosen: dict[str, int] = {}
    taken: set[int] = set()
    for kind, patterns in kinds.items():
        for pat in patterns:
            hits = [i for i, lab in enumerate(labels) if i not in taken and fnmatch.fnmatch(lab.lower(), pat.lower())]
            if hits:
                chosen[kind] = hits[0]
                taken.add(hits[0])
                break
    return chosen


def in_unit(values: np.ndarray, kind: str, unit: str, label: str, path: Path) -> tuple[np.ndarray, str]:
    """ECG to mV; EDA and temperature checked against their canonical units; others as they are."""
    fix = f"set options.units.{label} to the signal's unit"
    if kind == "ecg":
        scale = TO_MV.get(unit.lower())
        if scale is None:
            raise SourceError(f"{path}: ECG signal {label!r} has physical dimension {unit!r}; expected uV, mV or V "
                              f"({fix})")
        return values * scale, "mV"
    if kind in TARGET_UNIT:
        try:
            affine(unit, TARGET_UNIT[kind])
        except UnitError:
            raise SourceError(f"{path}: {kind.upper()} signal {label!r} has physical dimension {unit!r}, which does "
                              f"not convert to {TARGET_UNIT[kind]} ({fix})") from None
        return values, unit
    return values, unit or "a.u."
