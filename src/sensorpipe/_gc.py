"""Python's cyclic garbage collector, paused while heavy libraries are imported.

An import creates tens of thousands of objects that live as long as the
process (functions, classes, docstrings, tables), and every few hundred of
them trigger a collection; the oldest generation's collections walk every
object imported so far, so their cost grows with each library. A one-day
``sensorpipe run`` spends a measurable share of its start in collections
during imports (pandas, pyarrow and the pipeline at start, scipy.signal at
the first caption, TFDS at the first shard; BENCHMARKS.md, "Start-up"), and
none of them finds garbage worth it.
Paused during those imports, the collector runs again as usual afterwards
and collects whatever cycles the imports did leave.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block; the collector's state before it is restored after it
    (so a caller that disabled it keeps it disabled, and nested or concurrent blocks end enabled only when
    the outermost one that found it enabled ends)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
