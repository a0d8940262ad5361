"""The caption model: claims, and the level registry; levels read a :class:`~sensorpipe.core.windows.WindowBatch`.

A caption is never free text generated first and checked later: every level
produces *claims* (small JSON-able facts with the numbers and times exactly
as stated), and the text is rendered from the claims with a paraphrase
template. The record stores both, and the faithfulness checker
(:mod:`sensorpipe.captions.faithfulness`) re-renders the text from the claims
and re-derives each claim from the window's data and mask.

Levels are small classes that register themselves (:mod:`sensorpipe.registry`);
the built-ins are found by walking this package, and names that are not built
in are looked up in the ``sensorpipe.captions`` entry-point group, like the
other extension points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.core.grid import DAY_MIN
from sensorpipe.core.windows import WindowBatch
from sensorpipe.registry import Registered, Registry


@dataclass(slots=True)
class Claim:
    """One stated fact: ``kind`` picks the template family, ``data`` holds the values as stated (slots: a unit
    makes hundreds, each without an attribute dict)."""

    level: str
    kind: str
    data: dict[str, Any]
    template: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "kind": self.kind, "template": self.template, **self.data}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Claim":
        data = {k: v for k, v in d.items() if k not in ("level", "kind", "template")}
        return Claim(d["level"], d["kind"], data, int(d.get("template", 0)))


#: Captions read values quantized to this many decimals, the generator and the checker alike.
QUANTUM_DECIMALS = 4


def quantized(values: np.ndarray) -> np.ndarray:
    """Values as captions see them: rounded to 1e-4 of the unit.

    The checker re-derives claims from denormalized records, which carry
    float32 noise (~1e-6 relative): a CGM reading of exactly 70 mg/dL may come
    back as 69.99999 and fall below a threshold the caption was right about.
    Quantizing both sides to 1e-4 (far below any stated precision) gives them
    the same numbers whenever the noise is below half the quantum.
    """
    return np.round(values, QUANTUM_DECIMALS)


#: ``HH:MM`` of every minute of the day, formatted once (captions state thousands of clock times per unit)
_CLOCK = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(DAY_MIN))


def clock(local_min, i: int) -> str:
    """Local ``HH:MM`` of window minute ``i`` (``local_min``: array or list); ``i == W`` (an exclusive end) is
    one minute after the last."""
    W = len(local_min)
    m = int(local_min[i]) if i < W else (int(local_min[W - 1]) + 1)
    return _CLOCK[m % DAY_MIN]


def clocks(local_min: np.ndarray, rows: list[int], minutes: list[int]) -> list[str]:
    """:func:`clock` of window ``rows[k]``'s minute ``minutes[k]`` for every k, from one gather of
    ``local_min [N, W]`` (a level states thousands of times per unit: a numpy scalar each costs more)."""
    if not rows:
        return []
    k = np.asarray(minutes, np.int64)
    W = local_min.shape[1]
    m = local_min[np.asarray(rows, np.int64), np.minimum(k, W - 1)].astype(np.int64) + (k >= W)
    return [_CLOCK[v] for v in (m % DAY_MIN).tolist()]


def duration_text(minutes: int) -> str:
    h, m = divmod(int(minutes), 60)
    if not h:
        return f"{m} min"
    return f"{h} h" if not m else f"{h} h {m} min"


#: How captions name channels whose identifier is not plain English.
DISPLAY_NAMES = {"hrv_rmssd": "HRV RMSSD", "hrv_sdnn": "HRV SDNN", "spo2": "SpO2", "enmo": "ENMO",
                 "eda_level": "EDA level", "eda_scr_rate": "EDA SCR rate", "acc_zcr": "accelerometer ZCR",
                 "acc_mad": "accelerometer MAD"}


def label(channel: str) -> str:
    return DISPLAY_NAMES.get(channel, channel.replace("_", " "))


def channel_text(channel: str) -> tuple[str, str]:
    """A channel's caption name and unit (every rendered sentence states them)."""
    return label(channel), registry.get(channel).unit


#: format specs of :func:`fmt` by decimals, built once (not an f-string spec per number)
_SPECS = tuple(f",.{d}f" for d in range(16))


def fmt_spec(decimals: int) -> str:
    """The format spec of :func:`fmt` (for a caller formatting several numbers with the same decimals)."""
    return _SPECS[decimals] if 0 <= decimals < 16 else f",.{decimals}f"


def fmt(x: float, decimals: int) -> str:
    return format(x, _SPECS[decimals] if 0 <= decimals < 16 else f",.{decimals}f")


def decimals(channel: str) -> int:
    return registry.get(channel).caption_decimals


def stated(x: float, d: int) -> float:
    """The value as the caption states it (rounded to the channel's decimals)."""
    return float(round(float(x), d))


def tolerance(d: int, actual: float) -> float:
    """How far a stated number may be from its re-derivation: half the last digit plus float32 noise."""
    return 0.5 * 10.0 ** -d + 1e-5 * max(1.0, abs(actual))


_LEVELS = Registry("captions", what="caption level", package="sensorpipe.captions", required=("claims",))


class CaptionLevel(Registered, registry=_LEVELS):
    """A caption level: ``claims`` for a batch of windows, templates to state them, and a check per claim.

    Subclasses set ``name`` and ``templates`` (``kind -> paraphrases``; every
    paraphrase of a kind uses the same fields) and implement ``claims``,
    ``fields`` (the template fields of a claim) and ``check`` (re-derives a
    claim from one window's data; returns why it does not hold, or None).
    """

    name: ClassVar[str] = ""
    templates: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: modules the level imports at its first use that are slow to import: a forking runner imports them
    #: once before the pass that captions, not once per worker (:func:`sensorpipe.captions.generator.level_imports`)
    imports: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg) -> None:
        self.cfg = cfg            # the CaptionConfig

    def claims(self, batch: WindowBatch) -> list[list[Claim]]:
        raise NotImplementedError

    def fields(self, claim: Claim) -> dict[str, str]:
        return {k: str(v) for k, v in claim.data.items()}

    def render(self, claims: list[Claim]) -> str:
        """The level's text: one sentence per claim, in order."""
        return " ".join([self.sentence(c) for c in claims])

    def sentence(self, claim: Claim) -> str:
        text = self.templates[claim.kind][claim.template].format_map(self.fields(claim))
        return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")

    def check(self, claim: Claim, batch: WindowBatch) -> str | None:
        raise NotImplementedError


def register_caption_level(cls: type[CaptionLevel]) -> type[CaptionLevel]:
    """Add a level class to the registry under its ``name`` (a class that subclasses already did)."""
    return _LEVELS.add(cls)


def get_level(name: str, path: str = "captions.levels") -> type[CaptionLevel]:
    return _LEVELS.lookup(name, path)


def runs(flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and exclusive ends of the True runs of a 1-D bool array (vectorized)."""
    d = np.diff(np.concatenate(([0], flag.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def bridged_runs(flag: np.ndarray, max_gap: int, min_len: int) -> list[tuple[int, int]]:
    """Runs of ``flag`` after bridging False gaps of at most ``max_gap`` between True runs; those >= ``min_len``."""
    s, e = runs(flag)
    if not s.size:
        return []
    keep_break = (s[1:] - e[:-1]) > max_gap
    starts = np.concatenate(([s[0]], s[1:][keep_break]))
    ends = np.concatenate((e[:-1][keep_break], [e[-1]]))
    ok = (ends - starts) >= min_len
    return list(zip(starts[ok].tolist(), ends[ok].tolist()))


def bridged_runs_rows(flags: np.ndarray, max_gap: int, min_len: int) -> tuple[list[list[tuple[int, int]]], np.ndarray]:
    """:func:`bridged_runs` of every row of ``flags [N, W]`` at once (same runs, row by row), and the
    True count of each run as one flat array in the same order.

    The rows are laid end to end with a False cell after each, so no run and
    no bridge crosses into the next row; one compare of neighbours finds every
    run (its cells alternate: start, end, start, ...), and a bridged run's
    True count is the sum of the lengths of the runs it joins.
    """
    N, W = flags.shape
    buf = np.zeros(N * (W + 1) + 1, bool)     # a False before the first row, and after every row
    buf[1:].reshape(N, W + 1)[:, :W] = flags
    change = np.flatnonzero(buf[1:] != buf[:-1])
    s, e = change[0::2], change[1::2]
    out: list[list[tuple[int, int]]] = [[] for _ in range(N)]
    if not s.size:
        return out, np.zeros(0, np.int64)
    row = s // (W + 1)
    new = np.ones(s.size, bool)
    new[1:] = ((s[1:] - e[:-1]) > max_gap) | (row[1:] != row[:-1])
    first = np.flatnonzero(new)
    starts, ends, rows = s[first], e[np.r_[first[1:] - 1, s.size - 1]], row[first]
    counts = np.add.reduceat(e - s, first)
    ok = (ends - starts) >= min_len
    starts, ends, rows, counts = starts[ok], ends[ok], rows[ok], counts[ok].astype(np.int64)
    base = rows * (W + 1)
    for r, a, b in zip(rows.tolist(), (starts - base).tolist(), (ends - base).tolist()):  # one per run kept
        out[r].append((a, b))
    return out, counts
