"""The feature-extractor contract, its registry, and :func:`extract` (one raw signal -> minute observations).

An extractor turns one dense waveform (:class:`~sensorpipe.core.inputs.RawSignal`)
into per-minute values of one or more canonical channels (PPG gives heart
rate, HRV and a signal-quality index; the accelerometer gives ENMO, MAD,
steps, ...). The coverage rule and the bookkeeping are the same for every
kind, so they live here, not in each extractor:

* a minute is emitted only when at least ``min_coverage`` of its expected
  samples are finite (a minute at the edge of a session is not summarised
  from a few seconds); the others count as ``<kind>_minutes_partial``;
* a covered minute without a value counts under a reason:
  ``<kind>_minutes_<reason>`` once per signal when the whole signal was
  unusable (e.g. ``rate_below_detector_minimum``), else
  ``<kind>_<channel>_minutes_<reason>`` per channel (a reason the extractor
  gives for the minutes it withheld, e.g. ``low_sqi``, or its
  ``no_value_reasons`` default, e.g. ``too_few_beats``).

The counts travel in :class:`MinuteFeatures` to the unit summary and from
there to the quality records (``raw:<count>``).

The registry (:mod:`sensorpipe.registry`) maps ``kind -> class``; subclasses
register themselves by setting ``kind`` (``register=False`` in the class
statement opts out), the built-ins are found by walking this package, and
installed ``sensorpipe.features`` plugins are loaded for a kind not built in.
"""

from __future__ import annotations

import logging

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.inputs import RawSignal
from sensorpipe.core.observations import Observations
from sensorpipe.schema.validate import CHANNEL_INDEX
from sensorpipe.registry import Registered, Registry




def _check_channels(cls: type) -> None:
    """Every channel an extractor emits must exist in the channel registry (plugin channels included)."""
    if not cls.channels:
        raise ValueError(f"{cls.__name__} (kind {cls.kind!r}) emits no channels; set channels = (...)")
    unknown = [c for c in cls.channels if not registry.known(c)]
    if unknown:
        raise ValueError(f"{cls.__name__} (kind {cls.kind!r}) emits unknown channel(s) {unknown}; "
                         f"canonical channels: {', '.join(registry.CHANNELS)}")


#: raw signal kind -> extractor class (built-ins and plugins); see :func:`register_extractor`
EXTRACTORS = Registry("features", what="feature extractor for raw signal kind", package="sensorpipe.processing.features",
                      key="kind", required=("features",), check=_check_channels)


@dataclass
class MinuteFeatures:
    """Minute observations from one raw signal plus what was not emitted and why."""

    observations: Observations
    samples_in: int
    counts: dict[str, int]
    kind: str = ""

    def channel(self, name: str) -> Observations:
        """The observations of one channel."""
        return self.observations.take(self.observations.channel == CHANNEL_INDEX[name])

    def primary(self) -> Observations:
        """The observations of the signal kind's primary channel (heart rate for PPG, ENMO for ACC, ...)."""
        return self.channel(EXTRACTORS[self.kind].channels[0])


@dataclass(frozen=True)
class MinuteIndex:
    """Where each sample of a signal lies on the UTC minute grid.

    ``minute[i]`` is sample i's minute, counted from the UTC minute of the
    first sample (computed from integer nanoseconds, as the grid does);
    ``offset_ns[i]`` is its time since the start of minute 0.
    """

    minute: np.ndarray
    offset_ns: np.ndarray
    n_minutes: int
    sample_rate_hz: float

    @classmethod
    def of(cls, sig: RawSignal) -> MinuteIndex:
        n = sig.values.shape[0]
        first_min = sig.start_utc_ns // MINUTE_NS
        offset = (sig.start_utc_ns - first_min * MINUTE_NS) + np.round(
            np.arange(n) * (1e9 / sig.sample_rate_hz)).astype(np.int64)
        minute = offset // MINUTE_NS
        return cls(minute, offset, int(minute[-1]) + 1 if n else 0, float(sig.sample_rate_hz))

    def of_times(self, t_s: np.ndarray) -> np.ndarray:
        """Minute of instants given in seconds since the first sample (via the sample that holds them)."""
        idx = np.minimum((np.asarray(t_s) * self.sample_rate_hz).astype(np.int64), self.minute.size - 1)
        return self.minute[np.maximum(idx, 0)]


@dataclass
class Features:
    """What an extractor derived from one signal, before the coverage rule.

    ``values[channel]`` is one value per minute (NaN: none). ``support`` is the
    number of finite samples per minute (the coverage). ``unusable`` names why
    the whole signal gave nothing (then every value is NaN). ``withheld``
    maps a channel to ``reason -> minute mask`` for values the extractor
    computed but refused (e.g. HRV in minutes of poor PPG quality).
    """

    values: dict[str, np.ndarray]
    support: np.ndarray
    unusable: str = ""
    withheld: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def register_extractor(cls: type[FeatureExtractor], *, replace: bool = False) -> type[FeatureExtractor]:
    """Register ``cls`` for raw signals of ``cls.kind``; returns ``cls`` (usable as a decorator).

    Subclassing already registered a class with a ``kind`` (the same class
    again is a no-op); a different class for a kind already taken is refused
    unless ``replace``. Every channel the class emits must exist in the
    channel registry.
    """
    return EXTRACTORS.add(cls, replace=replace)


class FeatureExtractor(Registered, registry=EXTRACTORS):
    """Turns one raw signal into minute values of the canonical channels in ``channels``.

    Subclasses set ``kind``, ``channels`` (the first is the primary one,
    :func:`known_kinds`) and implement :meth:`features`. They must be cheap to
    construct and stateless: one instance per signal.
    """

    kind: ClassVar[str] = ""
    channels: ClassVar[tuple[str, ...]] = ()
    min_coverage: ClassVar[float] = 0.5
    #: channel -> why a covered minute has no value when nothing more specific is known
    no_value_reasons: ClassVar[dict[str, str]] = {}

    @property
    def channel(self) -> str:
        """The primary channel."""
        return self.channels[0]

    def features(self, sig: RawSignal, index: MinuteIndex) -> Features:
        raise NotImplementedError

    def detector_input(self, sig: RawSignal, index: MinuteIndex,
                       min_rate_hz: float) -> tuple[np.ndarray, float, np.ndarray] | Features:
        """The shared start of every beat/breath detector: ``(gap-filled samples, rate, support)``.

        Returns all-NaN :class:`Features` with the reason instead when the rate
        is below what the detector needs or the signal has nothing to detect.
        """
        from sensorpipe.processing.features.chunks import usable

        x, ok = finite_samples(sig)
        support = np.bincount(index.minute[ok], minlength=index.n_minutes)
        fs = float(sig.sample_rate_hz)
        if fs < min_rate_hz:
            logging.getLogger(type(self).__module__).warning(
                "%s: %s at %g Hz is below the %g Hz its detector needs; no minutes derived",
                sig.source_file, self.kind, fs, min_rate_hz)
            return nan_features(self.channels, support, "rate_below_detector_minimum")
        if not usable(x, ok, fs):
            return nan_features(self.channels, support, "no_detectable_signal")
        return fill_gaps(x.ravel(), ok), fs, support

    def minute_values(self, sig: RawSignal, minute: np.ndarray, n_minutes: int) -> tuple[np.ndarray, np.ndarray]:
        """(primary channel value per minute, finite samples per minute) for a sample->minute map of ``sig``."""
        n = sig.values.shape[0]
        offset = np.round(np.arange(n) * (1e9 / sig.sample_rate_hz)).astype(np.int64)  # minute 0 starts at sample 0
        index = MinuteIndex(np.asarray(minute, np.int64), offset, int(n_minutes), sig.sample_rate_hz)
        f = self.features(sig, index)
        return f.values[self.channel], f.support


def nan_features(channels: tuple[str, ...], support: np.ndarray, reason: str) -> Features:
    """Features of a signal that gives no value at all, and why."""
    return Features({c: np.full(support.size, np.nan) for c in channels}, support, reason)


def extract(sig: RawSignal, file_index: int = 0) -> MinuteFeatures:
    """Minute observations of ``sig`` (UTC minute starts), with counts of the minutes not emitted, by reason."""
    from sensorpipe.config import ConfigError

    try:  # built in, or from an installed `sensorpipe.features` plugin (loaded once per process)
        extractor = EXTRACTORS.lookup(sig.kind, sig.source_file, "raw signal kind (feature extractor)")()
    except ConfigError as e:
        raise ValueError(str(e)) from None
    n = sig.values.shape[0]
    index = MinuteIndex.of(sig)
    feats = extractor.features(sig, index) if n else nan_features(extractor.channels, np.zeros(0, np.int64), "")
    covered = feats.support >= extractor.min_coverage * sig.sample_rate_hz * 60.0
    first_min = sig.start_utc_ns // MINUTE_NS
    counts = {f"{sig.kind}_minutes_partial": int((~covered).sum())}
    if feats.unusable:
        counts[f"{sig.kind}_minutes_{feats.unusable}"] = int(covered.sum())
    chans, times, vals, firsts = [], [], [], []
    for ch in extractor.channels:
        v = np.asarray(feats.values[ch], np.float64)
        missing = covered & ~np.isfinite(v)
        if not feats.unusable:
            explained = np.zeros_like(covered)
            for reason, mask in sorted(feats.withheld.get(ch, {}).items()):
                hit = missing & mask & ~explained
                counts[f"{sig.kind}_{ch}_minutes_{reason}"] = int(hit.sum())
                explained |= hit
            reason = extractor.no_value_reasons.get(ch, "no_value")
            key = f"{sig.kind}_{ch}_minutes_{reason}"
            counts[key] = counts.get(key, 0) + int((missing & ~explained).sum())
        idx = np.flatnonzero(covered & np.isfinite(v))
        chans.append(np.full(idx.size, CHANNEL_INDEX[ch], np.int16))
        times.append((first_min + idx) * MINUTE_NS)
        vals.append(v[idx])
        firsts.append(np.searchsorted(index.minute, idx))
    k = sum(c.size for c in chans)
    obs = Observations(np.concatenate(chans), np.concatenate(times).astype(np.int64), np.concatenate(vals),
                       np.full(k, file_index, np.int32), np.concatenate(firsts).astype(np.int64),
                       [sig.source_file], np.full(k, -1, np.int64))
    return MinuteFeatures(obs, n, {key: v for key, v in counts.items() if v}, sig.kind)


def known_kinds() -> dict[str, str]:
    """Raw signal kind -> the primary canonical channel it feeds."""
    return {k: v.channels[0] for k, v in sorted(EXTRACTORS.builtins().items())}


def kind_channels() -> dict[str, tuple[str, ...]]:
    """Raw signal kind -> every canonical channel it feeds (primary first)."""
    return {k: tuple(v.channels) for k, v in sorted(EXTRACTORS.builtins().items())}


# --- per-minute helpers shared by the extractors (vectorized: no loop per minute) ---------------
def finite_samples(sig: RawSignal) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64, mask of samples that are finite in every column)."""
    x = np.asarray(sig.values, np.float64)
    ok = np.isfinite(x) if x.ndim == 1 else np.isfinite(x).all(axis=1)
    return x, ok


def fill_gaps(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``x`` with non-finite samples linearly interpolated (for filters and detectors; never for coverage)."""
    if ok.all() or not ok.any():
        return x
    idx = np.arange(ok.size)
    if x.ndim == 1:
        return np.interp(idx, idx[ok], x[ok])
    return np.column_stack([np.interp(idx, idx[ok], x[ok, j]) for j in range(x.shape[1])])


def minute_mean(values: np.ndarray, minute: np.ndarray, n_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the finite ``values`` per minute, their count per minute)."""
    ok = np.isfinite(values)
    sums = np.bincount(minute[ok], weights=values[ok], minlength=n_minutes)
    cnt = np.bincount(minute[ok], minlength=n_minutes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / cnt, cnt


def minute_median(values: np.ndarray, minute: np.ndarray, n_minutes: int, min_count: int) -> np.ndarray:
    """Median of ``values`` per minute (NaN below ``min_count``), sort-based, no loop per minute."""
    out = np.full(n_minutes, np.nan)
    if not values.size:
        return out
    order = np.lexsort((values, minute))
    m, v = minute[order], values[order]
    starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    counts = np.diff(np.r_[starts, m.size])
    med = (v[starts + (counts - 1) // 2] + v[starts + counts // 2]) / 2
    keep = counts >= min_count
    out[m[starts[keep]]] = med[keep]
    return out
