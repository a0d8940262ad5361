"""Drift between two dataset versions: per-channel distribution distance, window counts, label balance.

What a reviewer asks before training on a new version: did the values move, did the data shrink, did the
classes shift? Everything comes from the metadata database, so any two recorded versions compare without their
shards or the pass-1 cache (which is not kept with a version).

**Distances, per channel** (observed values of kept windows, real units), both from the 101 quantiles each run
stores per split (``channel_quantiles``, from the merged histogram sketches of processing/sketch.py: within
half a sketch bin of the exact quantile, extremes exact):

* **PSI**, the population stability index, over ten bins cut at the *old* version's deciles:
  ``sum((new - old) * ln(new / old))`` over the bins' shares (each floored at 1e-4 so an emptied bin counts
  instead of dividing by zero). It is unitless and scale-free, so one threshold serves heart rate and glucose
  alike, and it has conventional readings (below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major
  one). It is the **drift score** that ``quality.alerts.drift_psi`` and the ``sensorpipe_drift_psi`` metric use.
* **Wasserstein-1** (earth mover's) distance ``∫ |Q_old(p) - Q_new(p)| dp`` over the quantile functions
  (trapezoids over the 101 levels): in the channel's own unit ("heart rate moved by 5 bpm"), which PSI cannot
  say; ``wasserstein_std`` divides it by the old standard deviation.

The bins' shares come from each version's CDF, read off its quantiles (right-continuous: a value repeated over
many levels, like zero steps, keeps its whole mass). The statistic deltas (count, mean, std, missing ratio)
are :func:`sensorpipe.metadata.queries.stats_diff`'s, the same ``sensorpipe diff`` prints.

**Windows**: counts per split and in all, from the runs' split sizes. **Labels**: per label, the share of
windows in each class (``missing`` included) and the total variation distance between the two balances
(half the sum of share changes: 0 unchanged, 1 disjoint), from the ``label_windows:<label>:<class>`` quality
metrics (quality/label_balance.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sensorpipe.metadata.records import QUANTILE_LEVELS

if TYPE_CHECKING:   # the store and its queries (SQLAlchemy) are imported where they are used: a run's driver
    from sensorpipe.metadata.store import MetadataStore   # evaluates alerts without them

PSI_FLOOR = 1e-4          # smallest bin share PSI uses (an empty bin would divide by zero)
PSI_BINS = 10             # bins cut at the old version's deciles
SPLITS = ("train", "validation", "test")
_LEVELS = np.asarray(QUANTILE_LEVELS)


@dataclass(frozen=True)
class VersionSnapshot:
    """What drift needs of one version: its label, split sizes, channel statistics, quantiles, label counts."""

    dataset: str
    version: str
    fingerprint: str
    split_sizes: dict[str, int]
    channel_stats: list[dict[str, Any]]                  # MetadataStore.channel_stats rows
    quantiles: dict[tuple[str, str], list[float]]        # (split, channel) -> values at QUANTILE_LEVELS
    label_windows: dict[str, dict[str, int]] = field(default_factory=dict)   # label -> class -> windows

    @classmethod
    def of_store(cls, store: MetadataStore, ref: str | None, name: str | None = None) -> "VersionSnapshot":
        """The recorded version ``ref`` names (label or fingerprint prefix; None = the newest)."""
        from sensorpipe.metadata.queries import resolve_version, version_run

        v = resolve_version(store, ref, name)
        fp = v["fingerprint"]
        run = version_run(store, v)
        return cls(v["dataset_name"], v["semantic_version"], fp, run["split_sizes"], store.channel_stats(fp),
                   store.quantiles(fp), label_windows(store.quality(fp)))

    @classmethod
    def of_record(cls, record: Any) -> "VersionSnapshot":
        """A run's :class:`~sensorpipe.metadata.records.RunRecord`, before it is recorded (the run's own
        drift check compares it with the version it follows)."""
        import json

        stats = [asdict(r) for r in record.channel_stats]
        quantiles = {(q.split, q.channel): [math.nan if v is None else v for v in json.loads(q.values_json)]
                     for q in record.quantiles}
        quality = [{"scope": q.scope, "name": q.name, "value": q.value} for q in record.quality]
        return cls(record.dataset_name, record.dataset_version, record.fingerprint, dict(record.split_sizes),
                   stats, quantiles, label_windows(quality))


@dataclass(frozen=True)
class ChannelDrift:
    """One channel's distance between the versions in one split, with its statistics before and after."""

    channel: str
    split: str
    psi: float                 # NaN when either version never observed the channel there
    wasserstein: float         # real units of the channel
    wasserstein_std: float     # wasserstein / old standard deviation (NaN when that is 0 or unknown)
    count_old: int | None
    count_new: int | None
    mean_old: float
    mean_new: float
    missing_old: float
    missing_new: float


@dataclass(frozen=True)
class CountChange:
    """Windows of one split (or ``all``) in both versions."""

    split: str
    old: int
    new: int

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def ratio(self) -> float:
        """new / old (inf when the split was empty before and is not now, NaN when empty in both)."""
        return self.new / self.old if self.old else (math.inf if self.new else math.nan)


@dataclass(frozen=True)
class LabelDrift:
    """A label's class balance (share of windows per class, ``missing`` included) in both versions."""

    label: str
    old_share: dict[str, float]
    new_share: dict[str, float]
    total_variation: float     # half the sum of |share change|: 0 unchanged, 1 disjoint


@dataclass(frozen=True)
class DriftResult:
    """Drift from version ``old`` to ``new`` (channels compared in ``split``; ``all`` = every split)."""

    dataset: str
    old_version: str
    old_fingerprint: str
    new_version: str
    new_fingerprint: str
    split: str
    channels: tuple[ChannelDrift, ...]
    windows: tuple[CountChange, ...]
    labels: tuple[LabelDrift, ...]
    method: str = ("PSI over 10 bins at the old version's deciles (shares floored at 1e-4); Wasserstein-1 "
                   "between the quantile functions (101 levels), real units")

    def channel(self, name: str) -> ChannelDrift:
        for c in self.channels:
            if c.channel == name:
                return c
        raise KeyError(f"channel {name!r} is not in the drift of {self.old_version} -> {self.new_version}; "
                       f"channels: {', '.join(c.channel for c in self.channels)}")

    def drifted(self, psi_threshold: float) -> list[ChannelDrift]:
        """Channels whose PSI exceeds ``psi_threshold``, largest first."""
        hits = [c for c in self.channels if c.psi == c.psi and c.psi > psi_threshold]
        return sorted(hits, key=lambda c: -c.psi)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = [dict(asdict(w), delta=w.delta) for w in self.windows]
        return d


def label_windows(quality: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """label -> class -> windows, from the ``dataset`` / ``label_windows:<label>:<class>`` quality metrics."""
    out: dict[str, dict[str, int]] = {}
    for r in quality:
        if r["scope"] == "dataset" and r["name"].startswith("label_windows:"):
            label, cls = r["name"].split(":", 2)[1:]
            out.setdefault(label, {})[cls] = int(r["value"])
    return out


def cdf(quantiles: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(X <= x) from a distribution's values at ``QUANTILE_LEVELS`` (right-continuous: a value held over
    several levels carries all of them)."""
    values, last = np.unique(quantiles[::-1], return_index=True)    # the highest level of each distinct value
    top = _LEVELS[::-1][last]
    return np.interp(x, values, top, left=0.0, right=1.0)


def psi(old_q: np.ndarray, new_q: np.ndarray) -> float:
    """Population stability index of ``new`` against ``old`` over bins cut at ``old``'s deciles."""
    step = (len(_LEVELS) - 1) // PSI_BINS
    edges = np.unique(old_q[step:-1:step])
    shares_old = np.diff(np.concatenate([[0.0], cdf(old_q, edges), [1.0]]))
    shares_new = np.diff(np.concatenate([[0.0], cdf(new_q, edges), [1.0]]))
    a = np.maximum(shares_old, PSI_FLOOR)
    b = np.maximum(shares_new, PSI_FLOOR)
    return float(np.sum((b - a) * np.log(b / a)))


def wasserstein(old_q: np.ndarray, new_q: np.ndarray) -> float:
    """Wasserstein-1 distance ``∫|Q_old - Q_new| dp`` (trapezoids over ``QUANTILE_LEVELS``)."""
    d = np.abs(old_q - new_q)
    return float(np.sum((d[1:] + d[:-1]) / 2 * np.diff(_LEVELS)))


def _channel(ch: str, split: str, old: VersionSnapshot, new: VersionSnapshot, delta: dict[str, Any]) -> ChannelDrift:
    nan = math.nan
    qa, qb = old.quantiles.get((split, ch)), new.quantiles.get((split, ch))
    p = w = ws = nan
    if qa is not None and qb is not None:
        a, b = np.asarray(qa, np.float64), np.asarray(qb, np.float64)
        if np.isfinite(a).all() and np.isfinite(b).all():
            p, w = psi(a, b), wasserstein(a, b)
            std = delta["std"]["old"] if delta else None
            ws = w / std if std and std == std else nan
    f = (lambda k, side: delta[k][side] if delta and delta[k][side] is not None else nan)
    return ChannelDrift(ch, split, p, w, ws, delta["count"]["old"] if delta else None,
                        delta["count"]["new"] if delta else None, f("mean", "old"), f("mean", "new"),
                        f("missing_ratio", "old"), f("missing_ratio", "new"))


def pooled_stats(stats: list[dict[str, Any]], split: str, sizes: dict[str, int]) -> list[dict[str, Any]]:
    """Channel statistics of ``split``; for ``all``, the splits pooled (counts added, moments combined, missing
    ratios weighted by the splits' windows)."""
    if split != "all":
        return [r for r in stats if r["split"] == split]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in stats:
        by.setdefault(r["channel"], []).append(r)
    out = []
    for ch, rows in by.items():
        rows = [r for r in rows if r["count"]]
        n = sum(r["count"] for r in rows)
        mean = sum(r["count"] * r["mean"] for r in rows) / n if n else math.nan
        var = (sum(r["count"] * (r["std"] ** 2 + (r["mean"] - mean) ** 2) for r in rows) / n) if n else math.nan
        weights = [(sizes.get(r["split"], 0), r["missing_ratio"]) for r in by[ch] if r["missing_ratio"] == r["missing_ratio"]]
        windows = sum(w for w, _ in weights)
        missing = sum(w * m for w, m in weights) / windows if windows else math.nan
        out.append({"split": "all", "channel": ch, "count": n, "mean": mean, "std": math.sqrt(var),
                    "missing_ratio": missing})
    return out


def _label_drift(old: VersionSnapshot, new: VersionSnapshot) -> tuple[LabelDrift, ...]:
    out = []
    for label in sorted(set(old.label_windows) | set(new.label_windows)):
        a, b = old.label_windows.get(label, {}), new.label_windows.get(label, {})
        na, nb = sum(a.values()), sum(b.values())
        sa = {k: v / na for k, v in a.items()} if na else {}
        sb = {k: v / nb for k, v in b.items()} if nb else {}
        tv = 0.5 * sum(abs(sa.get(k, 0.0) - sb.get(k, 0.0)) for k in set(sa) | set(sb)) if na and nb else math.nan
        out.append(LabelDrift(label, sa, sb, tv))
    return tuple(out)


def drift(old: VersionSnapshot, new: VersionSnapshot, split: str = "all") -> DriftResult:
    """Drift from ``old`` to ``new``; channels compared in ``split`` (train, validation, test or ``all``)."""
    from sensorpipe.metadata.queries import stats_diff

    deltas = {r["channel"]: r for r in stats_diff(pooled_stats(old.channel_stats, split, old.split_sizes),
                                                  pooled_stats(new.channel_stats, split, new.split_sizes))}
    channels = list(dict.fromkeys([r["channel"] for r in new.channel_stats] + [r["channel"] for r in old.channel_stats]))
    windows = [CountChange(s, int(old.split_sizes.get(s, 0)), int(new.split_sizes.get(s, 0))) for s in SPLITS]
    windows.append(CountChange("all", sum(w.old for w in windows), sum(w.new for w in windows)))
    return DriftResult(new.dataset, old.version, old.fingerprint, new.version, new.fingerprint, split,
                       tuple(_channel(ch, split, old, new, deltas.get(ch)) for ch in channels), tuple(windows),
                       _label_drift(old, new))


def version_drift(store: MetadataStore, old: str, new: str | None = None, name: str | None = None,
                  split: str = "all") -> DriftResult:
    """Drift between two recorded versions (labels or fingerprint prefixes; ``new`` None = the newest)."""
    return drift(VersionSnapshot.of_store(store, old, name), VersionSnapshot.of_store(store, new, name), split)


def previous_version(store: MetadataStore, dataset: str, fingerprint: str, output_dir: str | None = None
                     ) -> VersionSnapshot | None:
    """The version a new run of ``dataset`` follows: the newest published one with another fingerprint (of
    ``output_dir`` when given), or None when there is none or it predates stored quantiles."""
    for v in store.list_versions():
        if (v["dataset_name"] == dataset and v["status"] == "published" and v["fingerprint"] != fingerprint
                and (output_dir is None or v["output_dir"] == output_dir)):
            snap = VersionSnapshot.of_store(store, v["fingerprint"])
            return snap if snap.quantiles else None
    return None
