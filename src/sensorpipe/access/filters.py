"""Metadata filters for :class:`sensorpipe.access.dataset.Split` views.

Matching indices come from one sequential pass over the split's shards that
parses each record's ``tf.train.Example`` proto (TFDS's own
``tf_example_pb2``, no TensorFlow needed) and keeps only three small fields:
``dataset``, ``participant_id``, ``missingness_ratio``. The big tensors
(``input``, ``mask``, ``time``) are stored as raw bytes fields, so they are
never turned into numpy arrays: the cost is one read of every byte of the
split plus a proto parse (roughly a memcpy of each record), far cheaper than a
full decode. The resulting table (a few bytes per window) is cached on the
split, so every later filter is a numpy mask over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class MetaTable:
    """Per-window metadata of one split, in split order."""

    dataset: np.ndarray  # object array of str
    participant: np.ndarray  # object array of str
    missingness: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.missingness)


def parse_small_fields(record: bytes) -> tuple[str, str, float]:
    from tensorflow_datasets.proto import tf_example_pb2

    feat = tf_example_pb2.Example.FromString(record).features.feature
    return (feat["dataset"].bytes_list.value[0].decode(),
            feat["participant_id"].bytes_list.value[0].decode(),
            float(feat["missingness_ratio"].float_list.value[0]))


def scan(records: Iterable[bytes]) -> MetaTable:
    rows = [parse_small_fields(r) for r in records]
    return MetaTable(dataset=np.array([r[0] for r in rows], dtype=object),
                     participant=np.array([r[1] for r in rows], dtype=object),
                     missingness=np.array([r[2] for r in rows], dtype=np.float32))


def _as_set(v: str | bytes | Sequence[str | bytes] | None) -> frozenset[str] | None:
    if v is None:
        return None
    if isinstance(v, (str, bytes)):
        v = [v]
    return frozenset(x.decode() if isinstance(x, bytes) else str(x) for x in v)


def filter_key(dataset=None, participant=None, max_missing=None, min_missing=None) -> tuple:
    ds, pid = _as_set(dataset), _as_set(participant)
    for name, x in (("max_missing", max_missing), ("min_missing", min_missing)):
        if x is not None and not 0.0 <= float(x) <= 1.0:
            raise ValueError(f"{name} must be a share in [0, 1], got {x!r}")
    return (ds, pid, None if max_missing is None else float(max_missing),
            None if min_missing is None else float(min_missing))


def matching(table: MetaTable, key: tuple) -> np.ndarray:
    """Split-level indices (int64, ascending) of the windows that pass every given criterion."""
    ds, pid, hi, lo = key
    ok = np.ones(len(table), bool)
    if ds is not None:
        ok &= np.isin(table.dataset, list(ds))
    if pid is not None:
        ok &= np.isin(table.participant, list(pid))
    if hi is not None:
        ok &= table.missingness <= np.float32(hi)
    if lo is not None:
        ok &= table.missingness >= np.float32(lo)
    return np.flatnonzero(ok).astype(np.int64)
