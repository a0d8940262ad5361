"""Statistical captions: per caption group, each channel's mean, min, max and SD in real units.

Only observed minutes count (imputed values never reach a caption), and each
number is rounded to the channel's ``caption_decimals``. Sum channels (steps,
calories, distance) also state the window total; categorical channels state
the share of observed minutes per category. A channel observed in less than
``captions.min_coverage`` of the window is listed as missing, not described
by a few minutes. Statistics are computed for all windows of a unit at once.
"""

from __future__ import annotations

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.captions.base import CaptionLevel, Claim, channel_text, fmt_spec, label, tolerance
from sensorpipe.core.windows import WindowBatch

GROUP_ORDER = ("Heart", "Activity", "Sleep", "EDA", "Temperature", "Metabolic")


def masked_moments(values: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
    """Per window and channel over observed minutes (axis 1): n, mean, std (ddof 0), min, max, sum.

    Computed channel-major (``[N, C, W]``, contiguous minutes: reductions
    run faster than across the interleaved channels) in float64, where
    the one-pass variance ``E[x^2] - mean^2`` of float32 inputs is exact to
    ~1e-11 relative.
    """
    return masked_moments_cm(np.ascontiguousarray(values.transpose(0, 2, 1)),
                             np.ascontiguousarray(observed.transpose(0, 2, 1)))


def masked_moments_cm(v: np.ndarray, obs: np.ndarray, nan_filled: np.ndarray | None = None,
                      zero_filled: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`masked_moments` of channel-major ``[N, C, W]`` values and mask (:meth:`WindowBatch.channel_major`);
    ``nan_filled`` / ``zero_filled``: the float32 values with NaN / 0 where not observed (:func:`observed_or_nan`,
    :func:`observed_or_zero`), when the caller has them.

    The minimum and maximum are NaN-skipping reductions of that one NaN-filled copy (a masked select costs
    several times the reduction it feeds, and the structural level's spike search reads the same copy).
    They equal the plain minimum and maximum of the observed values: a window and channel without one
    gets +inf and -inf, and one with an observed NaN gets NaN (its sum is NaN, and NaN-skipping would
    hide it), as a masked ``min``/``max`` gives.
    """
    v = v.astype(np.float32, copy=False)
    vn = np.where(obs, v, np.float32(np.nan)) if nan_filled is None else nan_filled
    if zero_filled is not None and zero_filled.dtype == np.float32:
        vz = zero_filled.astype(np.float64)   # float64: unobserved cells 0, the others widened exactly
    else:
        vz = np.zeros(v.shape)
        np.copyto(vz, v, where=obs)
    n = np.count_nonzero(obs, axis=2)
    total = vz.sum(axis=2)
    squares = np.einsum("ncw,ncw->nc", vz, vz)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    lo = np.fmin.reduce(vn, axis=2).astype(np.float64)
    hi = np.fmax.reduce(vn, axis=2).astype(np.float64)
    lo[n == 0], hi[n == 0] = np.inf, -np.inf
    # a NaN sum (an observed NaN, or observed infinities of both signs; rare): those windows' channels take the
    # masked minimum and maximum themselves, which NaN-skipping reductions cannot tell apart
    odd = np.nonzero(np.isnan(total))
    if odd[0].size:
        lo[odd] = np.where(obs[odd], v[odd], np.float32(np.inf)).min(axis=-1)
        hi[odd] = np.where(obs[odd], v[odd], np.float32(-np.inf)).max(axis=-1)
    return {"n": n, "mean": mean, "std": std, "sum": total, "min": lo, "max": hi}


def observed_or_nan(batch: WindowBatch) -> np.ndarray:
    """The batch's channel-major values (:meth:`WindowBatch.channel_major`) as float32 with NaN where not
    observed, made once per batch: the moments' minimum and maximum and the structural level's spike search
    read it (one masked select instead of one in each)."""
    if "nan_cm" not in batch._cache:
        v, o = batch.channel_major()
        batch._cache["nan_cm"] = np.where(o, v.astype(np.float32, copy=False), np.float32(np.nan))
    return batch._cache["nan_cm"]


def observed_or_zero(batch: WindowBatch) -> np.ndarray:
    """The batch's channel-major values (:meth:`WindowBatch.channel_major`, their dtype) with 0 where not
    observed, made once per batch: the moments' sums and the structural level's bin sums read it."""
    if "zero_cm" not in batch._cache:
        v, o = batch.channel_major()
        batch._cache["zero_cm"] = np.where(o, v, v.dtype.type(0))
    return batch._cache["zero_cm"]


def batch_moments(batch: WindowBatch) -> dict[str, np.ndarray]:
    """:func:`masked_moments` of a whole batch, computed once and shared by the levels (the structural
    level's coverage test reads ``n``)."""
    if "moments" not in batch._cache:
        batch._cache["moments"] = masked_moments_cm(*batch.channel_major(), observed_or_nan(batch),
                                                    observed_or_zero(batch))
    return batch._cache["moments"]


def category_shares(codes: np.ndarray, n_categories: int) -> np.ndarray:
    """Whole percent of observed minutes per category."""
    counts = np.bincount(codes, minlength=n_categories)
    return np.round(100.0 * counts / max(codes.size, 1)).astype(int)


class StatisticalLevel(CaptionLevel):
    name = "statistical"
    templates = {
        "stats": ("{label} averaged {mean} {unit} (min {min}, max {max}, SD {std}; {n} min observed){total}",
                  "{label} was {mean} {unit} on average, from {min} to {max} (SD {std}, {n} observed minutes){total}",
                  "mean {label} {mean} {unit}, range {min} to {max}, SD {std} over {n} observed minutes{total}"),
        "categories": ("{label}: {shares} of {n} observed minutes",
                       "{label} over {n} observed minutes: {shares}"),
        "missing": ("too little data for {channels} (under {pct} of minutes observed)",
                    "{channels}: missing or observed in under {pct} of the window"),
    }

    def claims(self, batch: WindowBatch) -> list[list[Claim]]:
        m = batch_moments(batch)
        W = batch.size_min
        min_n = self.cfg.min_coverage * W
        chans = batch.channels
        specs = [registry.get(ch) for ch in chans]
        order = sorted(range(len(chans)), key=lambda j: GROUP_ORDER.index(specs[j].caption_group))
        n_obs = m["n"].tolist()
        # every number as stated, rounded per channel for all windows at once: [N][C][mean, min, max, std, sum]
        decs = [spec.caption_decimals for spec in specs]
        stats = np.stack([m[k] for k in ("mean", "min", "max", "std", "sum")], axis=-1)     # [N, C, 5]
        rounded = np.empty_like(stats)
        for d in set(decs):
            cols = [j for j in range(len(chans)) if decs[j] == d]
            rounded[:, cols] = np.round(stats[:, cols], d)
        stated = rounded.tolist()
        shares = {j: self._shares(batch, j, len(spec.categories)) for j, spec in enumerate(specs) if spec.categories}
        name, coverage = self.name, self.cfg.min_coverage
        out = []
        for i in range(len(batch)):   # the statistics above are vectorized
            claims, missing, row, n_row = [], [], stated[i], n_obs[i]
            for j in order:
                ch, spec, n = chans[j], specs[j], n_row[j]
                if n == 0 or n < min_n:
                    missing.append((ch, n))
                    continue
                if spec.categories:
                    cats = spec.categories
                    stated_shares = shares[j][i] if shares[j] is not None else self._window_shares(batch, i, j, len(cats))
                    claims.append(Claim(name, "categories", {
                        "channel": ch, "group": spec.caption_group, "n": n,
                        "shares": {cats[k]: v for k, v in stated_shares if v > 0}}))
                    continue
                mean, lo, hi, std, total = row[j]
                data = {"channel": ch, "group": spec.caption_group, "n": n, "decimals": decs[j],
                        "mean": mean, "min": lo, "max": hi, "std": std}
                if spec.aggregation == "sum":
                    data["total"] = total
                claims.append(Claim(name, "stats", data))
            if missing:
                claims.append(Claim(name, "missing", {
                    "channels": [c for c, _ in missing], "observed_min": [n for _, n in missing],
                    "min_coverage": coverage}))
            out.append(claims)
        return out

    @staticmethod
    def _window_shares(batch: WindowBatch, i: int, j: int, n_categories: int) -> list[tuple[int, int]]:
        """:func:`category_shares` of channel ``j`` in window ``i`` as ``(category, percent)`` in the order stated
        (largest first, ties in category order)."""
        shares = category_shares(np.round(batch.values[i, batch.observed[i, :, j], j]).astype(np.int64), n_categories)
        return [(int(k), int(shares[k])) for k in np.argsort(-shares, kind="stable")]

    @staticmethod
    def _shares(batch: WindowBatch, j: int, n_categories: int) -> list[list[tuple[int, int]]] | None:
        """:meth:`_window_shares` of every window at once: one bincount over the unit, not one per window.
        None when a code falls outside the categories: the windows that state shares then go one at a time
        (and meet that function's error, or state the extra code, as they would alone)."""
        v_cm, o_cm = batch.channel_major()      # the channel's minutes contiguous
        obs = o_cm[:, j]
        codes = np.round(np.where(obs, v_cm[:, j], 0)).astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= n_categories):
            return None
        N = codes.shape[0]
        flat = np.where(obs, codes + (np.arange(N) * (n_categories + 1))[:, None], N * (n_categories + 1) - 1)
        counts = np.bincount(flat.ravel(), minlength=N * (n_categories + 1)).reshape(N, n_categories + 1)[:, :-1]
        n = np.count_nonzero(obs, axis=1)
        shares = np.round(100.0 * counts / np.maximum(n, 1)[:, None]).astype(int)
        order = np.argsort(-shares, axis=1, kind="stable")
        return [list(zip(o, r)) for o, r in zip(order.tolist(), np.take_along_axis(shares, order, axis=1).tolist())]

    def fields(self, claim: Claim) -> dict[str, str]:
        d = claim.data
        if claim.kind == "missing":
            return {"channels": ", ".join(label(c) for c in d["channels"]), "pct": f"{d['min_coverage']:.0%}"}
        name, unit = channel_text(d["channel"])
        if claim.kind == "categories":
            return {"label": name, "n": f"{d['n']:,}",
                    "shares": ", ".join([f"{k} {v}%" for k, v in d["shares"].items()])}
        spec = fmt_spec(d["decimals"])
        total = f", {format(d['total'], spec)} {unit.split('/')[0]} in total" if "total" in d else ""
        return {"label": name, "unit": unit, "n": f"{d['n']:,}", "total": total, "mean": format(d["mean"], spec),
                "min": format(d["min"], spec), "max": format(d["max"], spec), "std": format(d["std"], spec)}

    def render(self, claims: list[Claim]) -> str:
        """Grouped: ``Heart: <phrase>; <phrase>. Activity: ...`` then the missing channels."""
        by_group: dict[str, list[str]] = {}
        tail = []
        for c in claims:
            if c.kind == "missing":
                tail.append(self.sentence(c))
            else:
                phrase = self.templates[c.kind][c.template].format_map(self.fields(c))
                by_group.setdefault(c.data["group"], []).append(phrase)
        parts = [f"{g}: {'; '.join(by_group[g])}." for g in GROUP_ORDER if g in by_group]
        if not parts and not tail:
            return "No channel was observed in this window."
        return " ".join(parts + tail)

    def check(self, claim: Claim, batch: WindowBatch) -> str | None:
        d = claim.data
        if claim.kind == "missing":
            for ch, n in zip(d["channels"], d["observed_min"]):
                j = batch.index(ch)
                if j is None:
                    return f"{ch} is not a channel of the window"
                actual = int(batch.observed[0, :, j].sum())
                if actual != n or actual >= max(d["min_coverage"] * batch.size_min, 1):
                    return f"{ch}: {actual} min observed, claimed {n} (missing below {d['min_coverage']:.0%})"
            return None
        j = batch.index(d["channel"])
        if j is None:
            return f"{d['channel']} is not a channel of the window"
        obs = batch.observed[0, :, j]
        if int(obs.sum()) != d["n"]:
            return f"{d['channel']}: {int(obs.sum())} observed minutes, claimed {d['n']}"
        if claim.kind == "categories":
            spec = registry.get(d["channel"])
            shares = category_shares(np.round(batch.values[0, obs, j]).astype(np.int64), len(spec.categories))
            actual = {spec.categories[k]: int(shares[k]) for k in range(len(shares)) if shares[k] > 0}
            return None if actual == d["shares"] else f"{d['channel']}: shares {actual}, claimed {d['shares']}"
        m = masked_moments(batch.values[:, :, j:j + 1], batch.observed[:, :, j:j + 1])
        for key in ("mean", "min", "max", "std") + (("total",) if "total" in d else ()):
            actual = float(m["sum" if key == "total" else key][0, 0])
            if abs(actual - d[key]) > tolerance(d["decimals"], actual):
                return f"{d['channel']} {key}: {actual:.6g}, claimed {d[key]}"
        return None
