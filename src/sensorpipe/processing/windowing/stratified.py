"""``missingness_stratified``: LSM-style sampling of the fixed windows by missingness bucket.

Candidates are the ``fixed`` windows (size, stride, alignment) that passed the
common filters. Each falls in a missingness bucket (``window.stratified.buckets``
edges, ``[lo, hi)``, the last one closed); per participant (one unit) and
bucket at most ``per_bucket`` are kept: the ones with the smallest keyed hash
of (source, participant, window start UTC). A hash, not a seeded RNG: the
choice of one window never depends on how many others there were, on unit
order or on the runner, and a re-run picks the same windows. The rest are
counted as ``not_sampled:<lo>-<hi>``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from sensorpipe.processing.windowing.base import Candidates
from sensorpipe.processing.windowing.fixed import Fixed


def keyed_rank(salt: str, unit_key: str, start_utc_min: np.ndarray) -> np.ndarray:
    """uint64 SHA-256 of ``salt``, the unit and each window start: a stable pseudo-random order."""
    head = f"{salt}\0{unit_key}\0".encode()
    return np.array([int.from_bytes(hashlib.sha256(head + str(int(s)).encode()).digest()[:8], "big")
                     for s in start_utc_min], np.uint64)  # one hash per window


def bucket_labels(edges: tuple[float, ...]) -> list[str]:
    return [f"{lo:g}-{hi:g}" for lo, hi in zip(edges, edges[1:])]


def bucket_of(missing: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Index of each missing share's bucket ``[edge_i, edge_i+1)``; 1.0 goes to the last bucket."""
    return np.clip(np.searchsorted(np.asarray(edges), missing, side="right") - 1, 0, len(edges) - 2)


class MissingnessStratified(Fixed):
    """At most ``per_bucket`` windows per participant per missingness bucket."""

    name = "missingness_stratified"
    uses = ("stratified",)

    def select(self, cand: Candidates) -> tuple[np.ndarray, dict[str, int]]:
        sc = self.cfg.stratified
        bucket = bucket_of(cand.missing, sc.buckets)
        rank = keyed_rank(sc.salt, cand.unit_key, cand.start_utc_min)
        keep = np.zeros(len(cand), bool)
        dropped: dict[str, int] = {}
        labels = bucket_labels(sc.buckets)
        for b in np.unique(bucket):
            idx = np.flatnonzero(bucket == b)
            keep[idx[np.argsort(rank[idx], kind="stable")[:sc.per_bucket]]] = True
            if idx.size > sc.per_bucket:
                dropped[f"not_sampled:{labels[b]}"] = int(idx.size - sc.per_bucket)
        return keep, dropped
