"""Unit conversion into each canonical channel's unit.

A conversion is affine (``canonical = native * scale + offset``), so it runs as
one vectorized multiply-add over a whole column. Unit spellings are
normalized first (``mmol/l`` and ``mmol/L`` are the same unit).
"""

from __future__ import annotations

import numpy as np

_ALIASES = {
    "mmol/l": "mmol/L", "mg/dl": "mg/dL", "°c": "degC", "c": "degC", "celsius": "degC",
    "°f": "degF", "f": "degF", "fahrenheit": "degF", "beats/min": "bpm", "1/min": "bpm",
    "us": "uS", "µs": "uS", "μs": "uS", "microsiemens": "uS", "microsiemen": "uS", "µsiemens": "uS",
    "μsiemens": "uS", "m/s2": "m/s^2", "m/s²": "m/s^2",
    "percent": "%", "kcal": "kcal/min", "steps": "steps/min", "count": "steps/min",
}

#: (native, canonical) -> (scale, offset)
_AFFINE: dict[tuple[str, str], tuple[float, float]] = {
    ("mmol/L", "mg/dL"): (18.0156, 0.0),
    ("degF", "degC"): (5.0 / 9.0, -32.0 * 5.0 / 9.0),
    ("1/64 g", "mg"): (1000.0 / 64.0, 0.0),
    ("g", "mg"): (1000.0, 0.0),
    ("m/s^2", "mg"): (1000.0 / 9.80665, 0.0),
    ("s", "ms"): (1000.0, 0.0),
    ("fraction", "%"): (100.0, 0.0),
    ("km/min", "m/min"): (1000.0, 0.0),
    ("cm/min", "m/min"): (0.01, 0.0),
    ("mi/min", "m/min"): (1609.344, 0.0),
}


class UnitError(ValueError):
    """A native unit with no known conversion to the channel's unit."""


def normalize_unit(unit: str) -> str:
    u = unit.strip()
    return _ALIASES.get(u.lower(), u)


def affine(native: str, canonical: str) -> tuple[float, float]:
    """Scale and offset from ``native`` to ``canonical``; raises UnitError naming both."""
    n, c = normalize_unit(native), normalize_unit(canonical)
    if n == c:
        return 1.0, 0.0
    try:
        return _AFFINE[(n, c)]
    except KeyError:
        known = sorted({a for a, b in _AFFINE if b == c} | {c})
        raise UnitError(f"no conversion from {native!r} to {canonical!r}; known units for it: {', '.join(known)}") from None


def convert(values: np.ndarray, native: str, canonical: str) -> np.ndarray:
    scale, offset = affine(native, canonical)
    if scale == 1.0 and offset == 0.0:
        return values
    return values * scale + offset
