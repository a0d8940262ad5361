"""Observations: the accepted rows of one unit, in canonical channels, units and UTC time.

Validation (:mod:`sensorpipe.schema.validate`) turns an adapter's native rows
into these columns, and raw-signal features (:mod:`sensorpipe.processing.raw_features`)
add their minute values in the same form; the minute grid is aggregated from
them. ``channel`` indexes the channel registry's order
(``sensorpipe.schema.validate.CHANNEL_NAMES``); ``file_index`` and
``source_row`` are the lineage of every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Observations:
    """Accepted rows of one unit as numpy columns (registry channel index, UTC ns, canonical value)."""

    channel: np.ndarray          # int16, index into CHANNEL_NAMES
    t_utc_ns: np.ndarray         # int64
    value: np.ndarray            # float64, canonical unit
    file_index: np.ndarray       # int32, index into files
    source_row: np.ndarray       # int64
    files: list[str]
    native_index: np.ndarray     # int64, row index over the unit's native parts (for quarantine)

    @classmethod
    def empty(cls) -> "Observations":
        return cls(np.zeros(0, np.int16), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int32),
                   np.zeros(0, np.int64), [], np.zeros(0, np.int64))

    def take(self, idx: np.ndarray) -> "Observations":
        return Observations(self.channel[idx], self.t_utc_ns[idx], self.value[idx], self.file_index[idx],
                            self.source_row[idx], self.files, self.native_index[idx])

    def __len__(self) -> int:
        return int(self.t_utc_ns.shape[0])

    @staticmethod
    def concat(parts: list["Observations"]) -> "Observations":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Observations.empty()
        if len(parts) == 1:
            return parts[0]
        files: list[str] = []
        file_idx = []
        for p in parts:
            remap = np.array([_index_of(files, f) for f in p.files], np.int32)
            file_idx.append(remap[p.file_index] if len(remap) else p.file_index)
        return Observations(np.concatenate([p.channel for p in parts]), np.concatenate([p.t_utc_ns for p in parts]),
                            np.concatenate([p.value for p in parts]), np.concatenate(file_idx),
                            np.concatenate([p.source_row for p in parts]), files,
                            np.concatenate([p.native_index for p in parts]))


def _index_of(items: list[str], item: str) -> int:
    if item not in items:
        items.append(item)
    return items.index(item)
