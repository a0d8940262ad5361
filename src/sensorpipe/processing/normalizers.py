"""Normalization methods and their registry (``name -> class``): built-ins and plugins.

Every method has the same shape, so that fitting is mergeable and inverting
is exact:

    z = clip((transform(x) - center) / scale)        x = inverse_transform(z * scale + center)

A method chooses the elementwise, invertible ``transform`` (identity unless
it says otherwise), and :meth:`Normalizer.fit` picks ``center`` and ``scale``
from the train split's :class:`ChannelFitStats`: exact moments of ``x`` and of
``transform(x)`` (merged across units) and quantiles from the
:class:`~sensorpipe.processing.sketch.HistogramSketch` (error stated there).
``clip`` says how the output is clipped: ``"sigma"`` to +/- ``clip_sigma``,
``"unit"`` to [0, 1], ``"never"``.

A channel the train split never observed has nothing to fit: with
``normalization.missing_train: prior`` the method's :meth:`Normalizer.fit_prior`
derives ``center`` and ``scale`` from the channel registry's population prior
(:class:`ChannelPrior`) instead, so its observed minutes in validation and test
are still scaled like the physiology they measure (not by 0 and 1).

Built-ins:

* ``zscore``: mean / standard deviation;
* ``robust``: median / interquartile range (from the sketch); an IQR of 0 (a
  channel that is mostly one value, e.g. steps at night) falls back to the
  standard deviation, then to 1;
* ``minmax``: train min / range, clipped to [0, 1] (values beyond the train
  range saturate); its imputation fallback is the train mean, not the min;
* ``log1p``: ``log1p(x)`` then z-scored with the exact mean and standard
  deviation of ``log1p(x)``: counts (steps, calories) are heavy-tailed, and
  z-scoring after the log puts them on the scale of the other channels;
* ``none``: identity, never clipped (categorical channels keep their codes).

From the prior (center ``c``, scale ``s`` in real units): ``zscore`` uses
``c``/``s``; ``robust`` the median ``c`` and the IQR of a normal with SD ``s``
(1.349 ``s``); ``minmax`` the channel's valid range (every validated value lies
in it, so nothing saturates); ``log1p`` ``log1p(c)`` and the secant
``log1p(c + s) - log1p(c)`` (any transforming plugin gets the same secant);
``none`` stays the identity.

A plugin subclasses :class:`Normalizer`, sets ``name`` and implements
``fit`` (and ``transform``/``inverse_transform`` if it has one); it is found
in the ``sensorpipe.normalizers`` entry-point group on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sensorpipe.processing.sketch import HistogramSketch
from sensorpipe.registry import Registered, Registry


def _check_clip(cls: type) -> None:
    if cls.clip not in ("sigma", "unit", "never"):
        raise TypeError(f"{cls.__name__}.clip must be 'sigma', 'unit' or 'never', got {cls.clip!r}")


_NORMALIZERS = Registry("normalizers", what="normalizer", package="sensorpipe.processing", required=("fit",),
                        check=_check_clip)
GROUP = _NORMALIZERS.group
TINY = 1e-12
#: interquartile range of a normal distribution in standard deviations (2 * 0.6745)
NORMAL_IQR_PER_SD = 1.3489795003921634


@dataclass(frozen=True)
class ChannelFitStats:
    """Train-split statistics of one channel (observed minutes of kept windows), as ``fit`` sees them."""

    channel: str
    count: int
    mean: float            # of x, exact
    std: float             # of x, exact (population)
    min: float
    max: float
    t_mean: float          # of transform(x), exact
    t_std: float
    sketch: HistogramSketch
    index: int             # this channel's row in ``sketch``

    def quantile(self, q: float) -> float:
        """Quantile of x from the sketch; within ``quantile_error`` of np.quantile inside the valid range."""
        return float(self.sketch.quantile(q)[self.index, 0])

    @property
    def quantile_error(self) -> float:
        return float(self.sketch.error_bound[self.index])


@dataclass(frozen=True)
class ChannelPrior:
    """The registry's population prior of one channel (real units), for a channel without train data."""

    channel: str
    center: float
    scale: float
    valid_min: float
    valid_max: float


class Normalizer(Registered, registry=_NORMALIZERS):
    """Subclass, set ``name`` and implement :meth:`fit`: the class registers itself.

    ``fitted`` False marks a method whose parameters never depend on data
    (``none``): a channel without train data is then not reported as fitted
    from the prior.
    """

    name: ClassVar[str] = ""
    clip: ClassVar[str] = "sigma"       # "sigma" | "unit" | "never"
    fitted: ClassVar[bool] = True

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Elementwise, invertible map applied before centering (float64 in, float64 out)."""
        return x

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        return y

    def fit(self, s: ChannelFitStats) -> tuple[float, float]:
        """``(center, scale)`` in transformed units; ``scale`` must be > 0. Called only when ``s.count > 0``."""
        raise NotImplementedError

    def fit_prior(self, p: ChannelPrior) -> tuple[float, float]:
        """``(center, scale)`` from the population prior, for a channel the train split never observed.

        Default: the prior itself for a method without a transform; otherwise
        ``transform(center)`` and the secant ``transform(center + scale) -
        transform(center)``, the transformed distance one prior scale spans.
        """
        if type(self).transform is Normalizer.transform:
            return float(p.center), float(p.scale)
        c = float(self.transform(np.array(p.center, np.float64)))
        return c, float(self.transform(np.array(p.center + p.scale, np.float64))) - c

    def fallback(self, s: ChannelFitStats, center: float, scale: float) -> float:
        """Real-unit value that imputation gives cells it cannot fill: by default the one normalizing to 0."""
        return float(self.inverse_transform(np.array(center, np.float64)))

    def check_channel(self, channel: str, valid_min: float, valid_max: float) -> str | None:
        """Why this method cannot serve a channel with that valid range (None = it can)."""
        return None


def register_normalizer(cls: type) -> type:
    """Add a normalizer class to the registry under its ``name`` (a class that subclasses already did)."""
    return _NORMALIZERS.add(cls)


def get_normalizer(name: str, path: str = "normalization") -> Normalizer:
    """An instance of the normalizer registered as ``name``, loading plugins when it is not built in."""
    return _NORMALIZERS.lookup(name, path)()


def normalizer_names() -> tuple[str, ...]:
    """Names registered so far in this process (built-ins, plus plugins once loaded)."""
    return tuple(sorted(_NORMALIZERS.builtins()))


def _positive_or(*candidates: float) -> float:
    for c in candidates:
        if np.isfinite(c) and c > TINY:
            return float(c)
    return 1.0


class ZScore(Normalizer):
    name = "zscore"

    def fit(self, s: ChannelFitStats) -> tuple[float, float]:
        return s.t_mean, _positive_or(s.t_std if s.count > 1 else 0.0)


class Robust(Normalizer):
    name = "robust"

    def fit(self, s: ChannelFitStats) -> tuple[float, float]:
        q25, median, q75 = s.sketch.quantile([0.25, 0.5, 0.75])[s.index]
        return float(median), _positive_or(q75 - q25, s.std if s.count > 1 else 0.0)

    def fit_prior(self, p: ChannelPrior) -> tuple[float, float]:
        return float(p.center), NORMAL_IQR_PER_SD * float(p.scale)


class MinMax(Normalizer):
    name = "minmax"
    clip = "unit"

    def fit(self, s: ChannelFitStats) -> tuple[float, float]:
        return s.min, _positive_or(s.max - s.min)

    def fit_prior(self, p: ChannelPrior) -> tuple[float, float]:
        return float(p.valid_min), _positive_or(p.valid_max - p.valid_min)

    def fallback(self, s: ChannelFitStats, center: float, scale: float) -> float:
        return s.mean


class Log1p(ZScore):
    name = "log1p"

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.log1p(x)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        return np.expm1(y)

    def check_channel(self, channel: str, valid_min: float, valid_max: float) -> str | None:
        if valid_min <= -1:
            return f"log1p needs values > -1 but {channel} may go down to {valid_min:g}; use zscore or robust"
        return None


class Identity(Normalizer):
    name = "none"
    clip = "never"
    fitted = False

    def fit(self, s: ChannelFitStats) -> tuple[float, float]:
        return 0.0, 1.0

    def fit_prior(self, p: ChannelPrior) -> tuple[float, float]:
        return 0.0, 1.0

    def fallback(self, s: ChannelFitStats, center: float, scale: float) -> float:
        return 0.0


__all__ = ["ChannelFitStats", "ChannelPrior", "Normalizer", "register_normalizer", "get_normalizer", "normalizer_names"]
