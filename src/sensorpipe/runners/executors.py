"""Runners map a stage over units: in process, or over N worker processes.

Both keep the input order of results, so everything downstream (statistics
merge, record order, shard cut) is identical whichever runner ran.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm


class LocalRunner:
    """Runs every unit in this process: for notebooks and debugging."""

    name = "local"

    def map(self, fn: Callable[..., Any], items: list[Any], desc: str) -> list[Any]:
        return list(_progress((fn(*a) for a in items), len(items), desc))

    def submit(self, fn: Callable[..., Any], args: tuple) -> "Done":
        """Run ``fn(*args)`` (here: now); ``.result()`` returns its value or raises its error."""
        try:
            return Done(fn(*args))
        except Exception as e:  # noqa: BLE001 - re-raised by result(), in the caller's order of joins
            return Done(error=e)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Done:
    """An already finished :meth:`LocalRunner.submit` call."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class _Pending:
    """A :meth:`MultiprocessRunner.submit` call in flight; ``result()`` like a future's."""

    def __init__(self, async_result: Any) -> None:
        self._r = async_result

    def result(self) -> Any:
        return self._r.get()


def _worker_init() -> None:
    """Warm a worker: one Arrow thread per process (the pool is the parallelism), heavy imports once, freed
    memory kept in the heap (the pool lives for one run; see runners/_memory.py)."""
    import pyarrow as pa

    from sensorpipe.runners._memory import retain_freed_memory

    pa.set_cpu_count(1)
    retain_freed_memory()
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

    Starting it still takes about a second (the forkserver's imports), so the
    pool starts in a background thread and :meth:`map` runs units in this
    process until the workers are up, then hands the rest to them. Results
    keep the input order whoever computed them (the stages are pure
    functions of their arguments), so the output does not depend on it.
    """

    name = "multiprocess"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Any = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._starter = threading.Thread(target=self._start, name="sensorpipe-pool-start", daemon=True)
        self._starter.start()

    def _start(self) -> None:
        try:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["sensorpipe.runners.stages", "sensorpipe.storage.features",
                                        "sensorpipe.runners._warm"])
            self._pool = ctx.Pool(self.workers, initializer=_worker_init)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread by map/close
            self._error = e
        finally:
            self._ready.set()

    def _started_pool(self) -> Any:
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError(f"could not start the multiprocess runner's worker pool: {self._error}") \
                from self._error
        return self._pool

    def map(self, fn, items, desc):
        out: list[Any] = []
        with tqdm(total=len(items), desc=desc, unit="unit", leave=False, disable=None) as bar:
            while len(out) < len(items) and not self._ready.is_set():  # the pool is starting: work meanwhile
                out.append(fn(*items[len(out)]))
                bar.update()
            if len(out) < len(items):
                for r in self._started_pool().imap(_star, [(fn, a) for a in items[len(out):]], chunksize=1):
                    out.append(r)
                    bar.update()
        return out

    def submit(self, fn, args):
        """Start ``fn(*args)`` in a worker; ``.result()`` waits for it (and raises its error)."""
        return _Pending(self._started_pool().apply_async(_star, ((fn, args),)))

    def close(self) -> None:
        self._ready.wait()
        if self._pool is not None:
            self._pool.close()
            self._pool.join()


def _progress(it: Iterable[Any], total: int, desc: str) -> Iterator[Any]:
    yield from tqdm(it, total=total, desc=desc, unit="unit", leave=False, disable=None)


def make_runner(name: str, workers: int) -> LocalRunner:
    return MultiprocessRunner(workers) if name == "multiprocess" else LocalRunner()
