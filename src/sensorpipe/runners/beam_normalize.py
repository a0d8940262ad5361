"""The train normalization statistics on Beam: a CombineFn over the units' mergeable statistics.

Each train unit's pass-1 summary carries its :class:`FitStats` (float64
moments and an integer histogram sketch). Moments added in another order
differ in the last bits, so the combiner keeps ``(unit index, stats JSON)``
pairs, whichever bundles and workers they came through, and merges them once,
sorted by the unit's index in the launcher's plan: the order the local runner
merges in (:meth:`FitStats.merged`), hence the same
parameters bit for bit. An accumulator holds one small JSON per train unit
(the sketch may sit in a file under ``.work`` that it references).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from sensorpipe.config import NormalizationConfig
from sensorpipe.processing.normalize import FitStats
from sensorpipe.runners.stages import UnitSummary


def train_stats(indexed: tuple[int, Any]) -> list[tuple[int, dict]]:
    """``(index, pass-1 result)`` -> ``[(index, fit stats JSON)]`` for a train unit that succeeded, else ``[]``."""
    i, result = indexed
    if isinstance(result, UnitSummary) and result.split == "train":
        return [(i, result.fit_stats)]
    return []


class FitStatsCombineFn(beam.CombineFn):
    """Train statistics of all units -> their merge (a ``FitStats``); the launcher fits the parameters on it,
    so a channel without train data fails there with the local runner's error."""

    def __init__(self, channels: tuple[str, ...], cfg: NormalizationConfig) -> None:
        super().__init__()
        self.channels, self.cfg = tuple(channels), cfg

    def create_accumulator(self) -> list[tuple[int, dict]]:
        return []

    def add_input(self, acc: list[tuple[int, dict]], item: tuple[int, dict]) -> list[tuple[int, dict]]:
        acc.append(item)
        return acc

    def merge_accumulators(self, accs) -> list[tuple[int, dict]]:
        out: list[tuple[int, dict]] = []
        for acc in accs:
            out.extend(acc)
        return out

    def extract_output(self, acc: list[tuple[int, dict]]) -> FitStats:
        return FitStats.merged(self.channels, self.cfg, [stats for _, stats in sorted(acc, key=lambda item: item[0])])
