"""Statistical captions: per caption group, each channel's mean, min and max in real units.

Only observed minutes count (imputed values never reach a caption), and each
number is rounded to the channel's ``caption_decimals``. Sum channels (steps,
calories, distance) also state the window total. Categorical channels state
the share of observed minutes per category.
"""

from __future__ import annotations

import numpy as np

from sensorpipe import channels as registry

GROUP_ORDER = ("Heart", "Activity", "Sleep", "EDA", "Temperature", "Metabolic")


def _fmt(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}"


def channel_phrase(name: str, v: np.ndarray) -> str:
    ch = registry.get(name)
    label = name.replace("_", " ")
    if ch.categories:
        codes = np.round(v).astype(np.int64)
        share = np.bincount(codes, minlength=len(ch.categories)) / codes.size
        parts = [f"{ch.categories[i]} {share[i]:.0%}" for i in np.argsort(-share, kind="stable") if share[i] > 0]
        return f"{label}: {', '.join(parts)} of {codes.size} observed minutes"
    d = ch.caption_decimals
    text = (f"{label} mean {_fmt(v.mean(), d)} {ch.unit} (min {_fmt(v.min(), d)}, max {_fmt(v.max(), d)}, "
            f"{v.size} min observed)")
    if ch.aggregation == "sum":
        text += f", total {_fmt(v.sum(), d)} {ch.unit.split('/')[0]}"
    return text


def statistical_caption(values: np.ndarray, observed: np.ndarray, channels: tuple[str, ...]) -> str:
    """Caption of one window ``values [W, C]`` (real units, before imputation)."""
    by_group: dict[str, list[str]] = {}
    for j, name in enumerate(channels):
        obs = observed[:, j]
        if obs.any():
            by_group.setdefault(registry.get(name).caption_group, []).append(channel_phrase(name, values[obs, j]))
    if not by_group:
        return "No channel was observed in this window."
    return " ".join(f"{g}: {'; '.join(by_group[g])}." for g in GROUP_ORDER if g in by_group)
