"""The windowing strategy interface and its registry (``name -> class``).

A strategy has one job: say where candidate windows start
(:meth:`WindowingStrategy.starts`), and, when it samples, which of the
candidates that passed the common quality filters it keeps
(:meth:`WindowingStrategy.select`). Everything else, cutting, the
``too_missing`` and ``below_min_coverage:<channel>`` filters and the drop
counts, is done once for all strategies by
:func:`sensorpipe.processing.window.cut_windows`, so a plugin strategy cannot
forget to count a drop.

A subclass with a ``name`` registers itself (:mod:`sensorpipe.registry`); the
built-ins are found by walking this package, and names that are not built in
are looked up in the ``sensorpipe.windowing`` entry-point group on first use,
in whichever process asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from sensorpipe.config import ConfigError, WindowConfig, build_dataclass
from sensorpipe.registry import Registered, Registry

if TYPE_CHECKING:
    from sensorpipe.core.grid import MinuteGrid
    from sensorpipe.core.refs import UnitRef

_STRATEGIES = Registry("windowing", what="windowing strategy", package="sensorpipe.processing.windowing",
                       required=("starts",))
GROUP = _STRATEGIES.group


@dataclass(frozen=True)
class Candidates:
    """Candidate windows of one unit that passed the common filters, in start order."""

    start_row: np.ndarray        # int64 [N], grid row of each start (may be < 0 for event windows)
    start_utc_min: np.ndarray    # int64 [N], minutes since epoch (UTC)
    missing: np.ndarray          # float64 [N], missing share over all channels
    coverage: np.ndarray         # float64 [N, C], observed share per channel
    channels: tuple[str, ...]
    unit_key: str                # "<source>/<native participant id>"; "" outside a pipeline run

    def __len__(self) -> int:
        return int(self.start_row.shape[0])


class WindowingStrategy(Registered, registry=_STRATEGIES):
    """Subclass, set ``name`` and implement :meth:`starts`: the class registers itself.

    ``uses`` names the ``window`` sub-sections the strategy reads, so a section
    set for another strategy is an error rather than silently ignored. A plugin
    with parameters declares ``Options`` (a frozen dataclass), filled from
    ``window.options`` and checked like any config section. Instances are made
    per unit inside the worker, so they need not be picklable.
    """

    name: ClassVar[str] = ""
    uses: ClassVar[tuple[str, ...]] = ()
    Options: ClassVar[type | None] = None
    count_empty: ClassVar[bool] = False   # count candidates with no observed minute as dropped ("no_data")

    def __init__(self, cfg: WindowConfig) -> None:
        self.cfg = cfg
        self.options = build_dataclass(self.Options, cfg.options, "window.options") if self.Options else None

    def starts(self, grid: "MinuteGrid", unit: "UnitRef | None") -> np.ndarray:
        """Candidate start rows (int64) of windows of ``cfg.size_min`` minutes on ``grid``."""
        raise NotImplementedError

    def select(self, cand: Candidates) -> tuple[np.ndarray, dict[str, int]]:
        """(keep mask over ``cand``, dropped count by reason); the default keeps every candidate."""
        return np.ones(len(cand), bool), {}

    @classmethod
    def check_config(cls, cfg: WindowConfig, path: str) -> None:
        """Config checks that depend on the strategy; raise ConfigError naming the key."""
        defaults = WindowConfig()
        for section in ("stratified", "event"):
            if section not in cls.uses and getattr(cfg, section) != getattr(defaults, section):
                raise ConfigError(f"{path}.{section} is set but {path}.strategy is {cfg.strategy!r}, which does "
                                  f"not read it; remove it or pick the strategy that does")
        if cfg.options and cls.Options is None:
            raise ConfigError(f"{path}.options: strategy {cfg.strategy!r} takes no options; remove the section")
        if cls.Options is not None:
            build_dataclass(cls.Options, cfg.options, f"{path}.options")


def register_windowing(cls: type) -> type:
    """Add a strategy class to the registry under its ``name`` (a class that subclasses already did)."""
    return _STRATEGIES.add(cls)


def get_strategy(name: str, path: str = "window.strategy") -> type[WindowingStrategy]:
    """The class registered as ``name``, loading plugins when it is not built in."""
    return _STRATEGIES.lookup(name, path)


def strategy_names() -> tuple[str, ...]:
    """Names registered so far in this process (built-ins, plus plugins once loaded)."""
    return tuple(sorted(_STRATEGIES.builtins()))


def check_window_config(cfg: WindowConfig, path: str) -> None:
    """Called by :mod:`sensorpipe.runners.plan`: the strategy exists and its sections and options fit it."""
    get_strategy(cfg.strategy, f"{path}.strategy").check_config(cfg, path)


def make_strategy(cfg: WindowConfig) -> WindowingStrategy:
    return get_strategy(cfg.strategy)(cfg)


__all__ = ["Candidates", "WindowingStrategy", "register_windowing", "get_strategy", "strategy_names",
           "check_window_config", "make_strategy"]
