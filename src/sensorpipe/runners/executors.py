"""Runners map a stage over units: in process, or over N worker processes.

Both keep the input order of results, so everything downstream (statistics
merge, record order, shard cut) is identical whichever runner ran.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm


class LocalRunner:
    """Runs every unit in this process: for notebooks and debugging."""

    name = "local"

    def map(self, fn: Callable[..., Any], items: list[Any], desc: str) -> list[Any]:
        return list(_progress((fn(*a) for a in items), len(items), desc))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _worker_init() -> None:
    """Warm a worker: one Arrow thread per process (the pool is the parallelism), heavy imports once."""
    import pyarrow as pa

    pa.set_cpu_count(1)
    import sensorpipe.runners.stages  # noqa: F401
    import sensorpipe.storage.features  # noqa: F401


def _star(args: tuple[Callable[..., Any], tuple]) -> Any:
    fn, a = args
    return fn(*a)


class MultiprocessRunner(LocalRunner):
    """A pool of ``workers`` processes forked from a fresh forkserver (never from this process).

    The forkserver starts clean (no inherited readers, locks or threads, unlike
    fork) and imports the pipeline once; each worker is then a cheap fork of
    it, instead of paying the imports again per spawned worker.
    """

    name = "multiprocess"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["sensorpipe.runners.stages", "sensorpipe.storage.features"])
        self._pool = ctx.Pool(workers, initializer=_worker_init)

    def map(self, fn, items, desc):
        it = self._pool.imap(_star, [(fn, a) for a in items], chunksize=1)
        return list(_progress(it, len(items), desc))

    def close(self) -> None:
        self._pool.close()
        self._pool.join()


def _progress(it: Iterable[Any], total: int, desc: str) -> Iterator[Any]:
    yield from tqdm(it, total=total, desc=desc, unit="unit", leave=False, disable=None)


def make_runner(name: str, workers: int) -> LocalRunner:
    return MultiprocessRunner(workers) if name == "multiprocess" else LocalRunner()
