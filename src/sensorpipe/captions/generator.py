"""The one caption generator: runs the configured levels over a unit's windows.

Paraphrases: each claim's template is drawn from a ``random.Random`` seeded
with ``captions.seed`` and the window key, so captions vary between windows
but a rerun (or another runner) writes the same text. The chosen template
index is kept in the claim, which lets the faithfulness checker re-render the
exact text from the claims.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, replace

from sensorpipe.captions.base import CaptionLevel, Claim, get_level, quantized
from sensorpipe.core.windows import WindowBatch


@dataclass(frozen=True)
class WindowCaption:
    texts: dict[str, str]        # level -> text
    claims_json: str             # every claim of every level, machine-readable

    @property
    def text(self) -> str:
        return " ".join(t for t in self.texts.values() if t)


def window_rng(seed: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


#: ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` without building an encoder per window
_CLAIMS_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def claims_to_json(claims: list[Claim]) -> str:
    return _CLAIMS_ENCODER.encode([c.to_json() for c in claims])


def level_imports(cfg) -> tuple[str, ...]:
    """The slow imports of the configured levels (``CaptionLevel.imports``), each once, in level order."""
    return tuple(dict.fromkeys(name for level in cfg.levels for name in get_level(level).imports))


class CaptionGenerator:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.levels: list[CaptionLevel] = [get_level(name)(cfg) for name in cfg.levels]

    def generate(self, batch: WindowBatch, keys: list[str]) -> list[WindowCaption]:
        batch = replace(batch, values=quantized(batch.values))
        per_level = [level.claims(batch) for level in self.levels]
        paraphrases = [{kind: len(t) for kind, t in level.templates.items()} for level in self.levels]
        out = []
        for i, key in enumerate(keys):
            randrange = window_rng(self.cfg.seed, key).randrange
            texts, every = {}, []
            for level, n_of, claims in zip(self.levels, paraphrases, per_level):
                for c in claims[i]:
                    c.template = randrange(n_of[c.kind])
                texts[level.name] = level.render(claims[i])
                every += claims[i]
            out.append(WindowCaption(texts, claims_to_json(every)))
        return out
