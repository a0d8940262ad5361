"""Fill missing minutes of a window, per channel, keeping the mask apart.

The mask (True = missing, the value was imputed) is taken from ``observed``
before imputation and never changes here, whatever the method. Methods:

* ``none``: NaN stays (for models that mask inputs themselves);
* ``zero``: 0 in the channel's real unit (counts, flags);
* ``mean``: the mean of the window's observed minutes of that channel;
* ``ffill``: carry the last observation forward; leading gaps take the first;
* ``linear``: linear interpolation in time; edges hold the nearest observation.

A channel with no observed minute in the window gets ``fallback`` (the train
mean for z-scored channels, so it normalizes to 0) for every method but
``none``.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.config import ImputationConfig
from sensorpipe import channels as registry


def methods_for(channels: tuple[str, ...], cfg: ImputationConfig) -> tuple[str, ...]:
    return tuple(cfg.per_channel.get(c, registry.get(c).impute) for c in channels)


def impute(values: np.ndarray, observed: np.ndarray, methods: tuple[str, ...], fallback: np.ndarray) -> np.ndarray:
    """Return an imputed copy of ``values [N, W, C]``; vectorized over windows and minutes."""
    out = values.astype(np.float32, copy=True)
    N, W, C = out.shape
    for j, method in enumerate(methods):
        if method == "none":
            continue
        x, obs = out[:, :, j], observed[:, :, j]
        if method == "zero":
            x[~obs] = 0.0
        elif method == "mean":
            cnt = obs.sum(axis=1)
            mean = np.where(cnt > 0, np.where(obs, x, 0).sum(axis=1) / np.maximum(cnt, 1), fallback[j])
            x[~obs] = np.broadcast_to(mean[:, None], x.shape)[~obs]
        elif method == "ffill":
            _ffill(x, obs)
        elif method == "linear":
            _linear(x, obs)
        else:  # pragma: no cover - config validation rejects it
            raise ValueError(f"unknown imputation method {method!r}")
        none_seen = ~obs.any(axis=1)
        x[none_seen] = fallback[j]
    return out


def _ffill(x: np.ndarray, obs: np.ndarray) -> None:
    W = x.shape[1]
    idx = np.where(obs, np.arange(W)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    first = np.argmax(obs, axis=1)
    idx = np.where(idx < 0, first[:, None], idx)
    x[:] = np.take_along_axis(x, idx, axis=1)


def _linear(x: np.ndarray, obs: np.ndarray) -> None:
    W = x.shape[1]
    pos = np.arange(W)
    prev = np.where(obs, pos[None, :], -1)
    np.maximum.accumulate(prev, axis=1, out=prev)
    nxt = np.where(obs, pos[None, :], W)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]
    first = np.argmax(obs, axis=1)[:, None]
    last = (W - 1 - np.argmax(obs[:, ::-1], axis=1))[:, None]
    p = np.where(prev < 0, first, prev)
    q = np.where(nxt >= W, last, nxt)
    xp = np.take_along_axis(x, p, axis=1)
    xq = np.take_along_axis(x, q, axis=1)
    span = (q - p).astype(np.float32)
    frac = np.where(span > 0, (pos[None, :] - p) / np.where(span > 0, span, 1), 0.0).astype(np.float32)
    filled = xp + (xq - xp) * frac
    x[~obs] = filled[~obs]
