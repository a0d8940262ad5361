"""Normalization fitted on the train split only, with mergeable statistics.

Pass one computes :class:`RunningStats` per unit (count, mean, M2, min, max
over observed minutes of kept windows); they merge exactly in any grouping
(Chan et al.), and merging in sorted unit order makes the parameters
identical on every runner. Pass two applies ``(x - mean) / std`` and clips to
``+/- clip_sigma``; channels with method ``none`` pass through unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.config import NormalizationConfig


@dataclass
class RunningStats:
    """Mergeable per-channel moments over observed values (float64)."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def zeros(cls, C: int) -> "RunningStats":
        return cls(np.zeros(C, np.int64), np.zeros(C), np.zeros(C), np.full(C, np.inf), np.full(C, -np.inf))

    @classmethod
    def of(cls, values: np.ndarray, observed: np.ndarray) -> "RunningStats":
        """Stats of ``values [..., C]`` where ``observed``."""
        C = values.shape[-1]
        v = values.reshape(-1, C).astype(np.float64)
        o = observed.reshape(-1, C)
        cnt = o.sum(axis=0)
        s = np.where(o, v, 0.0).sum(axis=0)
        mean = np.divide(s, cnt, out=np.zeros(C), where=cnt > 0)
        m2 = np.where(o, (v - mean) ** 2, 0.0).sum(axis=0)
        mn = np.where(o, v, np.inf).min(axis=0) if v.size else np.full(C, np.inf)
        mx = np.where(o, v, -np.inf).max(axis=0) if v.size else np.full(C, -np.inf)
        return cls(cnt.astype(np.int64), mean, m2, mn, mx)

    def merge(self, other: "RunningStats") -> "RunningStats":
        n = self.count + other.count
        delta = other.mean - self.mean
        safe = np.maximum(n, 1)
        mean = self.mean + delta * other.count / safe
        m2 = self.m2 + other.m2 + delta ** 2 * self.count * other.count / safe
        return RunningStats(n, mean, m2, np.minimum(self.min, other.min), np.maximum(self.max, other.max))

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.divide(self.m2, self.count, out=np.zeros_like(self.m2), where=self.count > 0))

    def to_json(self) -> dict:
        return {k: v.tolist() for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "RunningStats":
        return cls(np.array(d["count"], np.int64), *(np.array(d[k], np.float64) for k in ("mean", "m2", "min", "max")))


@dataclass(frozen=True)
class NormParams:
    """Per-channel parameters, as stored in ``normalization.json`` and the metadata DB."""

    channels: tuple[str, ...]
    methods: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip_sigma: float
    count: tuple[int, ...]

    @classmethod
    def fit(cls, channels: tuple[str, ...], stats: RunningStats, cfg: NormalizationConfig) -> "NormParams":
        methods = tuple(cfg.per_channel.get(c, registry.get(c).normalize) for c in channels)
        std = stats.std
        mean = np.where(stats.count > 0, stats.mean, 0.0)
        std = np.where((stats.count > 1) & (std > 1e-12), std, 1.0)
        ident = np.array([m == "none" for m in methods])
        mean = np.where(ident, 0.0, mean)
        std = np.where(ident, 1.0, std)
        return cls(channels, methods, tuple(float(x) for x in mean), tuple(float(x) for x in std),
                   cfg.clip_sigma, tuple(int(x) for x in stats.count))

    def apply(self, x: np.ndarray) -> np.ndarray:
        mean = np.array(self.mean, np.float32)
        std = np.array(self.std, np.float32)
        z = (x - mean) / std
        zscore = np.array([m == "zscore" for m in self.methods])
        clipped = np.clip(z, -self.clip_sigma, self.clip_sigma)
        return np.where(zscore, clipped, z).astype(np.float32)

    def invert(self, z: np.ndarray) -> np.ndarray:
        return (z * np.array(self.std, np.float32) + np.array(self.mean, np.float32)).astype(np.float32)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "NormParams":
        return cls(tuple(d["channels"]), tuple(d["methods"]), tuple(d["mean"]), tuple(d["std"]),
                   float(d["clip_sigma"]), tuple(d["count"]))
