"""Label processors: each maps one dataset's native labels onto the unified schema.

A processor says which units it applies to and, for one unit's windows (a
:class:`~sensorpipe.core.windows.WindowBatch`), returns arrays for the unified labels it knows and,
optionally, time-stamped :class:`LabelEvent` s (logged activities, condition
segments) that captions describe. Labels no processor fills stay explicitly
missing (see :mod:`sensorpipe.core.labels`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np

from sensorpipe.core.labels import BY_NAME, LABELS, LabelEvent, LabelSpec, missing_value
from sensorpipe.core.refs import UnitRef
from sensorpipe.core.windows import WindowBatch
from sensorpipe.registry import Registered, Registry


def _check_processor(cls: type) -> None:
    """A processor names the unified labels it sets, all in the schema, and implements one of the two outputs."""
    if not cls.produces:
        raise TypeError(f"{cls.__name__}.produces must name the unified labels it sets")
    unknown = [p for p in cls.produces if p not in BY_NAME]
    if unknown:
        raise TypeError(f"{cls.name}: labels {unknown} are not in the unified label schema")
    if cls.window_labels is LabelProcessor.window_labels and cls.label_events is LabelProcessor.label_events:
        raise TypeError(f"{cls.__name__} must implement window_labels() or label_events()")


#: name -> processor class; built-ins are found by walking :mod:`sensorpipe.labels`, plugins in the
#: ``sensorpipe.labels`` entry-point group
_PROCESSORS = Registry("labels", what="label processor", package="sensorpipe.labels", check=_check_processor)


class LabelProcessor(Registered, registry=_PROCESSORS):
    """Subclass with a ``name`` and the labels it ``produces``: the class registers itself."""

    name: ClassVar[str] = ""
    produces: ClassVar[tuple[str, ...]] = ()

    def applies(self, unit: UnitRef) -> bool:
        raise NotImplementedError

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def side_files(self, unit: UnitRef) -> list[str]:
        """Annotation files the labels are read from (segments, activity logs): part of the unit's cache key."""
        return []

    def label_events(self, unit: UnitRef) -> list[LabelEvent]:
        """Time-stamped annotations of the unit (whole recording); none by default."""
        return []


class ChannelLabelProcessor(LabelProcessor):
    """Labels derived from one output channel's observed minutes (none when it is not an output channel)."""

    channel_name: ClassVar[str] = ""

    def applies(self, unit: UnitRef) -> bool:
        return True   # decided per batch: the channel must be an output channel

    def window_labels(self, batch: WindowBatch) -> dict[str, np.ndarray]:
        ch = batch.channel(self.channel_name)
        if ch is None or len(batch) == 0:
            return {}
        return self.from_channel(*ch)

    def from_channel(self, values: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


def register_processor(cls: type) -> type[LabelProcessor]:
    """Add a processor class under its ``name`` (subclassing already did: a no-op then; the checks run again).

    A plugin processor whose name a built-in or another plugin holds, or that produces a label outside the
    unified schema, fails while its module is imported (``__init_subclass__``); the loader names the entry point.
    """
    return _PROCESSORS.add(cls)


def label_dtype(spec: LabelSpec):
    return np.float32 if spec.kind == "float" else np.int64


def empty_labels(n: int, size_min: int) -> dict[str, np.ndarray]:
    """Every unified label, explicitly missing, for ``n`` windows."""
    out = {}
    for s in LABELS:
        shape = (n, size_min) if s.kind == "sequence" else (n,)
        out[s.name] = np.full(shape, missing_value(s), label_dtype(s))
    return out


def processors_for(unit: UnitRef) -> list[LabelProcessor]:
    """The processors (built in and installed ``sensorpipe.labels`` plugins) whose labels apply to ``unit``.

    Every processor decides for itself whether it applies, so the plugin group is loaded on the first call of
    the process (in the driver and in each spawned worker alike), not on a missing name.
    """
    _PROCESSORS.with_plugins()
    return [p for p in (_PROCESSORS[n]() for n in sorted(_PROCESSORS)) if p.applies(unit)]


def labels_for_windows(batch: WindowBatch, units: tuple[UnitRef, ...] | list[UnitRef] = ()) -> dict[str, np.ndarray]:
    """All unified labels for the windows of one unit, missing where no processor knows them.

    ``units``: the person's sources (default: ``batch.unit`` alone). Each
    source's processors label the fused windows; where two sources know the
    same label, the first source in config order wins and a later one only
    fills what is still missing. A processor that reads the windows' channels
    (CGM, sleep) runs once, since every source sees the same fused grid.
    """
    units = tuple(units) or (batch.unit,)
    out: dict[str, np.ndarray] = {}
    ran: set[str] = set()
    for unit in units:
        part = batch if unit is batch.unit else replace(batch, unit=unit)
        mine = empty_labels(len(batch), batch.size_min)
        for proc in processors_for(unit):
            if isinstance(proc, ChannelLabelProcessor) and proc.name in ran:
                continue
            ran.add(proc.name)
            for label, arr in proc.window_labels(part).items():
                mine[label] = np.asarray(arr).astype(mine[label].dtype, copy=False)   # a copy only to convert
        if not out:
            out = mine
            continue
        for spec in LABELS:   # a later source fills only what the earlier ones left missing
            gap = _is_missing(spec, out[spec.name])
            if gap.any():
                out[spec.name] = np.where(gap, mine[spec.name], out[spec.name])
    return out


def _is_missing(spec: LabelSpec, arr: np.ndarray) -> np.ndarray:
    return np.isnan(arr) if spec.kind == "float" else arr == missing_value(spec)


def events_for_windows(batch: WindowBatch, units: tuple[UnitRef, ...] | list[UnitRef] = ()) -> list[list[LabelEvent]]:
    """Per window, the label events of every source (``units``, default ``batch.unit``) overlapping it,
    clipped to the window (sorted by start)."""
    events = [e for unit in units or (batch.unit,) for proc in processors_for(unit) for e in proc.label_events(unit)]
    out: list[list[LabelEvent]] = [[] for _ in range(len(batch))]
    if not events:
        return out
    starts = np.array([e.start_utc_min for e in events], np.int64)
    ends = np.array([e.end_utc_min for e in events], np.int64)
    w_start = np.asarray(batch.start_utc_min, np.int64)
    # every (window, event) overlap at once, in window order and event order within a window
    rows, ks = np.nonzero((starts[None, :] < (w_start + batch.size_min)[:, None]) & (ends[None, :] > w_start[:, None]))
    clip_start = np.maximum(starts[ks], w_start[rows]).tolist()
    clip_end = np.minimum(ends[ks], w_start[rows] + batch.size_min).tolist()
    for i, k, a, b in zip(rows.tolist(), ks.tolist(), clip_start, clip_end):
        out[i].append(LabelEvent(a, b, events[k].kind, events[k].name))
    for evs in out:
        if len(evs) > 1:
            evs.sort(key=lambda e: (e.start_utc_min, e.end_utc_min, e.kind, e.name))
    return out


def events_to_arrays(per_window: list[list[LabelEvent]]) -> dict[str, np.ndarray]:
    """Flat arrays (for the unit cache) of per-window events; :func:`events_from_arrays` reads them back."""
    flat = [(i, e) for i, evs in enumerate(per_window) for e in evs]
    return {"event_window": np.array([i for i, _ in flat], np.int64),
            "event_start_utc_min": np.array([e.start_utc_min for _, e in flat], np.int64),
            "event_end_utc_min": np.array([e.end_utc_min for _, e in flat], np.int64),
            "event_kind": np.array([e.kind for _, e in flat], dtype=np.str_),
            "event_name": np.array([e.name for _, e in flat], dtype=np.str_)}


def events_from_arrays(arrays: dict[str, np.ndarray], n_windows: int) -> list[list[LabelEvent]]:
    out: list[list[LabelEvent]] = [[] for _ in range(n_windows)]
    for i, s, e, k, n in zip(arrays["event_window"].tolist(), arrays["event_start_utc_min"].tolist(),
                             arrays["event_end_utc_min"].tolist(), arrays["event_kind"].tolist(),
                             arrays["event_name"].tolist()):
        out[i].append(LabelEvent(s, e, k, n))
    return out
