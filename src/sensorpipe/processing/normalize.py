"""Normalization fitted on the train split only, with mergeable statistics.

Pass one computes :class:`FitStats` per unit over the observed minutes of its
kept windows: exact moments of ``x`` and of each channel's ``transform(x)``
(:class:`RunningStats`; they merge exactly in any grouping, Chan et al.) and
a :class:`~sensorpipe.processing.sketch.HistogramSketch` for quantiles (integer
counts; its error bound is stated there). The driver merges the train units'
stats in unit order, so the parameters are identical on every runner, and
:meth:`NormParams.fit` asks each channel's :class:`Normalizer` for ``center``
and ``scale``. A channel with no observed train value is fitted from the
channel registry's population prior (``normalization.missing_train: prior``,
recorded in :attr:`NormParams.source` and warned about) or stops the run
(``error``, :class:`MissingTrainDataError`): fitting it to nothing gave 0 and 1,
which turned every heart-rate minute into 10 bpm after clipping.

Pass two applies ``clip((transform(x) - center) / scale)``; clipping is off
unless ``clip_sigma`` is set, and :meth:`NormParams.apply_and_count` counts the
observed cells it clips. :meth:`NormParams.invert` undoes it exactly for values
inside the clip range (float64 arithmetic, rounded once to float32).

The parameters travel as :meth:`NormParams.to_json` (``normalization.json``,
``sensorpipe.json``) and as one metadata row per channel.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.config import ChannelNormalization, ConfigError, NormalizationConfig
from sensorpipe.processing.normalizers import (ChannelFitStats, ChannelPrior, Normalizer, get_normalizer,
                                               register_normalizer)
from sensorpipe.processing.sketch import HistogramSketch, observed_by_channel


def channel_major(values: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous ``[C, T]`` copies of ``values``/``observed [..., C]``: per-channel reductions over
    contiguous minutes beat strided ones across the interleaved channels of ``[T, C]``."""
    C = values.shape[-1]
    return np.ascontiguousarray(values.reshape(-1, C).T), np.ascontiguousarray(observed.reshape(-1, C).T)


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
        if not values.size:
            return cls.zeros(C)
        return cls.of_channel_major(*channel_major(values, observed))

    @classmethod
    def of_channel_major(cls, x: np.ndarray, o: np.ndarray,
                         extremes: tuple[np.ndarray, np.ndarray] | None = None) -> "RunningStats":
        """:meth:`of` from the channel-major copies ``[C, T]`` of :func:`channel_major`; ``extremes``: the
        observed values' min and max per channel (inf / -inf where none) when the caller has them.

        Sums run over whole rows (zeros where not observed), the deviations are
        taken in place and the cells not observed zeroed by a product with the
        mask (a masked subtract is several times slower): each observed cell is
        the same one float64 subtraction as in ``where(o, v - mean, 0)``, and a
        zeroed cell adds 0 to the squares, so the moments are the same to the bit.
        """
        cnt = np.count_nonzero(o, axis=1)
        v = np.zeros(x.shape, np.float64)
        np.copyto(v, x, where=o)
        mean = np.divide(v.sum(axis=1), cnt, out=np.zeros(x.shape[0]), where=cnt > 0)
        v -= mean[:, None]
        v *= o                                          # the deviations; 0 where not observed
        m2 = np.einsum("ct,ct->c", v, v)
        if extremes is None:
            mn = np.where(o, x, np.inf).min(axis=1).astype(np.float64)    # extremes in the input dtype (exact)
            mx = np.where(o, x, -np.inf).max(axis=1).astype(np.float64)
        else:
            mn, mx = (np.asarray(a, np.float64) for a in extremes)
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


def channel_specs(channels: tuple[str, ...], cfg: NormalizationConfig) -> list[tuple[str, float | None]]:
    """(method, clip_sigma or None) per channel: per_channel, else default, else the registry."""
    out = []
    for c in channels:
        spec = cfg.per_channel.get(c)
        if isinstance(spec, ChannelNormalization):
            sigma = (spec.clip_sigma if spec.clip_sigma is not None else cfg.clip_sigma) if spec.clip else None
            out.append((spec.method, sigma))
        else:
            out.append((spec or cfg.default or registry.get(c).normalize, cfg.clip_sigma))
    return out


@dataclass
class FitStats:
    """One unit's (or a merged group's) fitting statistics: raw and transformed moments, sketch."""

    raw: RunningStats
    transformed: RunningStats
    sketch: HistogramSketch

    @classmethod
    def zeros(cls, channels: tuple[str, ...], cfg: NormalizationConfig) -> "FitStats":
        lo, hi = _valid_range(channels)
        C = len(channels)
        return cls(RunningStats.zeros(C), RunningStats.zeros(C), HistogramSketch.zeros(lo, hi, cfg.sketch_bins))

    @classmethod
    def of(cls, values: np.ndarray, observed: np.ndarray, channels: tuple[str, ...],
           cfg: NormalizationConfig) -> "FitStats":
        """Stats of ``values [..., C]`` where ``observed``; the transform is each channel's method's."""
        lo, hi = _valid_range(channels)
        cm = channel_major(values, observed) if values.size else None   # shared by the moments and the sketch
        raw, sketch = RunningStats.zeros(values.shape[-1]), HistogramSketch.zeros(lo, hi, cfg.sketch_bins)
        if cm:  # each channel's observed values once: the extremes of the moments and the sketch's input
            per = observed_by_channel(*cm)
            extremes = (np.array([p.min() if p.size else np.inf for p in per], np.float64),
                        np.array([p.max() if p.size else -np.inf for p in per], np.float64))
            raw = RunningStats.of_channel_major(*cm, extremes=extremes)
            sketch = HistogramSketch.of_observed(per, lo, hi, cfg.sketch_bins, extremes=extremes)
        transforming = [j for j, (method, _) in enumerate(channel_specs(channels, cfg))
                        if type(get_normalizer(method)).transform is not Normalizer.transform]
        transformed = raw
        if transforming and cm:  # a second pass over the transformed channels only (e.g. log1p)
            x, o = cm
            specs = channel_specs(channels, cfg)
            t = np.empty((len(transforming), x.shape[1]))
            ok = o[transforming]
            for k, j in enumerate(transforming):
                with np.errstate(invalid="ignore", divide="ignore"):
                    t[k] = get_normalizer(specs[j][0]).transform(np.where(o[j], x[j].astype(np.float64), 0.0))
                ok[k] &= np.isfinite(t[k])
            part = RunningStats.of_channel_major(t, ok)
            # the other channels' transformed moments are their raw ones (same values in float64, same order)
            transformed = RunningStats(*(np.array(a, copy=True) for a in (raw.count, raw.mean, raw.m2, raw.min, raw.max)))
            for field_name in ("count", "mean", "m2", "min", "max"):
                getattr(transformed, field_name)[transforming] = getattr(part, field_name)
        return cls(raw, transformed, sketch)

    def merge(self, other: "FitStats") -> "FitStats":
        return FitStats(self.raw.merge(other.raw), self.transformed.merge(other.transformed),
                        self.sketch.merge(other.sketch))

    def to_json(self, sketch_file: str | None = None) -> dict:
        """Moments inline; the sketch inline too, or written to ``sketch_file`` (npz) and referenced.

        A unit's sketch is up to ``bins`` counters per channel, so the per-unit
        summaries the driver holds for every unit keep only its path.
        """
        d = {"raw": self.raw.to_json(), "transformed": self.transformed.to_json()}
        if sketch_file is None:
            d["sketch"] = self.sketch.to_json()
        else:
            self.sketch.save(sketch_file)
            d["sketch_file"] = sketch_file
        return d

    @classmethod
    def from_json(cls, d: dict) -> "FitStats":
        sketch = HistogramSketch.load(d["sketch_file"]) if "sketch_file" in d else HistogramSketch.from_json(d["sketch"])
        return cls(RunningStats.from_json(d["raw"]), RunningStats.from_json(d["transformed"]), sketch)

    @classmethod
    def merged(cls, channels: tuple[str, ...], cfg: NormalizationConfig, many: list[dict]) -> "FitStats":
        """The units' statistics (their JSON) merged in the order given: float64 moments added in another
        order differ in the last bits, so every runner merges in unit order (the beam runner's CombineFn too)."""
        stats = cls.zeros(channels, cfg)
        for d in many:
            stats = stats.merge(cls.from_json(d))
        return stats


def _valid_range(channels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([registry.get(c).valid_min for c in channels], np.float64),
            np.array([registry.get(c).valid_max for c in channels], np.float64))


_PER_CHANNEL = ("methods", "center", "scale", "clip_low", "clip_high", "fallback", "count", "mean", "std",
                "median", "iqr", "min", "max", "quantile_error", "source")

#: where a channel's center and scale came from (:attr:`NormParams.source`)
SOURCE_TRAIN, SOURCE_PRIOR, SOURCE_FIXED = "train", "prior", "fixed"

log = logging.getLogger(__name__)


class MissingTrainDataError(ConfigError):
    """``normalization.missing_train: error`` and a channel has no observed value in the train split."""


@dataclass(frozen=True)
class NormParams:
    """Per-channel parameters, as stored in ``normalization.json`` and the metadata DB.

    ``center``/``scale`` are in transformed units; ``clip_low``/``clip_high``
    in normalized units (None = unclipped); ``fallback`` is the real-unit value
    imputation gives cells it cannot fill. ``mean``, ``std``, ``median``,
    ``iqr``, ``min``, ``max`` describe the train split in real units (median and
    IQR within ``quantile_error``); ``clip_sigma`` is the section default.
    ``source`` says where ``center``/``scale`` came from: ``train`` (fitted on
    the train split), ``prior`` (the registry's population prior: the train
    split never observed the channel) or ``fixed`` (a method without
    parameters, ``none``, and no train data).
    """

    channels: tuple[str, ...]
    methods: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    clip_low: tuple[float | None, ...]
    clip_high: tuple[float | None, ...]
    fallback: tuple[float, ...]
    count: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    median: tuple[float, ...]
    iqr: tuple[float, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]
    quantile_error: tuple[float, ...]
    clip_sigma: float | None
    source: tuple[str, ...] = ()

    @classmethod
    def fit(cls, channels: tuple[str, ...], stats: FitStats, cfg: NormalizationConfig) -> "NormParams":
        """Fit every channel on the merged train ``stats``; a channel without train data from its prior.

        Raises :class:`MissingTrainDataError` (naming every such channel)
        instead when ``cfg.missing_train`` is ``error``.
        """
        specs = channel_specs(channels, cfg)
        raw, tr, sk = stats.raw, stats.transformed, stats.sketch
        quart = sk.quantile([0.25, 0.5, 0.75])
        norms = [get_normalizer(method, f"normalization.per_channel.{ch}") for ch, (method, _) in zip(channels, specs)]
        unfit = [ch for j, ch in enumerate(channels) if not raw.count[j] and norms[j].fitted]
        if unfit and cfg.missing_train == "error":
            raise MissingTrainDataError(_missing_train_message(unfit, specs, channels))
        rows: dict[str, list] = {k: [] for k in _PER_CHANNEL}
        for j, (ch, (method, sigma), norm) in enumerate(zip(channels, specs, norms)):
            c = registry.get(ch)
            why = norm.check_channel(ch, c.valid_min, c.valid_max)
            if why:
                raise ValueError(f"normalization.per_channel.{ch}: {why}")
            n = int(raw.count[j])
            s = ChannelFitStats(ch, n, float(raw.mean[j]), float(raw.std[j]), float(raw.min[j]), float(raw.max[j]),
                                float(tr.mean[j]), float(tr.std[j]), sk, j)
            if n:
                center, scale = norm.fit(s)
                source = SOURCE_TRAIN
            else:   # no train data: the population prior
                center, scale = norm.fit_prior(ChannelPrior(ch, c.prior_center, c.prior_scale, c.valid_min,
                                                            c.valid_max))
                source = SOURCE_PRIOR if norm.fitted else SOURCE_FIXED
            if not (np.isfinite(center) and np.isfinite(scale) and scale > 0):
                raise ValueError(f"normalizer {method!r} fitted center={center!r}, scale={scale!r} for {ch}"
                                 f"{' from its prior' if not n else ''}; scale must be a finite number > 0 "
                                 f"(fix the plugin's {'fit' if n else 'fit_prior'})")
            if source == SOURCE_PRIOR:
                log.warning("channel %s had no train observations; normalized with the registry prior (%s: center "
                            "%g, scale %g, from %g +/- %g %s). Set normalization.missing_train: error to stop instead",
                            ch, method, center, scale, c.prior_center, c.prior_scale, c.unit)
            # what imputation gives cells it cannot fill; without train data the prior's typical value
            fallback = norm.fallback(s, center, scale) if n else float(c.prior_center) if norm.fitted else 0.0
            lo, hi = _clip_range(norm.clip, sigma)
            nan = float("nan")
            for k, v in (("methods", method), ("center", float(center)), ("scale", float(scale)), ("clip_low", lo),
                         ("clip_high", hi), ("fallback", fallback),
                         ("count", n), ("mean", s.mean if n else nan), ("std", s.std if n else nan),
                         ("median", float(quart[j, 1])), ("iqr", float(quart[j, 2] - quart[j, 0])),
                         ("min", s.min if n else nan), ("max", s.max if n else nan),
                         ("quantile_error", float(sk.error_bound[j])), ("source", source)):
                rows[k].append(v)
        return cls(tuple(channels), **{k: tuple(v) for k, v in rows.items()}, clip_sigma=cfg.clip_sigma)

    @property
    def clips(self) -> bool:
        """Whether any channel is clipped (``apply`` may then store a value other than the observed one)."""
        return any(v is not None for v in self.clip_low + self.clip_high)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lo = np.array([-np.inf if v is None else v for v in self.clip_low], np.float64)
        hi = np.array([np.inf if v is None else v for v in self.clip_high], np.float64)
        return np.array(self.center, np.float64), np.array(self.scale, np.float64), lo, hi

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalize ``x [..., C]`` (real units) to float32; NaN stays NaN."""
        return self._apply(x, None)[0]

    def apply_and_count(self, x: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply`, plus per channel (int64 ``[C]``) the observed cells it clipped.

        A cell counts when ``observed`` is True and its normalized value lay
        strictly outside the channel's clip range, so the record stores the
        bound instead of the value (a value exactly at the bound, such as the
        train minimum under minmax, is not clipped). Imputed cells are not
        counted: the mask marks them missing anyway. All zeros, at no cost,
        when no channel clips.
        """
        return self._apply(x, np.asarray(observed, bool))

    def _apply(self, x: np.ndarray, observed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        center, scale, lo, hi = self._arrays()
        x = np.asarray(x)
        C = x.shape[-1]
        # one float64 copy, channel-major, then every step in place: a channel's minutes are one contiguous
        # row with scalar parameters (broadcasting [C] over [..., C] ran the loops C elements at a time)
        t = np.array(x.reshape(-1, C).T, np.float64, order="C")
        for j, norm in self._transforming():  # only channels whose method has a transform
            with np.errstate(invalid="ignore", divide="ignore"):
                t[j] = norm.transform(t[j])
        t -= center[:, None]
        t /= scale[:, None]
        clipped = np.zeros(C, np.int64)
        clipping = np.flatnonzero(np.isfinite(lo) | np.isfinite(hi))
        if observed is not None and clipping.size and t.size:   # only the clipped channels' rows
            outside = (t[clipping] < lo[clipping, None]) | (t[clipping] > hi[clipping, None])
            outside &= observed.reshape(-1, C)[:, clipping].T
            clipped[clipping] = np.count_nonzero(outside, axis=1)
        np.clip(t, lo[:, None], hi[:, None], out=t)
        out = np.empty(x.shape, np.float32)
        out.reshape(-1, C)[...] = t.T      # back to [..., C], rounded once to float32
        return out, clipped

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Back to real units: the exact inverse of :meth:`apply` for values inside the clip range."""
        center, scale, _, _ = self._arrays()
        y = np.asarray(z, np.float64) * scale + center
        for j, norm in self._transforming():
            y[..., j] = norm.inverse_transform(y[..., j])
        return y.astype(np.float32)

    def _transforming(self) -> list[tuple[int, Normalizer]]:
        out = []
        for j, m in enumerate(self.methods):
            norm = get_normalizer(m)
            if type(norm).transform is not Normalizer.transform:
                out.append((j, norm))
        return out

    def to_json(self) -> dict:
        """JSON-safe (NaN and infinities become null). Fields are tuples of numbers: no deep copy needed."""
        return {f.name: _json_safe(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict) -> "NormParams":
        """Reads every version: files without ``source`` (written before priors) fitted a channel without
        train data to center 0, scale 1, which reads as ``fixed``."""
        if "center" not in d:   # written before robust/minmax/log1p existed: z-score or identity
            d = _from_v1(d)
        f = lambda k: tuple(float("nan") if v is None else float(v) for v in d[k])  # noqa: E731
        count = tuple(int(v) for v in d["count"])
        source = d.get("source") or [SOURCE_TRAIN if n else SOURCE_FIXED for n in count]
        return cls(tuple(d["channels"]), tuple(d["methods"]), f("center"), f("scale"), tuple(d["clip_low"]),
                   tuple(d["clip_high"]), f("fallback"), count, f("mean"), f("std"),
                   f("median"), f("iqr"), f("min"), f("max"), f("quantile_error"),
                   None if d["clip_sigma"] is None else float(d["clip_sigma"]), tuple(source))


def _missing_train_message(unfit: list[str], specs: list[tuple[str, float | None]], channels: tuple[str, ...]) -> str:
    methods = dict(zip(channels, (m for m, _ in specs)))
    names = ", ".join(f"{ch} ({methods[ch]})" for ch in unfit)
    return (f"normalization.missing_train is 'error' and the train split has no observed value of {names}, so "
            f"{'its' if len(unfit) == 1 else 'their'} normalization cannot be fitted. Fix: add train participants "
            f"who record {'it' if len(unfit) == 1 else 'them'}, remove {'it' if len(unfit) == 1 else 'them'} from "
            f"`channels`, set normalization.per_channel.{unfit[0]}: none, or set normalization.missing_train: prior "
            f"to use the channel registry's population prior")


def _clip_range(kind: str, sigma: float | None) -> tuple[float | None, float | None]:
    if kind == "never" or sigma is None:
        return None, None
    return (0.0, 1.0) if kind == "unit" else (-float(sigma), float(sigma))


def _json_safe(v):
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _from_v1(d: dict) -> dict:
    C, c = len(d["channels"]), float(d["clip_sigma"])
    zs = [m == "zscore" for m in d["methods"]]
    nan = [None] * C
    return {**d, "center": d["mean"], "scale": d["std"], "clip_low": [-c if z else None for z in zs],
            "clip_high": [c if z else None for z in zs], "fallback": [m if z else 0.0 for m, z in zip(d["mean"], zs)],
            "median": nan, "iqr": nan, "min": nan, "max": nan, "quantile_error": nan}


__all__ = ["RunningStats", "FitStats", "NormParams", "MissingTrainDataError", "channel_specs", "register_normalizer"]
