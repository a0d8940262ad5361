"""What CGM adapters share: the values a censored reading (``Low`` / ``High``, ``LO`` / ``HI``) takes, and its count.

A CGM reports readings beyond its range as text, not numbers. The Dexcom
Clarity and LibreView adapters keep them at the glucose channel's bounds under
their own native fields and count them per unit with :func:`censored_counts`.
"""

from __future__ import annotations

import numpy as np

from sensorpipe import channels as registry
from sensorpipe._arrow import dictionary_codes
from sensorpipe.core.inputs import UnitInput


def censored_values_mg_dl() -> tuple[float, float]:
    """(below-range, above-range) glucose value of a censored CGM reading: the glucose channel's registry
    bounds, which no accepted real reading passes (validation clips to them), so the order of readings holds."""
    ch = registry.get("glucose")
    return float(ch.valid_min), float(ch.valid_max)


def censored_counts(inp: UnitInput, fields: tuple[str, ...]) -> dict[str, int]:
    """Per-unit count of native rows of each censored-reading field (Dexcom: EGVs reported ``High`` / ``Low``)."""
    out = {f: 0 for f in fields}
    for part in inp.native:
        codes, names = dictionary_codes(part.column("field"))
        counts = np.bincount(codes[codes >= 0], minlength=len(names))
        for name in out:
            if name in names:
                out[name] += int(counts[names.index(name)])
    return out
