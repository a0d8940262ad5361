"""The faithfulness checker: is every caption claim true of the window it describes?

For each window it (1) re-renders each level's text from the stored claims
and requires the stored text to be exactly that (so the text cannot say more
or other than the claims), and (2) re-derives every claim from the window's
values and mask with the level's ``check``: numbers within their rounding,
trends and extrema from the bin means, event spans and times from the
minutes, label events from the record's events. :func:`check_dataset` runs
it over a written dataset, using only what the dataset stores (denormalized
``input``, ``mask``, local ``time``, ``events``, captions and claims).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import numpy as np

from sensorpipe.captions.base import Claim, get_level, quantized
from sensorpipe.core.windows import WindowBatch


@dataclass(frozen=True)
class Finding:
    key: str
    level: str
    kind: str
    reason: str


@dataclass
class FaithfulnessReport:
    windows: int = 0
    claims: int = 0
    findings: list[Finding] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


def check_window(cfg, batch: WindowBatch, texts: dict[str, str], claims_json: str, key: str = "") -> tuple[int, list[Finding]]:
    """(claims checked, findings) for one window (``batch`` of length 1)."""
    claims = [Claim.from_json(c) for c in json.loads(claims_json)]
    batch = replace(batch, values=quantized(batch.values))
    levels = {name: get_level(name)(cfg) for name in cfg.levels}
    findings = []
    for name, level in levels.items():
        mine = [c for c in claims if c.level == name]
        try:
            rendered = level.render(mine)
        except (KeyError, IndexError, ValueError) as e:
            findings.append(Finding(key, name, "text", f"claims cannot be rendered: {e!r}"))
            continue
        if rendered != texts.get(name, ""):
            findings.append(Finding(key, name, "text", f"stored text differs from its claims: {texts.get(name)!r} "
                                                       f"vs {rendered!r}"))
    for c in claims:
        if c.level not in levels:
            findings.append(Finding(key, c.level, c.kind, "claim of a level the run did not generate"))
            continue
        try:
            why = levels[c.level].check(c, batch)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            why = f"malformed claim: {e!r}"
        if why:
            findings.append(Finding(key, c.level, c.kind, why))
    return len(claims), findings


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
    from sensorpipe.config import CaptionConfig, build_dataclass

    extra = json.loads((ds.version_dir / "sensorpipe.json").read_text())
    return build_dataclass(CaptionConfig, extra["config"].get("captions", {}), "captions")


def check_dataset(path: str, splits: list[str] | None = None, limit: int | None = None) -> FaithfulnessReport:
    """Checks every window (or the first ``limit`` per split) of a written dataset."""
    from sensorpipe.access.dataset import open_dataset

    ds = open_dataset(path)
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
