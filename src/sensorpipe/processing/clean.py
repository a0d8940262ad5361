"""Per-channel cleaning of the minute grid, one rule per artifact, every change counted.

One component serves every dataset: it runs on a participant's minute grid
(``values[T, C]`` float32, ``observed[T, C]`` bool) right after the grid is
built, so adapters never carry their own cleaning code. The rules run in the
order of ``cleaning.rules``:

* ``range``: outside ``[valid_min, valid_max]`` (default: the channel
  registry's range) a value is clipped (``out_of_range_clipped``, the cell
  stays observed) or removed (``out_of_range_removed``), per ``range_action``.
  Validation already applied the registry range to rows; this rule matters
  when a study narrows a range (e.g. heart rate 30-220).
* ``sentinel``: placeholder codes written instead of "no reading"
  (:data:`DEFAULT_SENTINELS`) are removed (``sentinel``).
* ``flatline``: a stuck sensor repeats one value. A run of identical observed
  values lasting ``flatline_min`` minutes or more (bridging at most
  ``flatline_max_gap_min`` missing minutes) is removed (``flatline``); only
  channels of :data:`DEFAULT_FLATLINE_MIN` by default, because steps,
  calories, ENMO, sleep stage and daily values are legitimately constant.
* ``spike``: a Hampel filter. A value further than
  ``max(hampel_k * 1.4826 * MAD, hampel_min_deviation)`` from the median of
  the centred ``hampel_window_min`` window (observed values only, at least
  half the window observed) is removed (``spike``); only the channels of
  :data:`DEFAULT_SPIKE_MIN_DEVIATION` by default. The deviation floor keeps a
  window of identical integer readings (MAD 0) from flagging a 1 bpm change.
* ``nonwear``: see :mod:`sensorpipe.processing.nonwear` (``non_wear``, and
  ``worn`` for ``on_wrist`` minutes filled from observed physiology).

Removing a cell sets it to NaN and ``observed`` to False, so the mask says
missing and imputation fills it. Counts are keyed ``"<channel>:<reason>"``.
A rule may change the grid only through :class:`CleaningState`'s methods,
which count; :func:`clean_grid` checks after each rule that every changed
cell was counted, so a plugin rule cannot change data silently.

Rules are small registered classes (:func:`register_cleaning_rule`): the
first four live in :mod:`sensorpipe.processing.clean_rules`, ``nonwear`` in
:mod:`sensorpipe.processing.nonwear`; names that are not built in are looked
up in the ``sensorpipe.cleaning`` entry-point group (:mod:`sensorpipe.plugins`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.config import (
    ChannelCleaningConfig,
    CleaningConfig,
    ConfigError,
    build_dataclass,
)
from sensorpipe.registry import Registered, Registry

if TYPE_CHECKING:
    from sensorpipe.core.grid import MinuteGrid
    from sensorpipe.core.observations import Observations

REASONS = ("out_of_range_clipped", "out_of_range_removed", "sentinel", "flatline", "spike", "non_wear", "worn")
MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its standard deviation

#: "no reading" codes: 0 and 255 (an unsigned byte's maximum) for heart rate, 0 and 127 (the Nonin/
#: Masimo "no signal" code) for SpO2. Glucose has none: Dexcom/Libre "Low"/"High" are kept at the
#: reporting limits (40/400 mg/dL) by the adapters on purpose, as censored readings.
DEFAULT_SENTINELS: dict[str, tuple[float, ...]] = {"heart_rate": (0.0, 255.0), "spo2": (0.0, 127.0)}
#: minutes of one repeated value after which a channel counts as stuck
DEFAULT_FLATLINE_MIN: dict[str, int] = {"heart_rate": 30, "respiratory_rate": 60, "eda_level": 30,
                                        "skin_temperature": 120}
#: channels the spike filter runs on by default, with the smallest deviation it may flag (channel unit)
DEFAULT_SPIKE_MIN_DEVIATION: dict[str, float] = {"heart_rate": 20.0, "spo2": 4.0, "respiratory_rate": 6.0,
                                                 "skin_temperature": 1.5}
_RULES = Registry("cleaning", what="cleaning rule", package="sensorpipe.processing", required=("apply",))
GROUP = _RULES.group


@dataclass(frozen=True)
class ChannelRules:
    """One channel's resolved settings: built-in defaults overlaid with ``cleaning.per_channel``."""

    valid_min: float
    valid_max: float
    range_action: str
    sentinels: tuple[float, ...]
    flatline_min: int                 # 0: off
    hampel_window_min: int
    hampel_k: float                   # 0: off
    hampel_min_deviation: float


def channel_rules(ch: str, cfg: CleaningConfig) -> ChannelRules:
    """The settings the built-in rules use for channel ``ch``."""
    reg, o = registry.get(ch), cfg.per_channel.get(ch, ChannelCleaningConfig())

    def pick(value, default):
        return default if value is None else value

    return ChannelRules(
        valid_min=float(pick(o.valid_min, reg.valid_min)), valid_max=float(pick(o.valid_max, reg.valid_max)),
        range_action=pick(o.range_action, "clip" if reg.out_of_range == "clip" else "nan"),
        sentinels=tuple(pick(o.sentinels, DEFAULT_SENTINELS.get(ch, ()))),
        flatline_min=pick(o.flatline_min, DEFAULT_FLATLINE_MIN.get(ch, 0)),
        hampel_window_min=pick(o.hampel_window_min, cfg.hampel_window_min),
        hampel_k=float(pick(o.hampel_k, cfg.hampel_k if ch in DEFAULT_SPIKE_MIN_DEVIATION else 0.0)),
        hampel_min_deviation=float(pick(o.hampel_min_deviation, DEFAULT_SPIKE_MIN_DEVIATION.get(ch, 0.0))))


@dataclass
class CleaningState:
    """The grid being cleaned (changed in place) and the counts; rules change cells only through it."""

    values: np.ndarray                # float32 [T, C]
    observed: np.ndarray              # bool [T, C]
    channels: tuple[str, ...]
    cfg: CleaningConfig
    start_minute: int = 0             # minutes since epoch of row 0 (for :meth:`series` from rows)
    obs: Observations | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settings = {ch: channel_rules(ch, self.cfg) for ch in self.channels}

    def _count(self, j: int, reason: str, n: int) -> int:
        if n:
            key = f"{self.channels[j]}:{reason}"
            self.counts[key] = self.counts.get(key, 0) + int(n)
        return int(n)

    def remove(self, j: int, rows: np.ndarray, reason: str) -> int:
        """Remove observed cells of column ``j`` where ``rows`` (bool [T]) is True; returns how many."""
        if not rows.any():   # most rules flag nothing in most columns: no pass over the strided column then
            return 0
        hit = rows & self.observed[:, j]
        n = np.count_nonzero(hit)
        if n:   # most rules remove nothing from most columns: no masked stores then
            self.values[hit, j] = np.nan
            self.observed[hit, j] = False
        return self._count(j, reason, n)

    def clip(self, j: int, lo: float, hi: float, reason: str) -> int:
        """Clip observed cells of column ``j`` to ``[lo, hi]`` (they stay observed)."""
        col = self.values[:, j]
        hit = self.observed[:, j] & ((col < lo) | (col > hi))
        n = np.count_nonzero(hit)
        if n:
            col[hit] = np.clip(col[hit], lo, hi)
        return self._count(j, reason, n)

    def set(self, j: int, rows: np.ndarray, value: float, reason: str) -> int:
        """Make cells of column ``j`` observed with ``value`` where ``rows``; counts cells that changed."""
        v = np.float32(value)
        hit = rows & ~(self.observed[:, j] & (self.values[:, j] == v))
        n = np.count_nonzero(hit)
        if n:
            self.values[hit, j] = v
            self.observed[hit, j] = True
        return self._count(j, reason, n)

    def series(self, ch: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(values [T], observed [T]) of ``ch`` on this grid; None when the unit has no such data.

        A channel that is not an output channel (e.g. ENMO used only for
        non-wear detection) is averaged per minute from the unit's rows.
        """
        if ch in self.channels:
            j = self.channels.index(ch)
            return (self.values[:, j], self.observed[:, j]) if self.observed[:, j].any() else None
        if self.obs is None or not len(self.obs):
            return None
        from sensorpipe.core.grid import MINUTE_NS
        from sensorpipe.schema.validate import CHANNEL_INDEX

        T = self.values.shape[0]
        rows = np.flatnonzero(self.obs.channel == CHANNEL_INDEX[ch])  # the channel's rows first: often none
        minute = self.obs.t_utc_ns[rows] // MINUTE_NS - self.start_minute
        use = (minute >= 0) & (minute < T)
        if not use.any():
            return None
        cnt = np.bincount(minute[use], minlength=T)
        sums = np.bincount(minute[use], weights=self.obs.value[rows[use]], minlength=T)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums / cnt).astype(np.float32), cnt > 0


class CleaningRule(Registered, registry=_RULES):
    """Subclass, set ``name``, implement :meth:`apply`: the class registers itself.

    A rule with parameters of its own declares ``Options`` (a frozen
    dataclass), filled from ``cleaning.options.<name>`` and checked like any
    config section. Rules are made per unit inside the worker.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type | None] = None

    def __init__(self, cfg: CleaningConfig) -> None:
        self.cfg = cfg
        self.options = (build_dataclass(self.Options, cfg.options.get(self.name, {}), f"cleaning.options.{self.name}")
                        if self.Options else None)

    def apply(self, state: CleaningState) -> None:
        """Change ``state`` through its ``remove`` / ``clip`` / ``set`` methods (which count)."""
        raise NotImplementedError


def register_cleaning_rule(cls: type) -> type:
    """Add a rule class to the registry under its ``name`` (a class that subclasses already did)."""
    return _RULES.add(cls)


def get_cleaning_rule(name: str, path: str = "cleaning.rules") -> type[CleaningRule]:
    """The class registered as ``name``, loading plugins when it is not built in."""
    return _RULES.lookup(name, path)


def rule_names() -> tuple[str, ...]:
    """Names registered so far in this process (built-ins, plus plugins once loaded)."""
    return tuple(sorted(_RULES.builtins()))


def check_cleaning_config(cfg: CleaningConfig, path: str) -> None:
    """Called by :mod:`sensorpipe.runners.plan`: rules exist once each, options fit them, channels are known."""
    if len(set(cfg.rules)) != len(cfg.rules):
        raise ConfigError(f"{path}.rules: a rule is listed twice ({list(cfg.rules)})")
    classes = {name: get_cleaning_rule(name, f"{path}.rules[{i}]") for i, name in enumerate(cfg.rules)}
    for name, opts in cfg.options.items():
        if name not in classes:
            raise ConfigError(f"{path}.options.{name}: {name!r} is not in {path}.rules ({', '.join(cfg.rules)})")
        if classes[name].Options is None:
            raise ConfigError(f"{path}.options.{name}: rule {name!r} takes no options; remove the section")
        build_dataclass(classes[name].Options, opts, f"{path}.options.{name}")
    for ch in cfg.per_channel:
        if not registry.known(ch):
            raise ConfigError(f"{path}.per_channel.{ch}: unknown channel; allowed: {', '.join(registry.CHANNELS)}")
        r = channel_rules(ch, cfg)
        if not r.valid_min < r.valid_max:
            raise ConfigError(f"{path}.per_channel.{ch}: the valid range {r.valid_min:g} to {r.valid_max:g} is empty; "
                              f"set both valid_min and valid_max")


def clean_grid(grid: MinuteGrid, cfg: CleaningConfig, obs: Observations | None = None) -> dict[str, int]:
    """Apply ``cfg.rules`` to ``grid`` in place; returns counts ``{"<channel>:<reason>": cells}``, sorted."""
    if not cfg.enabled or not cfg.rules:
        return {}
    state = CleaningState(grid.values, grid.observed, grid.channels, cfg, grid.start_minute, obs)
    for name in cfg.rules:
        rule = get_cleaning_rule(name)(cfg)
        if _RULES.is_builtin(type(rule)):  # ours change cells only through the state (tested): no audit copy
            rule.apply(state)
            continue
        values, observed, counted = state.values.copy(), state.observed.copy(), sum(state.counts.values())
        rule.apply(state)
        changed = int(((observed != state.observed) | (observed & state.observed & (values != state.values))).sum())
        if changed != sum(state.counts.values()) - counted:
            raise RuntimeError(f"cleaning rule {name!r} changed {changed} grid cells but counted "
                               f"{sum(state.counts.values()) - counted}; a rule must change cells only through "
                               f"CleaningState.remove / clip / set, which count them by reason")
    return dict(sorted(state.counts.items()))


__all__ = [
    "DEFAULT_FLATLINE_MIN",
    "DEFAULT_SENTINELS",
    "DEFAULT_SPIKE_MIN_DEVIATION",
    "REASONS",
    "ChannelRules",
    "CleaningRule",
    "CleaningState",
    "channel_rules",
    "check_cleaning_config",
    "clean_grid",
    "get_cleaning_rule",
    "register_cleaning_rule",
    "rule_names",
]
