"""Fill missing minutes of windows, per channel, keeping the mask apart.

The mask (True = missing) is taken from ``observed`` before imputation and
never changes here, whatever the method: the model always knows which
minutes were real. Methods (vectorized over windows and minutes; minutes are
evenly spaced, so interpolation by index is interpolation in time):

* ``none``: NaN stays (for models that mask inputs themselves);
* ``zero``: 0 in the channel's real unit (counts, flags);
* ``mean``: the participant's mean of the channel over all their observed
  minutes (computed in pass one from the whole minute grid of the unit);
* ``window_mean``: the mean of the window's observed minutes of the channel;
* ``ffill``: carry the last observation forward; a leading gap takes the
  first observation (backward fill);
* ``linear``: linear interpolation between the observations either side;
  a leading or trailing gap holds the nearest observation;
* ``lsm``: the LSM recipe, time interpolation, then backfill, then zero; here
  exactly ``linear`` without a gap limit, "zero" being the normalized zero
  (see below).

``max_gap_min`` (``ffill`` and ``linear`` only) bounds the gaps a method
fills: a run of missing minutes longer than that is left whole (not filled
part-way, which would put a step inside the gap). Gaps are measured inside
the window, so an edge gap counts the minutes up to the window's edge.

Cells a method does not fill (a gap over the limit; a window, or for
``mean`` a participant, with no observation of the channel) get the
channel's ``fallback``: the train-split value that normalizes to 0 (the mean
for z-score, the median for robust; see
:mod:`sensorpipe.processing.normalizers`). That is what LSM's final "zero"
means once normalization comes after imputation, as it does here. Method
``none`` never falls back. :func:`fill_counts` counts every filled cell by
how it was filled, so nothing changes silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.config import GAP_LIMITED_IMPUTATION, ChannelImputation, ImputationConfig
from sensorpipe.processing.counts import count_true


@dataclass(frozen=True)
class ImputeSpec:
    """One channel's resolved imputation: method and gap limit (None = no limit)."""

    method: str
    max_gap_min: int | None = None


def specs_for(channels: tuple[str, ...], cfg: ImputationConfig) -> tuple[ImputeSpec, ...]:
    """Per channel: ``per_channel``, else ``default``, else the registry; the gap limit likewise."""
    out = []
    for c in channels:
        entry = cfg.per_channel.get(c)
        method = entry.method if isinstance(entry, ChannelImputation) else (entry or cfg.default or registry.get(c).impute)
        gap = entry.max_gap_min if isinstance(entry, ChannelImputation) else None
        if gap is None and method in GAP_LIMITED_IMPUTATION:
            gap = cfg.max_gap_min
        out.append(ImputeSpec(method, gap))
    return tuple(out)


def methods_for(channels: tuple[str, ...], cfg: ImputationConfig) -> tuple[str, ...]:
    return tuple(s.method for s in specs_for(channels, cfg))


def gap_lengths(observed: np.ndarray) -> np.ndarray:
    """Length (minutes) of the missing run each cell is in, 0 where observed; runs along axis 1 of ``[N, W, ...]``."""
    W = observed.shape[1]
    pos = np.arange(W, dtype=np.int32).reshape((1, W) + (1,) * (observed.ndim - 2))
    prev = np.where(observed, pos, np.int32(-1))
    np.maximum.accumulate(prev, axis=1, out=prev)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(observed, pos, np.int32(W)), axis=1), axis=1), axis=1)
    return np.where(observed, 0, nxt - prev - 1).astype(np.int32)


def window_quality(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per window and channel: missing share ``[N, C] float32`` and longest gap in minutes ``[N, C] int32``."""
    N, W, C = observed.shape
    missing = (count_true(~observed) / W).astype(np.float32)
    return missing, _longest_gap(observed)


def _longest_gap(observed: np.ndarray) -> np.ndarray:
    """``[N, C] int32``: the longest run of missing minutes per window and channel.

    The runs' starts and ends come from one diff over the mask laid out
    channel by channel, with an observed cell after each window so no run
    crosses into the next; cheaper than every cell's gap length.
    """
    N, W, C = observed.shape
    m = np.ones((N, C, W + 1), bool)
    m[:, :, :W] = observed.transpose(0, 2, 1)
    d = np.diff(np.concatenate([[True], m.reshape(-1)]).view(np.int8))
    starts, ends = np.flatnonzero(d == -1), np.flatnonzero(d == 1)  # observed -> missing, missing -> observed
    out = np.zeros(N * C, np.int32)
    if starts.size:
        np.maximum.at(out, starts // (W + 1), (ends - starts).astype(np.int32))
    return out.reshape(N, C)


def _fillable(obs: np.ndarray, gaps: np.ndarray | None, spec: ImputeSpec, has_participant_mean: bool) -> np.ndarray:
    """Cells ``[N, W]`` the method itself fills (the other missing cells get the fallback, unless ``none``)."""
    if spec.method == "none":
        return np.zeros_like(obs)
    if spec.method == "mean":
        return ~obs if has_participant_mean else np.zeros_like(obs)
    ok = ~obs & obs.any(axis=1, keepdims=True)
    if spec.max_gap_min is not None and spec.method in GAP_LIMITED_IMPUTATION:
        ok &= gaps <= spec.max_gap_min
    return ok


def impute(values: np.ndarray, observed: np.ndarray, specs: tuple[ImputeSpec, ...], fallback: np.ndarray,
           participant_mean: np.ndarray | None = None) -> np.ndarray:
    """Return an imputed float32 copy of ``values [N, W, C]`` (``observed`` is not changed).

    Works on a channel-major copy (each channel's minutes contiguous), and
    ``ffill``/``linear`` work gap by gap (:func:`_fill_gaps`): a heart-rate
    channel misses a few percent of its minutes and an HRV channel observes a
    few, so whole-window passes, or per-cell neighbour searches, were mostly
    wasted work.
    """
    N, W, C = values.shape
    out = np.empty((C, N, W), np.float32)
    out[...] = values.transpose(2, 0, 1)
    obs_cm = np.ascontiguousarray(observed.transpose(2, 0, 1))
    pmean = np.full(C, np.nan) if participant_mean is None else np.asarray(participant_mean, np.float64)
    for j, spec in enumerate(specs):
        x, obs = out[j], obs_cm[j]
        missing = ~obs
        if spec.method == "none":
            np.copyto(x, np.nan, where=missing)
            continue
        # every missing cell gets the estimate or the fallback below; the estimates read observed cells only
        if spec.method in _BY_GAP:
            _fill_gaps(spec, x, obs, fallback[j])
            continue
        gaps = gap_lengths(obs) if spec.max_gap_min is not None else None
        ok = _fillable(obs, gaps, spec, bool(np.isfinite(pmean[j])))
        if ok.any():
            np.copyto(x, _estimate(spec.method, x, obs, pmean[j]), where=ok)
        np.copyto(x, fallback[j], where=missing & ~ok)
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def fill_counts(observed: np.ndarray, channels: tuple[str, ...], specs: tuple[ImputeSpec, ...],
                participant_mean: np.ndarray | None = None) -> dict[str, dict[str, int]]:
    """Missing cells per channel by what happened to them: ``<method>`` (filled by it),
    ``fallback_long_gap``, ``fallback_no_observation`` or ``left_missing`` (method ``none``)."""
    if not observed.size:
        return {}
    N, W, C = observed.shape
    pmean = np.full(C, np.nan) if participant_mean is None else np.asarray(participant_mean, np.float64)
    seen = count_true(observed)     # [N, C] observed minutes per window: what the counts need without gap limits
    out: dict[str, dict[str, int]] = {}
    for j, (ch, spec) in enumerate(zip(channels, specs)):
        missing = N * W - int(seen[:, j].sum())
        if not missing:
            continue
        if spec.method == "none":
            out[ch] = {"left_missing": missing}
            continue
        empty = W * (N - np.count_nonzero(seen[:, j]))      # the minutes of windows without the channel
        if spec.method == "mean":   # falls back only when the participant never had the channel
            filled = missing if np.isfinite(pmean[j]) else 0
            no_obs = missing - filled
        elif spec.max_gap_min is not None and spec.method in GAP_LIMITED_IMPUTATION:
            obs = np.ascontiguousarray(observed[:, :, j])
            filled = np.count_nonzero(_fillable(obs, gap_lengths(obs), spec, False))
            no_obs = empty
        else:   # every missing minute of a window with an observation is filled
            filled, no_obs = missing - empty, empty
        counts = {spec.method: filled, "fallback_long_gap": missing - filled - no_obs, "fallback_no_observation": no_obs}
        out[ch] = {k: int(v) for k, v in counts.items() if v}
    return out


def _estimate(method: str, x: np.ndarray, obs: np.ndarray, participant_mean: float) -> np.ndarray:
    """The method's value for every cell of ``x [N, W]`` (only missing, fillable cells are used)."""
    if method == "zero":
        return np.zeros_like(x)
    if method == "mean":
        return np.full_like(x, participant_mean)
    if method == "window_mean":
        cnt = obs.sum(axis=1, keepdims=True)
        mean = np.where(obs, x, 0.0).sum(axis=1, keepdims=True, dtype=np.float64) / np.maximum(cnt, 1)
        return np.broadcast_to(mean, x.shape).astype(np.float32)
    raise ValueError(f"unknown imputation method {method!r}")  # pragma: no cover - config validation rejects it


_BY_GAP = ("ffill", "linear", "lsm")   # methods filled gap by gap (_fill_gaps)


def _expand(first: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat cells ``first[i] .. first[i] + length[i] - 1`` of every run, each cell's 1-based place in its run)."""
    starts = np.cumsum(length) - length
    k1 = np.arange(1, int(length.sum()) + 1) - np.repeat(starts, length)
    return np.repeat(first - 1, length) + k1, k1


def _fill_gaps(spec: ImputeSpec, x: np.ndarray, obs: np.ndarray, fallback: np.float32) -> None:
    """``ffill`` or ``linear`` (``lsm``) of the missing cells of ``x [N, W]`` in place, one gap at a time; the
    cells of a window without observations, or of a gap over ``spec.max_gap_min``, get ``fallback``.

    A gap is a run of missing minutes inside one window (a virtual observation
    after each window's end keeps runs apart), found from one diff of the mask.
    Per gap: the observations either side (a leading gap holds the window's
    first observation, a trailing one its last) and their values; per cell only
    ``xp + (xq - xp) * frac`` in float64, ``frac = (t - p) / (q - p)``, and 0 for
    a held gap (its span is made infinite, its ``t - p`` kept positive), rounded
    once to float32: the values of the scans over whole windows, to the bit.
    """
    N, W = x.shape
    xf = x.reshape(-1)
    m = np.ones((N, W + 1), np.int8)
    m[:, :W] = obs
    d = np.diff(m.reshape(-1), prepend=np.int8(1))
    s, e = np.flatnonzero(d == -1), np.flatnonzero(d == 1)   # each gap's first missing and next observed cell
    if not s.size:
        return
    row = s // (W + 1)
    cs, ce = s - row * (W + 1), e - row * (W + 1)             # the gap is minutes [cs, ce) of window `row`
    length, lead, trail, base = ce - cs, cs == 0, ce == W, row * W
    fill = ~(lead & trail)                                     # a window with no observation: fallback
    if spec.max_gap_min is not None and spec.method in GAP_LIMITED_IMPUTATION:   # as _fillable: not lsm
        fill &= length <= spec.max_gap_min                     # gaps are measured to the window's edge
    if not fill.all():
        rest = ~fill
        xf[_expand(base[rest] + cs[rest], length[rest])[0]] = fallback
        length, lead, trail, base, cs, ce = (a[fill] for a in (length, lead, trail, base, cs, ce))
        if not length.size:
            return
    p = base + np.where(lead, ce, cs - 1)          # the observation before (leading gap: the first after)
    cells, k1 = _expand(base + cs, length)
    if spec.method == "ffill":
        xf[cells] = np.repeat(xf[p], length)
        return
    q = base + np.where(trail, cs - 1, ce)         # the observation after (trailing gap: the last before)
    xp = xf[p].astype(np.float64)
    span = (q - p).astype(np.float64)
    span[span == 0] = np.inf                       # a held gap: frac = k / inf = 0.0
    frac = k1 / np.repeat(span, length)            # interior gap: t - p = k1, the cell's place in the gap
    xf[cells] = (np.repeat(xp, length) + np.repeat(xf[q].astype(np.float64) - xp, length) * frac).astype(np.float32)
