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

from operator import itemgetter

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.captions.base import (CaptionLevel, Claim, channel_text, clock, clocks, decimals, fmt, fmt_spec,
                                      tolerance)
from sensorpipe.captions.segments import (batched_extrema, batched_extrema_channels, bin_means, bin_means_cm,
                                          extremum_holds, pairs, pick_segments, pick_stable, trend_scores)
from sensorpipe.captions.statistical import batch_moments, observed_or_nan, observed_or_zero
from sensorpipe.core.windows import WindowBatch

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


class StructuralLevel(CaptionLevel):
    name = "structural"
    imports = ("sensorpipe.captions._scipy_signal",)   # scipy.signal's find_peaks (segments.py: at the first call)
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

    def _channels(self, batch: WindowBatch) -> list[int]:
        return [j for j, ch in enumerate(batch.channels) if not registry.get(ch).categories and ch != "on_wrist"]

    def claims(self, batch: WindowBatch) -> list[list[Claim]]:
        cfg = self.cfg.structural
        W, B = batch.size_min, bin_minutes(self.cfg, batch.size_min)
        out: list[list[Claim]] = [[] for _ in range(len(batch))]
        if len(batch) == 0:
            return out
        # a channel the statistical level calls missing (under min_coverage) has no structure to describe
        covered_cw = batch_moments(batch)["n"] >= max(self.cfg.min_coverage * W, 1)   # [N, C]
        js = [j for j in self._channels(batch) if covered_cw[:, j].any()]
        if not js:
            return out
        covered = covered_cw.tolist()
        # channel-major copies of the described channels (from the batch's shared ones, already 0 where not
        # observed): every per-channel pass below reads contiguous minutes
        _, o_cm = batch.channel_major()
        bm = bin_means_cm(observed_or_zero(batch)[:, js], o_cm[:, js], B, cfg.min_bin_observed_min, zero_filled=True)
        delta = np.array([threshold(self.cfg, batch.channels[j]) for j in js])
        delta_of = {j: float(d) for j, d in zip(js, delta)}
        # candidates as light tuples (score, kind, channel index, start, end, value or first value, last value or
        # None); claims only for those kept
        found: list[list[tuple]] = [[] for _ in range(len(batch))]
        bins_cm = np.ascontiguousarray(bm.transpose(2, 0, 1))     # [channels, N, bins]
        peaks = batched_extrema_channels(bins_cm, delta)          # every channel's peaks in one find_peaks call
        drops = batched_extrema_channels(-bins_cm, delta)
        minutes = observed_or_nan(batch)
        for c, j in enumerate(js):   # spikes of all windows in one find_peaks call
            self._extrema(batch.channels[j], minutes[:, j], found, j, bm[:, :, c], float(delta[c]), B, W, peaks[c],
                          drops[c])
        if bm.shape[1] >= 3:   # a trend spans at least 3 bins
            self._trends(found, js, bm, delta, B, W)
        kept_all = []
        for i in range(len(batch)):   # keep the strongest, then state them in order
            cov = covered[i]
            # strongest first (reverse keeps equal scores in finding order, as a key of -score does), then in order
            kept = sorted([t for t in found[i] if cov[t[2]]], key=itemgetter(0), reverse=True)[:cfg.max_claims]
            kept.sort(key=itemgetter(2, 3, 1))
            kept_all.append(kept)
        # the local clock of every stated start and end in one gather (not a numpy scalar, or a row, per claim)
        rows = [i for i, kept in enumerate(kept_all) for _ in kept]
        edges = [t[3] for kept in kept_all for t in kept] + [t[4] for kept in kept_all for t in kept]
        times = clocks(batch.local_min, rows + rows, edges)
        t1_at = len(rows)
        chans, name = batch.channels, self.name
        dec_of = {j: decimals(chans[j]) for j in js}
        pos = 0
        for i, kept in enumerate(kept_all):
            claims = []
            for _, kind, j, start, end, v, v1 in kept:
                d = dec_of[j]
                data = {"channel": chans[j], "start_min": start, "end_min": end, "t0": times[pos],
                        "t1": times[t1_at + pos], "threshold": delta_of[j], "bin_min": B, "decimals": d}
                if v1 is None:     # values are Python floats: round() is what stated() does
                    data["v"] = round(v, d)
                else:
                    data["v0"] = round(v, d)
                    data["v1"] = round(v1, d)
                claims.append(Claim(name, kind, data))
                pos += 1
            out[i] = claims
        return out

    def _trends(self, found, js, bm, delta, B, W) -> None:
        """Changing trends (strongest first) then one stable stretch, for all windows and channels at once."""
        N, nb, C = bm.shape
        x = np.ascontiguousarray(bm.transpose(0, 2, 1)).reshape(N * C, nb)   # series s = window * C + channel
        deltas = np.tile(delta, N)
        picks = pick_segments(trend_scores(x, deltas), nb, self.cfg.structural.max_trends)
        pa, pb = pairs(nb)
        series = x.tolist()                                      # [N * C][bins] as Python floats
        for best, val in picks:
            chosen = np.flatnonzero(val > 0)
            for s, a, b, score in zip(chosen.tolist(), pa[best[chosen]].tolist(), pb[best[chosen]].tolist(),
                                      val[chosen].tolist()):
                i, c = divmod(s, C)
                x_s = series[s]      # a trend's change is at least delta (> 0) either way: its sign says which
                found[i].append((score, "increasing" if x_s[b] > x_s[a] else "decreasing", js[c], a * B,
                                 min((b + 1) * B, W), x_s[a], x_s[b]))
        first, last, length = pick_stable(x, deltas, picks)
        chosen = np.flatnonzero(length > 0)
        for s, a, b, score in zip(chosen.tolist(), first[chosen].tolist(), last[chosen].tolist(),
                                  length[chosen].tolist()):
            i, c = divmod(s, C)
            x_s = series[s]
            found[i].append((score / 4, "stable", js[c], a * B, min((b + 1) * B, W),
                             sum(x_s[a:b + 1]) / (b + 1 - a), None))

    def _extrema(self, ch, minutes, found, j, bm_c, delta, B, W, peaks=None, drops=None) -> None:
        """Peaks and drops of the bin means, and spikes of the minutes, of channel ``j`` in every window
        (``minutes``: its ``[N, W]`` values, NaN where not observed (:func:`observed_or_nan`), float32 as the
        window holds them: the spike search widens them exactly); ``peaks``/``drops``: the bin means' extrema
        when the caller found them for all channels at once."""
        cfg = self.cfg.structural
        kinds = [("peak", bm_c, batched_extrema(bm_c, delta) if peaks is None else peaks),
                 ("drop", bm_c, batched_extrema(-bm_c, delta) if drops is None else drops)]
        if registry.get(ch).aggregation == "mean":
            floor = bm_c + 2 * delta    # per bin, then per minute; NaN (unknown bin): never a spike
            kinds.append(("spike", minutes, batched_extrema(minutes, 2 * delta, cfg.spike_max_width_min,
                                                            np.repeat(floor, B, axis=1)[:, :W])))
        for kind, x, (rows, idx, prom) in kinds:
            if not rows.size:
                continue
            order = np.lexsort((idx, -prom, rows))           # per window, most prominent first
            rows, idx, prom = rows[order], idx[order], prom[order]
            first = np.searchsorted(rows, rows)              # index of each row's first (most prominent) extremum
            keep = (np.arange(rows.size) - first) < cfg.max_peaks
            values = x[rows[keep], idx[keep]].tolist()
            for i, k, p, v in zip(rows[keep].tolist(), idx[keep].tolist(), prom[keep].tolist(), values):
                start, end = (k, k + 1) if kind == "spike" else (k * B, min((k + 1) * B, W))
                found[i].append((p / delta, kind, j, start, end, v, None))

    def fields(self, claim: Claim) -> dict[str, str]:
        d = claim.data
        name, unit = channel_text(d["channel"])
        f = {"label": name, "unit": unit, "t0": d["t0"], "t1": d["t1"]}
        if "v" in d:
            f["v"] = fmt(d["v"], d["decimals"])
        else:
            spec = fmt_spec(d["decimals"])
            f["v0"], f["v1"] = format(d["v0"], spec), format(d["v1"], spec)
        return f

    def check(self, claim: Claim, batch: WindowBatch) -> str | None:
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
            why = extremum_holds(v, k, 2 * delta, self.cfg.structural.spike_max_width_min)
            return f"spike at {d['t0']}: {why}" if why else self._value(v[k], d["v"], d)
        x = bin_means(batch.values[:, :, j:j + 1], batch.observed[:, :, j:j + 1], B,
                      self.cfg.structural.min_bin_observed_min)[0, :, 0]
        a = d["start_min"] // B
        b = (d["end_min"] - 1) // B
        if a * B != d["start_min"] or min((b + 1) * B, W) != d["end_min"]:
            return f"{d['start_min']}-{d['end_min']} are not bin edges"
        if claim.kind in ("peak", "drop"):
            sign = 1.0 if claim.kind == "peak" else -1.0
            why = extremum_holds(sign * x, a, delta)
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
