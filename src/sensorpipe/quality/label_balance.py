"""Label coverage and class balance of a run: windows per label class, counted per unit in pass 1.

Why counted in pass 1: the windows' labels exist there as arrays (runners/stages.py) and are gone by the time
the run is recorded, and a count per unit is a handful of integers that merge by addition. Recorded as
quality metrics of scope ``dataset``: ``label_windows:<label>:<class>`` (``missing`` included) and
``label_coverage:<label>``, the share of windows with the label; the same scope as ``windows_dropped:<reason>``,
so readers that take any other scope for a source need no change. Drift (quality/drift.py), the report and the ``label_coverage`` alert read.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.core.labels import LABELS

PREFIX = "label_windows"


def count_label_windows(labels: dict[str, np.ndarray]) -> dict[str, int]:
    """``label_windows:<label>:<class>`` -> windows, for one unit's window labels. A class label counts each
    class name (``missing`` for -1); a float label counts ``present`` / ``missing`` (NaN); a per-minute sequence
    counts windows with at least one labelled minute as ``present``."""
    out: dict[str, int] = {}
    for spec in LABELS:
        v = labels.get(spec.name)
        if v is None or not len(v):
            continue
        key = f"{PREFIX}:{spec.name}"
        if spec.kind == "class":
            codes = np.asarray(v, np.int64)
            counts = np.bincount(codes[codes >= 0], minlength=len(spec.names))
            out.update({f"{key}:{name}": int(n) for name, n in zip(spec.names, counts) if n})
            present = int(counts.sum())
        elif spec.kind == "float":
            present = int(np.count_nonzero(~np.isnan(np.asarray(v, np.float64))))
            if present:
                out[f"{key}:present"] = present
        else:
            present = int(np.count_nonzero((np.asarray(v).reshape(len(v), -1) >= 0).any(axis=1)))
            if present:
                out[f"{key}:present"] = present
        if len(v) - present:
            out[f"{key}:missing"] = len(v) - present
    return out


def label_metrics(units) -> list[QualityRecord]:
    """The run's label metrics from its units' counts (``UnitStats`` under ``label_windows``)."""
    from sensorpipe.metadata.records import QualityRecord   # not at import: pass 1's workers need no SQLAlchemy

    total: dict[str, int] = {}
    for u in units:
        for k, n in u.stats.under(PREFIX).items():
            total[k] = total.get(k, 0) + n
    by_label: dict[str, dict[str, int]] = {}
    for k, n in total.items():
        label, cls = k.split(":", 1)
        by_label.setdefault(label, {})[cls] = n
    out = []
    for label in (s.name for s in LABELS):
        counts = by_label.get(label)
        if not counts:
            continue
        out += [QualityRecord("dataset", f"{PREFIX}:{label}:{c}", n) for c, n in sorted(counts.items())]
        n = sum(counts.values())
        out.append(QualityRecord("dataset", f"label_coverage:{label}", (n - counts.get("missing", 0)) / n if n else 0.0))
    return out
