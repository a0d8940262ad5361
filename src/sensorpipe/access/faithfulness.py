"""The caption faithfulness check over a written dataset: every stored claim re-derived from the record.

The per-window check (:func:`sensorpipe.captions.faithfulness.check_window`)
belongs to the caption levels; reading the records back needs the reader, so
the dataset-wide run lives here, one layer up.
"""

from __future__ import annotations

import json

import numpy as np

from sensorpipe.access import dataset as _dataset
from sensorpipe.captions.faithfulness import FaithfulnessReport, check_window
from sensorpipe.config import CaptionConfig, build_dataclass
from sensorpipe.core.windows import WindowBatch


def record_batch(ds, ex: dict) -> WindowBatch:
    """A one-window batch from a stored record: denormalized values, mask, local clock, label events."""
    mask = np.asarray(ex["mask"])
    values = ds.denormalize(np.asarray(ex["input"]))   # quantized in check_window, like the generator's input
    time = np.asarray(ex["time"]).astype(np.int64)           # minute_of_hour, hour_of_day, day_of_week, month
    local_min = time[:, 1] * 60 + time[:, 0]
    raw = ex.get("events", b"[]")
    events = [tuple(e) for e in json.loads(raw.decode() if isinstance(raw, bytes) else raw)]
    return WindowBatch(values=values[None], observed=~mask[None], channels=tuple(ds.channels),
                       local_min=local_min[None], events=[events])


def caption_config(ds):
    """The run's CaptionConfig, from the dataset's sensorpipe.json."""
    extra = json.loads((ds.version_dir / "sensorpipe.json").read_text())
    return build_dataclass(CaptionConfig, extra["config"].get("captions", {}), "captions")


def check_dataset(path: str, splits: list[str] | None = None, limit: int | None = None) -> FaithfulnessReport:
    """Checks every window (or the first ``limit`` per split) of a written dataset."""
    ds = _dataset.open_dataset(path)
    if "caption_claims" not in ds.features:
        raise ValueError(f"{ds.version_dir}: the records have no caption_claims (written before claims were "
                         f"stored); run the pipeline again to check its captions")
    cfg = caption_config(ds)
    report = FaithfulnessReport()
    for name in splits or list(ds.splits):
        for n, ex in enumerate(ds[name]):
            if limit is not None and n >= limit:
                break
            texts = {lvl: ex[f"caption_{lvl}"] for lvl in cfg.levels}
            claims_json = ex["caption_claims"]
            k, found = check_window(cfg, record_batch(ds, ex), texts, claims_json, ex["key"])
            report.windows += 1
            report.claims += k
            report.findings += found
            for c in json.loads(claims_json):
                name = f"{c['level']}:{c['kind']}"
                report.by_kind[name] = report.by_kind.get(name, 0) + 1
    return report
