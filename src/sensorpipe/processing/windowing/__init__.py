"""Windowing strategies: where windows start and which are kept.

Built in: ``fixed`` (size, stride, alignment none / utc_midnight /
local_midnight), ``event`` (around label events) and
``missingness_stratified`` (at most N windows per participant per
missingness bucket). Installed plugins add more through the
``sensorpipe.windowing`` entry-point group (see :mod:`sensorpipe.plugins`).
"""

from sensorpipe.processing.windowing.base import (
    Candidates,
    WindowingStrategy,
    check_window_config,
    get_strategy,
    make_strategy,
    register_windowing,
    strategy_names,
)

__all__ = ["Candidates", "WindowingStrategy", "check_window_config", "get_strategy", "make_strategy",
           "register_windowing", "strategy_names"]
