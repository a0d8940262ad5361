"""Structural captions: trends, peaks, drops and spikes over coarse bins of the window.

The window is averaged into bins (40-minute bins for a day: SensorLM's
structural level) over observed minutes only; a bin with fewer than
``min_bin_observed_min`` observed minutes is unknown and no trend crosses it.
With ``delta`` the channel's threshold (:data:`MIN_CHANGE` or
``captions.structural.min_change``), stated in every claim:

* **increasing / decreasing**: a run of at least 3 bins whose end differs from
  its start by at least ``delta`` and with no step back of more than
  ``delta / 2``; the strongest few, sharing at most an end bin;
* **stable**: at least 4 bins within ``delta / 2`` of each other (the longest one);
* **peak / drop**: ``scipy.signal.find_peaks`` on the bin means (negated for
  drops) with prominence >= ``delta``;
* **spike**: ``find_peaks`` on the observed minutes of mean channels: a
  minute at least ``2 delta`` above its bin's mean (``height``), with
  prominence >= ``2 delta`` and width <= ``spike_max_width_min``.

Times are local clock times of the bins' edges. Candidate segments are
enumerated for all windows and channels of a unit at once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import find_peaks, peak_prominences, peak_widths

from sensorpipe import channels as registry
from sensorpipe.captions.base import (CaptionBatch, CaptionLevel, Claim, clock, decimals, fmt, label,
                                      register_caption_level, stated, tolerance)

#: Smallest change worth a trend, and prominence worth a peak or drop, in the channel's unit.
MIN_CHANGE = {"heart_rate": 10.0, "resting_heart_rate": 3.0, "hrv_rmssd": 10.0, "hrv_sdnn": 10.0, "spo2": 2.0,
              "respiratory_rate": 2.0, "steps": 20.0, "calories": 1.0, "enmo": 20.0, "distance": 20.0,
              "eda_level": 0.5, "eda_scr_rate": 2.0, "skin_temperature": 0.5, "glucose": 20.0}


def threshold(cfg, channel: str) -> float:
    if channel in cfg.structural.min_change:
        return float(cfg.structural.min_change[channel])
    if channel in MIN_CHANGE:
        return MIN_CHANGE[channel]
    ch = registry.get(channel)
    return 0.05 * (ch.valid_max - ch.valid_min)


def bin_minutes(cfg, size_min: int) -> int:
    return cfg.structural.bin_min or max(5, size_min // 36)


def bin_means(values: np.ndarray, observed: np.ndarray, bin_min: int, min_observed: int) -> np.ndarray:
    """``[N, bins, C]`` mean of observed minutes per bin (NaN where too few were observed)."""
    edges = np.arange(0, values.shape[1], bin_min)
    sums = np.add.reduceat(np.where(observed, values.astype(np.float64), 0.0), edges, axis=1)
    counts = np.add.reduceat(observed.astype(np.int32), edges, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts >= min_observed, sums / counts, np.nan)


def _accumulated(x: np.ndarray, ufunc) -> np.ndarray:
    """``out[..., a, b] = ufunc over x[..., a:b+1]`` for b >= a (NaN elsewhere); NaN propagates."""
    n = x.shape[-1]
    out = np.full(x.shape[:-1] + (n, n), np.nan)
    for a in range(n):   # one iteration per start bin, vectorized over windows, channels and end bins
        out[..., a, a:] = ufunc.accumulate(x[..., a:], axis=-1)
    return out


def _candidates(bm: np.ndarray, delta: np.ndarray) -> dict[str, np.ndarray]:
    """Scores ``[N, C, a, b]`` of every trend segment a..b (bins, inclusive); 0 where not a trend."""
    x = np.moveaxis(bm, 1, 2)                                # [N, C, nb]
    steps = np.diff(x, axis=-1)                              # [N, C, nb-1]
    nb = x.shape[-1]
    min_step = np.full(x.shape[:-1] + (nb, nb), np.nan)
    max_step = np.full_like(min_step, np.nan)
    min_step[..., :-1, 1:] = _accumulated(steps, np.fmin)
    max_step[..., :-1, 1:] = _accumulated(steps, np.fmax)
    # NaN steps must break a segment: fmin/fmax skip NaN, so count unknown bins instead
    unknown = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(np.isnan(x), axis=-1)], axis=-1)
    all_known = (unknown[..., None, 1:] - unknown[..., :-1, None]) == 0           # [N, C, a, b]
    a_idx, b_idx = np.meshgrid(np.arange(nb), np.arange(nb), indexing="ij")
    length = b_idx - a_idx
    change = x[..., None, :] - x[..., :, None]                                     # x[b] - x[a]
    d = delta[None, :, None, None]
    with np.errstate(invalid="ignore"):
        hi = _accumulated(x, np.fmax)
        lo = _accumulated(x, np.fmin)
        ok = all_known & (length >= 2)
        inc = ok & (change >= d) & (min_step >= -d / 2)
        dec = ok & (-change >= d) & (max_step <= d / 2)
        stable = all_known & (length >= 3) & ((hi - lo) <= d / 2)
    tight = 1e-3 * length       # among equal changes, the shortest segment says where the change happened
    return {"increasing": np.where(inc, change / d - tight, 0.0), "decreasing": np.where(dec, -change / d - tight, 0.0),
            "stable": np.where(stable, length.astype(float), 0.0)}


@lru_cache(maxsize=8)
def _bin_grid(nb: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(nb), np.arange(nb), indexing="ij")


def _pick(score: np.ndarray, k: int, taken: list[tuple[int, int]]) -> list[tuple[int, int, float]]:
    """Greedy: the ``k`` best segments (a, b) sharing at most an end bin with each other and ``taken``."""
    if k <= 0 or score.max() <= 0:
        return []
    score = score.copy()
    out = []
    a_idx, b_idx = _bin_grid(score.shape[0])
    for a0, b0 in taken:
        score[(a_idx < b0) & (b_idx > a0)] = 0
    while len(out) < k and score.max() > 0:
        a, b = np.unravel_index(int(np.argmax(score)), score.shape)
        out.append((int(a), int(b), float(score[a, b])))
        score[(a_idx < b) & (b_idx > a)] = 0
    return out


def _known_runs(x: np.ndarray) -> list[tuple[int, int]]:
    ok = ~np.isnan(x)
    d = np.diff(np.concatenate(([0], ok.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def batched_extrema(x: np.ndarray, prominence: float, max_width: float | None = None,
                    height: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of each row of ``x [N, L]`` (NaN = unknown) with at least ``prominence``: (row, index, prominence).

    One ``find_peaks`` call for all rows: rows and unknown stretches are
    separated by a sentinel above every value, which bounds the prominence and
    width searches exactly as the end of a known run would, and is never
    reported itself. Same result as one call per known run.
    """
    N, L = x.shape
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    sentinel = float(np.abs(finite).max()) * 4 + 1e6
    flat = np.full((N, L + 1), sentinel)
    flat[:, :L] = np.where(np.isnan(x), sentinel, x)
    flat = flat.reshape(-1)
    kw = {"prominence": prominence}
    if max_width is not None:
        kw["width"] = (None, max_width)
    # height is checked before prominence: the sentinels (and, for spikes, minutes not high enough above their
    # bin) never reach the costly prominence search
    low = None
    if height is not None:
        low = np.full((N, L + 1), np.inf)
        low[:, :L] = height
        low = low.reshape(-1)
    kw["height"] = (low, sentinel / 2)
    idx, props = find_peaks(flat, **kw)
    real = flat[idx] < sentinel
    idx, prom = idx[real], props["prominences"][real]
    return idx // (L + 1), idx % (L + 1), prom


def _extremum_holds(x: np.ndarray, i: int, prominence: float, max_width: float | None = None) -> str | None:
    """Why ``x[i]`` is not a peak of ``x`` with that prominence (and width), or None."""
    run = next(((s, e) for s, e in _known_runs(x) if s <= i < e), None)
    if run is None:
        return "its value is unknown"
    s, e = run
    seg = x[s:e]
    k = i - s
    if not (0 < k < len(seg) - 1):
        return "it is at the edge of the known data"
    idx, _ = find_peaks(seg)
    if k not in idx:
        return "it is not a local extremum"
    prom = float(peak_prominences(seg, [k])[0][0])
    if prom < prominence:
        return f"its prominence {prom:.6g} is below {prominence:g}"
    if max_width is not None:
        width = float(peak_widths(seg, [k], rel_height=0.5, prominence_data=peak_prominences(seg, [k]))[0][0])
        if width > max_width:
            return f"it lasts {width:.3g} min (a spike lasts at most {max_width:g})"
    return None


@register_caption_level
class StructuralLevel(CaptionLevel):
    name = "structural"
    templates = {
        "increasing": ("{label} rose from {v0} to {v1} {unit} between {t0} and {t1}",
                       "{label} increased from {t0} to {t1} ({v0} to {v1} {unit})",
                       "between {t0} and {t1}, {label} climbed from {v0} to {v1} {unit}"),
        "decreasing": ("{label} fell from {v0} to {v1} {unit} between {t0} and {t1}",
                       "{label} decreased from {t0} to {t1} ({v0} to {v1} {unit})",
                       "between {t0} and {t1}, {label} dropped from {v0} to {v1} {unit}"),
        "stable": ("{label} stayed near {v} {unit} from {t0} to {t1}",
                   "{label} was stable at about {v} {unit} between {t0} and {t1}"),
        "peak": ("{label} peaked at {v} {unit} between {t0} and {t1}",
                 "a peak of {v} {unit} in {label} came between {t0} and {t1}"),
        "drop": ("{label} dipped to {v} {unit} between {t0} and {t1}",
                 "a low of {v} {unit} in {label} came between {t0} and {t1}"),
        "spike": ("a brief spike in {label} to {v} {unit} at {t0}",
                  "{label} spiked briefly to {v} {unit} at {t0}"),
    }

    def _channels(self, batch: CaptionBatch) -> list[int]:
        return [j for j, ch in enumerate(batch.channels) if not registry.get(ch).categories and ch != "on_wrist"]

    def claims(self, batch: CaptionBatch) -> list[list[Claim]]:
        cfg = self.cfg.structural
        W, B = batch.size_min, bin_minutes(self.cfg, batch.size_min)
        js = self._channels(batch)
        out: list[list[Claim]] = [[] for _ in range(len(batch))]
        if not js or len(batch) == 0:
            return out
        bm = bin_means(batch.values[:, :, js], batch.observed[:, :, js], B, cfg.min_bin_observed_min)
        delta = np.array([threshold(self.cfg, batch.channels[j]) for j in js])
        cand = _candidates(bm, delta) if bm.shape[1] >= 3 else None
        scored: list[list[tuple[float, Claim]]] = [[] for _ in range(len(batch))]
        for c, j in enumerate(js):    # one iteration per channel: extrema of all windows in one find_peaks call
            self._extremum_claims(batch, scored, c, j, bm[:, :, c], float(delta[c]), B, W)
        known = ~np.isnan(bm).all(axis=1)                          # [N, channels]
        for i in range(len(batch)):   # one iteration per window and channel for the (vectorized) trend choice
            if cand is not None:
                for c, j in enumerate(js):
                    if known[i, c]:
                        scored[i] += self._trend_claims(batch, i, j, bm[i, :, c], float(delta[c]), B, W,
                                                        {k: v[i, c] for k, v in cand.items()})
            ranked = sorted(scored[i], key=lambda t: -t[0])[:cfg.max_claims]
            kept = [cl for _, cl in ranked]
            kept.sort(key=lambda cl: (batch.channels.index(cl.data["channel"]), cl.data["start_min"], cl.kind))
            out[i] = kept
        return out

    def _claim(self, kind: str, ch: str, start: int, end: int, B: int, delta: float, local_min, **values):
        d = decimals(ch)
        data = {"channel": ch, "start_min": start, "end_min": end, "t0": clock(local_min, start),
                "t1": clock(local_min, end), "threshold": delta, "bin_min": B, "decimals": d,
                **{k: stated(v, d) for k, v in values.items()}}
        return Claim(self.name, kind, data)

    def _trend_claims(self, batch, i, j, x, delta, B, W, cand) -> list[tuple[float, Claim]]:
        ch, lm, out = batch.channels[j], batch.local_min[i], []
        taken: list[tuple[int, int]] = []
        for a, b, score in _pick(np.maximum(cand["increasing"], cand["decreasing"]), self.cfg.structural.max_trends,
                                 taken):
            kind = "increasing" if cand["increasing"][a, b] > 0 else "decreasing"
            out.append((score, self._claim(kind, ch, a * B, min((b + 1) * B, W), B, delta, lm, v0=x[a], v1=x[b])))
            taken.append((a, b))
        for a, b, score in _pick(cand["stable"], 1, taken):
            out.append((score / 4, self._claim("stable", ch, a * B, min((b + 1) * B, W), B, delta, lm,
                                               v=float(np.mean(x[a:b + 1])))))
        return out

    def _extremum_claims(self, batch, scored, c, j, bm_c, delta, B, W) -> None:
        """Peaks and drops of the bin means, and spikes of the minutes, of channel ``j`` in every window."""
        cfg, ch = self.cfg.structural, batch.channels[j]
        found = [("peak", bm_c, batched_extrema(bm_c, delta)), ("drop", bm_c, batched_extrema(-bm_c, delta))]
        if registry.get(ch).aggregation == "mean":
            minutes = np.where(batch.observed[:, :, j], batch.values[:, :, j].astype(np.float64), np.nan)
            floor = np.repeat(bm_c, B, axis=1)[:, :W] + 2 * delta      # NaN (unknown bin): never a spike
            found.append(("spike", minutes, batched_extrema(minutes, 2 * delta, cfg.spike_max_width_min,
                                                            np.where(np.isnan(floor), np.inf, floor))))
        for kind, x, (rows, idx, prom) in found:
            order = np.lexsort((idx, -prom, rows))           # per window, most prominent first
            count: dict[int, int] = {}
            for i, k, p in zip(rows[order].tolist(), idx[order].tolist(), prom[order].tolist()):
                if count.get(i, 0) >= cfg.max_peaks:
                    continue
                count[i] = count.get(i, 0) + 1
                start, end = (k, k + 1) if kind == "spike" else (k * B, min((k + 1) * B, W))
                scored[i].append((p / delta, self._claim(kind, ch, start, end, B, delta, batch.local_min[i],
                                                         v=x[i, k])))

    def fields(self, claim: Claim) -> dict[str, str]:
        d = claim.data
        f = {"label": label(d["channel"]), "unit": registry.get(d["channel"]).unit, "t0": d["t0"], "t1": d["t1"]}
        f.update({k: fmt(d[k], d["decimals"]) for k in ("v", "v0", "v1") if k in d})
        return f

    def check(self, claim: Claim, batch: CaptionBatch) -> str | None:
        d = claim.data
        j = batch.index(d["channel"])
        if j is None:
            return f"{d['channel']} is not a channel of the window"
        W, B = batch.size_min, bin_minutes(self.cfg, batch.size_min)
        lm = batch.local_min[0]
        delta = threshold(self.cfg, d["channel"])
        if d["threshold"] != delta or d["bin_min"] != B:
            return f"stated threshold {d['threshold']} / bins {d['bin_min']} min differ from the config ({delta}, {B})"
        if clock(lm, d["start_min"]) != d["t0"] or clock(lm, d["end_min"]) != d["t1"]:
            return f"times {d['t0']}-{d['t1']} are not the local clock of minutes {d['start_min']}-{d['end_min']}"
        if claim.kind == "spike":
            v = np.where(batch.observed[0, :, j], batch.values[0, :, j].astype(np.float64), np.nan)
            k = d["start_min"]
            bins = bin_means(batch.values[:, :, j:j + 1], batch.observed[:, :, j:j + 1], B,
                             self.cfg.structural.min_bin_observed_min)[0, :, 0]
            if not v[k] >= bins[k // B] + 2 * delta:
                return f"spike at {d['t0']}: {v[k]:.6g} is not {2 * delta:g} above its bin's mean {bins[k // B]:.6g}"
            why = _extremum_holds(v, k, 2 * delta, self.cfg.structural.spike_max_width_min)
            return f"spike at {d['t0']}: {why}" if why else self._value(v[k], d["v"], d)
        x = bin_means(batch.values[:, :, j:j + 1], batch.observed[:, :, j:j + 1], B,
                      self.cfg.structural.min_bin_observed_min)[0, :, 0]
        a = d["start_min"] // B
        b = (d["end_min"] - 1) // B
        if a * B != d["start_min"] or min((b + 1) * B, W) != d["end_min"]:
            return f"{d['start_min']}-{d['end_min']} are not bin edges"
        if claim.kind in ("peak", "drop"):
            sign = 1.0 if claim.kind == "peak" else -1.0
            why = _extremum_holds(sign * x, a, delta)
            return f"{claim.kind} at {d['t0']}: {why}" if why else self._value(x[a], d["v"], d)
        seg = x[a:b + 1]
        if np.isnan(seg).any():
            return f"the segment {d['t0']}-{d['t1']} has bins without data"
        if claim.kind == "stable":
            if b - a < 3 or seg.max() - seg.min() > delta / 2:
                return f"{d['t0']}-{d['t1']} varies by {seg.max() - seg.min():.6g} (stable means <= {delta / 2:g})"
            return self._value(seg.mean(), d["v"], d)
        sign = 1.0 if claim.kind == "increasing" else -1.0
        steps = sign * np.diff(seg)
        if b - a < 2 or sign * (seg[-1] - seg[0]) < delta or steps.min() < -delta / 2:
            return f"{d['t0']}-{d['t1']} is not {claim.kind} by {delta:g} without a reversal of {delta / 2:g}"
        return self._value(seg[0], d["v0"], d) or self._value(seg[-1], d["v1"], d)

    @staticmethod
    def _value(actual: float, claimed: float, d: dict) -> str | None:
        if abs(actual - claimed) > tolerance(d["decimals"], actual):
            return f"{d['channel']} value {actual:.6g}, claimed {claimed}"
        return None
