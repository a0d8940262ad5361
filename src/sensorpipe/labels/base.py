"""Label processors: each maps one dataset's native labels onto the unified schema.

A processor says which sources it applies to and returns, for the windows of
one unit, arrays for the unified labels it knows. Labels no processor fills
stay explicitly missing (see :mod:`sensorpipe.labels.schema`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sensorpipe.labels.schema import BY_NAME, LABELS, missing_value
from sensorpipe.sources.base import UnitRef

_PROCESSORS: dict[str, type["LabelProcessor"]] = {}


class LabelProcessor:
    """Subclass with a ``name``; registered automatically."""

    name: ClassVar[str] = ""
    produces: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if cls.name:
            if cls.name in _PROCESSORS:
                raise TypeError(f"label processor {cls.name!r} already registered")
            unknown = [p for p in cls.produces if p not in BY_NAME]
            if unknown:
                raise TypeError(f"{cls.name}: labels {unknown} are not in the unified label schema")
            _PROCESSORS[cls.name] = cls

    def applies(self, unit: UnitRef) -> bool:
        raise NotImplementedError

    def window_labels(self, unit: UnitRef, start_utc_min: np.ndarray, size_min: int,
                      start_offset_min: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


def labels_for_windows(unit: UnitRef, start_utc_min: np.ndarray, size_min: int,
                       start_offset_min: np.ndarray) -> dict[str, np.ndarray]:
    """All unified labels for the windows of one unit, missing where no processor knows them."""
    import sensorpipe.labels.processors  # noqa: F401  (registers the built-in processors)

    n = start_utc_min.shape[0]
    out = {s.name: np.full(n, missing_value(s), np.int64 if s.kind == "class" else np.float32) for s in LABELS}
    for name in sorted(_PROCESSORS):
        proc = _PROCESSORS[name]()
        if proc.applies(unit):
            for label, arr in proc.window_labels(unit, start_utc_min, size_min, start_offset_min).items():
                out[label] = arr.astype(out[label].dtype)
    return out
