"""The faithfulness checker: is every caption claim true of the window it describes?

For each window it (1) re-renders each level's text from the stored claims
and requires the stored text to be exactly that (so the text cannot say more
or other than the claims), and (2) re-derives every claim from the window's
values and mask with the level's ``check``: numbers within their rounding,
trends and extrema from the bin means, event spans and times from the
minutes, label events from the record's events.
:func:`sensorpipe.access.faithfulness.check_dataset` runs it over a written
dataset, using only what the dataset stores (denormalized ``input``,
``mask``, local ``time``, ``events``, captions and claims); it lives with
the reader, which sits above the caption levels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

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
