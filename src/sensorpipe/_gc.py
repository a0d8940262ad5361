"""Python's cyclic garbage collector, paused while heavy libraries are imported.

An import creates tens of thousands of objects that live as long as the
process (functions, classes, docstrings, tables), and every few hundred of
them trigger a collection; the oldest generation's collections walk every
object imported so far, so their cost grows with each library. A one-day
``sensorpipe run`` spends a measurable share of its start in collections
during imports (pandas, pyarrow and the pipeline at start, scipy.signal at
the first caption, TFDS at the first shard; BENCHMARKS.md, "Start-up"), and
none of them finds garbage worth it.
Paused during those imports, the collector runs again as usual afterwards.

At the end of the outermost pause the objects then alive are frozen
(``gc.freeze``: moved to a generation the collector never walks). Most are
the libraries just imported, which live as long as the process; without the
freeze every full collection during the run, and the one at exit
(``sensorpipe.cli._freeze_before_exit``), walks them all again (BENCHMARKS.md,
"Session 10: start-up"). Reference counting still frees frozen objects (the
run's own data alive at that moment included); only a cycle among them that
becomes garbage is left to the end of the process (a few thousand objects in a
whole run). A process that forks workers afterwards also keeps those pages
shared (the collector no longer writes to the objects' headers).
Only a block that imported something freezes: in a long-lived process (a
notebook that runs the pipeline again and again) the later runs import
nothing new, so their data and the user's are never frozen, and garbage
cycles among them are collected as usual.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block; the collector's state before it is restored after it
    (so a caller that disabled it keeps it disabled, and nested or concurrent blocks end enabled only when
    the outermost one that found it enabled ends), and that outermost one freezes what is alive then when
    modules were imported inside it (see the module docstring)."""
    was_enabled = gc.isenabled()
    modules_before = len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if len(sys.modules) > modules_before:
                gc.freeze()
            gc.enable()
