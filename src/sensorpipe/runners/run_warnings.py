"""What a finished run should tell its user although nothing failed: the run's warnings.

A run that completes can still hold a surprise: a configured channel that no
configured source can fill (a column of the output that is always missing), or
a split that came out empty or with fewer participants than
``run.min_split_participants`` (a participant's split is a keyed hash of
(study, person), so a small cohort fills the configured ratios unevenly, and
3 participants cannot fill 3 splits). Each warning is one sentence that ends
with the fix. The driver computes them once, after both passes, from what it
already holds (the configured adapters and the units' summaries); the CLI
summary and the HTML report show them, and :class:`RunResult.warnings` holds
them for notebook users.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sensorpipe.processing.raw_features import adapter_channels

SPLIT_NAMES = ("train", "validation", "test")


def provided_channels(adapter: Any) -> set[str]:
    """Canonical channels ``adapter`` can fill: its format's channels and raw features, plus the channels its
    schema maps native fields to (a ``long_table`` source maps them in the config)."""
    out = set(adapter_channels(type(adapter)))
    out.update(f.channel for f in adapter.schema().fields if getattr(f, "channel", None))
    return out


def unprovided_channel_warnings(channels: Sequence[str], adapters: Iterable[Any]) -> list[str]:
    """One warning per configured channel that none of ``adapters`` can fill."""
    adapters = list(adapters)
    provided: set[str] = set()
    for a in adapters:
        provided |= provided_channels(a)
    missing = [c for c in channels if c not in provided]
    if not missing:
        return []
    sources = ", ".join(f"{a.source.name} ({type(a).name})" for a in adapters)
    return [f"channel {c!r} is configured but no source can provide it (sources: {sources}): every window has it "
            f"missing; remove it from channels, or add a source that records it" for c in missing]


def split_warnings(splits: Any, min_participants: int, units: Iterable[Any]) -> list[str]:
    """One warning per split with a non-zero ratio that holds fewer than ``min_participants`` participants
    with windows (at least 1: an empty split always warns), with the fix.

    ``splits`` is the run's split config (``train``/``validation``/``test`` ratios); ``units`` are the units'
    summaries (``study``, ``participant``, ``split``, ``windows_kept``).
    """
    people: dict[str, set[tuple[str, str]]] = {s: set() for s in SPLIT_NAMES}
    for u in units:
        if u.windows_kept:
            people.setdefault(u.split, set()).add((u.study, u.participant))
    total = len(set().union(*people.values()))
    ratios = {s: float(getattr(splits, s)) for s in SPLIT_NAMES}
    wanted = [s for s in SPLIT_NAMES if ratios[s] > 0]
    floor = max(1, int(min_participants))
    shares = " / ".join(f"{s} {ratios[s]:g}" for s in SPLIT_NAMES)
    out = []
    for s in wanted:
        have = len(people[s])
        if have >= floor:
            continue
        what = "is empty" if have == 0 else f"has {have} participant{'s' if have != 1 else ''}"
        msg = f"split {s!r} {what} (minimum {floor}: run.min_split_participants)"
        expected = total * ratios[s]
        raised = _raised(ratios, s, floor / total) if total and s != "train" else None
        if total < floor * len(wanted) or (expected < floor and raised is None):
            keep = {k: (1.0 if k == "train" else 0.0) for k in SPLIT_NAMES}
            msg += (f": {total} participant{'s' if total != 1 else ''} cannot fill {len(wanted)} splits at {shares}; "
                    f"set splits: {_ratios(keep)} to train on everyone, or add participants")
        elif expected < floor:
            msg += (f": {total} participants cannot fill {len(wanted)} splits at {shares} ({s} expects "
                    f"{expected:.1f}); set splits: {_ratios(raised)}, or add participants")
        else:
            msg += (f": a participant's split is a keyed hash of (study, person), so {total} participants at "
                    f"{shares} fill it unevenly ({s} expects {expected:.1f}); change splits.salt, raise splits.{s}, "
                    f"or add participants")
        out.append(msg)
    return out


def _raised(ratios: dict[str, float], split: str, share: float) -> dict[str, float] | None:
    """``ratios`` with ``split`` raised to ``share`` rounded up to 0.05, taken from train; None when train
    cannot give that much."""
    share = max(ratios[split], -(-round(share * 100) // 5) * 5 / 100)
    out = dict(ratios)
    out[split] = share
    out["train"] = round(1.0 - sum(v for k, v in out.items() if k != "train"), 2)
    return out if out["train"] > 0 else None


def _ratios(r: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {r[k]:g}" for k in SPLIT_NAMES) + "}"


def run_warnings(cfg: Any, adapters: Iterable[Any], units: Iterable[Any]) -> list[str]:
    """Every warning of a finished run, channels first, then splits (see the module docstring)."""
    return (unprovided_channel_warnings(cfg.channels, adapters)
            + split_warnings(cfg.splits, cfg.run.min_split_participants, units))
