"""Examples are nested dicts (``labels`` holds the label fields): flatten them to leaves keyed by path and back.

The loader workers (:mod:`sensorpipe.access._torch_slots`, :mod:`sensorpipe.access._grain_slots`) stack each
leaf of a batch into shared memory and rebuild the nesting in the main process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def leaves(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """``[(path, leaf), ...]`` of a nested dict, depth first in key order (a non-dict is one leaf)."""
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in leaves(v, (*path, k))]
    return [(path, value)]


def nest(order: Sequence[tuple], values: dict[tuple, Any]) -> dict[str, Any]:
    """The nested dict whose leaves at the paths of ``order`` are ``values[path]``."""
    out: dict[str, Any] = {}
    for path in order:
        node = out
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = values[path]
    return out
