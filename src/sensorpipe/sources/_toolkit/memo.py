"""Per-process memos of what is derived from input files, keyed by the files' versions.

A unit's read and its label processors often need the same derivation of
its files: a Garmin file's sport bouts, a WESAD subject's condition segments
(from a pickle of about 1 GB), a unit's bouts for both the window labels and
the events. The adapter stores what it derived while reading, so the label
processor does not parse the file again. Keys carry each file's path, size
and modification time (a changed file misses) and whatever else shapes the
value; a memo keeps a few recent entries, so memory stays a unit's.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Hashable, Iterable


def file_versions(paths: Iterable[str | os.PathLike]) -> tuple[tuple[str, int, int], ...]:
    """``(path, size, modification time in ns)`` of each file: part of every memo key."""
    return tuple((str(p), st.st_size, st.st_mtime_ns) for p in paths for st in [os.stat(p)])


class Memo:
    """The ``entries`` most recently stored values by key (first in, first out)."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value stored for ``key``, else ``compute()`` (stored unless it raises)."""
        if key not in self._values:
            self.put(key, compute())
        return self._values[key]

    def put(self, key: Hashable, value: Any) -> None:
        self._values.pop(key, None)
        while len(self._values) >= self._entries:
            self._values.pop(next(iter(self._values)))
        self._values[key] = value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values
