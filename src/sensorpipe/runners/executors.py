"""Runners map a stage over units: in process, or over N worker processes.

Both keep the input order of results, so everything downstream (statistics
merge, record order, shard cut) is identical whichever runner ran.

Workers keep freed memory in their glibc heap during the run
(:mod:`sensorpipe.runners._memory`: a profile of ``make bench`` puts the
page faults it saves well above the 2 % bar, BENCHMARKS.md). ``runner.tuning:
fast`` (opt-in, :func:`make_runner`) adds, under ``fork``, a warm-up import of
what the later passes need plus fresh forks that have it. The default
(``none``) warms up only the slow imports the caption levels name
(``scipy.signal``): the driver imports them in a background thread while
the workers run pass 1, instead of between the passes with the workers idle,
and forks pass 2's workers fresh, so that they share one import; the output
is the same either way.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
import sys
import threading
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm as _tqdm

from sensorpipe._gc import collector_paused
from sensorpipe.runners.progress import progress


class tqdm(_tqdm):
    """The runners' progress bar, without tqdm's monitor thread: that thread would outlive the run, and a
    driver with a second thread no longer forks its workers (:func:`resolve_start_method`). The monitor
    only shortens the redraw interval of bars that stall; these bars redraw per unit."""

    monitor_interval = 0


class RunnerError(RuntimeError):
    """The worker pool could not start, or a worker died: the CLI prints it as a message, not a traceback."""


class LocalRunner:
    """Runs every unit in this process: for notebooks and debugging."""

    name = "local"

    def describe(self) -> str:
        return "local (this process)"

    def map(self, fn: Callable[..., Any], items: list[Any], desc: str) -> list[Any]:
        return list(_progress((fn(*a) for a in items), len(items), desc))

    def preload(self, modules: Iterable[str]) -> None:
        """Nothing to do in process: a stage imports what it needs at its first use, once either way."""

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


#: seconds between a worker's checks that the driver is still alive, where it cannot wait on a pidfd
PARENT_POLL_S = 0.5


def _exit_with_driver(start_method: str, driver_pid: int) -> None:
    """Make this worker die with the driver, so a killed driver (kill -9, OOM killer) leaves no worker behind.

    Linux, ``fork``: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, delivered when the thread that forked this process
    ends (the driver's main thread). That does not cover ``forkserver`` (the parent is the forkserver,
    which outlives the driver while a worker holds its inherited "alive" pipe) nor ``spawn`` (a short-lived
    thread may start the worker), so every worker also watches the driver itself from a daemon thread:
    blocked on a pidfd of the driver (Linux 5.3+; readable once it exits), else polling every
    :data:`PARENT_POLL_S` seconds whether the driver still exists and is still its parent.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux") and start_method == "fork":
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)   # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass                                       # the watch below still runs
    pidfd = None
    try:
        pidfd = os.pidfd_open(driver_pid)
    except (AttributeError, OSError):                  # not Linux 5.3+, or the driver is already gone
        pass
    if not _driver_alive(driver_pid, parent, start_method):
        os._exit(1)

    def watch() -> None:
        if pidfd is not None:
            import select

            select.select([pidfd], [], [])             # returns when the driver exits
            os._exit(1)
        while _driver_alive(driver_pid, parent, start_method):
            threading.Event().wait(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="sensorpipe-driver-watch", daemon=True).start()


def _driver_alive(driver_pid: int, parent: int, start_method: str) -> bool:
    if start_method != "forkserver" and os.getppid() != parent:   # orphaned: the driver was the parent
        return False
    try:
        os.kill(driver_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _worker_init(start_method: str = "spawn", driver_pid: int = 0, retain_memory: bool = False) -> None:
    """Ready a worker: die with the driver, one Arrow thread per process (the pool is the parallelism), the
    stages imported once; with ``retain_memory`` (tuning ``fast``) freed memory stays in its heap (the pool
    lives for one run; see runners/_memory.py)."""
    _exit_with_driver(start_method, driver_pid or os.getppid())
    import pyarrow as pa

    pa.set_cpu_count(1)
    if retain_memory:
        from sensorpipe.runners._memory import retain_freed_memory

        retain_freed_memory()
    import sensorpipe.runners.stages  # noqa: F401
    import sensorpipe.storage.features  # noqa: F401


def _no_op() -> None:
    """Run once per pool start: the workers exist (and their initializer ran) before the first pass."""


def resolve_start_method(requested: str = "auto") -> str:
    """The multiprocessing start method for ``requested`` (``auto``: see :class:`MultiprocessRunner`).

    Forking copies this process's state: only its calling thread runs in the
    child, so a lock another Python thread holds at that moment (a notebook
    kernel's output thread, a progress bar's monitor) stays locked there, and
    TensorFlow's runtime does not survive a fork. numpy's BLAS and Arrow's
    thread pools re-initialize in the child (they register at-fork handlers).
    macOS frameworks are not fork-safe, so fork is chosen on Linux only.
    """
    if requested != "auto":
        return requested
    safe = (sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()
            and threading.active_count() == 1 and "tensorflow" not in sys.modules)
    return "fork" if safe else "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


class MultiprocessRunner(LocalRunner):
    """A pool of ``workers`` processes; results keep the input order whoever computed them.

    Under ``fork`` (what ``auto`` picks where it is safe: :func:`resolve_start_method`) the
    workers are copies of this process, pipeline imported, forked at the first :meth:`map` or
    :meth:`submit` and kept for the run. With ``warm`` (module names: the caption levels' slow
    imports, or :data:`WARM_MODULES` under tuning ``fast``) what the later passes need is imported
    by this process in a background thread while the workers run the first pass, and the next
    :meth:`map` forks fresh workers that have it (instead of each worker importing it at its first
    unit of that pass, or this process importing it between the passes while the workers wait);
    :meth:`preload` does the same for named modules, imported at once.

    Under ``forkserver`` (or ``spawn``) a fresh process first imports the
    pipeline and ``warm`` (workers are then cheap forks of it). The pool
    starts in a background thread and :meth:`map` runs units in this process
    until the workers are up, then hands the rest to them. The stages are
    pure functions of their arguments, so the output does not depend on who ran a unit.
    """

    name = "multiprocess"

    def __init__(self, workers: int, start_method: str = "auto", warm: tuple[str, ...] = (),
                 retain_memory: bool = False) -> None:
        self.workers = workers
        self.start_method = resolve_start_method(start_method)  # before any thread of ours starts
        self.warm = tuple(warm)
        self.retain_memory = retain_memory
        self.forks = 0                   # pools started so far (fork with ``warm``: one per pass with new imports)
        self._pool: Any = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._warming: threading.Thread | None = None
        self._modules_at_fork = 0
        self._preloaded = False          # fork: :meth:`preload` imported something the workers lack
        if self.start_method != "fork":   # fork: at the first map or submit, with what is imported by then
            threading.Thread(target=self._start, name="sensorpipe-pool-start", daemon=True).start()

    def describe(self) -> str:
        return f"multiprocess ({self.workers} workers, {self.start_method}; {self.forks} pool(s) started)"

    def _start(self) -> None:
        try:
            ctx = mp.get_context(self.start_method)
            if self.start_method == "forkserver":
                ctx.set_forkserver_preload(["sensorpipe.runners.stages", "sensorpipe.storage.features", *self.warm])
            modules = len(sys.modules)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init,
                                             initargs=(self.start_method, os.getpid(), self.retain_memory))
            self._pool.submit(_no_op).result()   # the workers start now (fork: before any thread of ours)
            # what starting the pool imported here (multiprocessing's own parts) is no reason to fork again
            self._modules_at_fork = max(modules, len(sys.modules))
            self.forks += 1
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread by map/close
            self._error = e
        finally:
            self._ready.set()

    def _started_pool(self) -> ProcessPoolExecutor:
        self._ready.wait()
        if self._error is not None:
            raise RunnerError(f"could not start the multiprocess runner's worker pool: {self._error}") \
                from self._error
        return self._pool

    def _warm_up(self) -> None:
        """Fork only, once: import ``warm`` here in a background thread while the workers are busy."""
        if self.start_method != "fork" or not self.warm or self._warming is not None:
            return
        # Arrow (and its bundled mimalloc) must be loaded by this long-lived thread, never first by the
        # short-lived warm-up thread: pyarrow 25 crashes when it was (apache/arrow#50471)
        import pyarrow  # noqa: F401

        def imports() -> None:
            for name in self.warm:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - the stage that needs it imports it again and reports the error
                    pass

        self._warming = threading.Thread(target=imports, name="sensorpipe-warm-up", daemon=True)
        self._warming.start()

    def preload(self, modules: Iterable[str]) -> None:
        """Fork only: import ``modules`` here, once, before the pass that needs them (the caption levels'
        slow imports: :func:`sensorpipe.captions.generator.level_imports`), and fork that pass's workers
        fresh with them, instead of every worker importing them at its first unit. Nothing happens for
        modules already imported (a run whose pass 2 is skipped never calls this). Other start methods
        leave the import to the workers' first unit, as before."""
        if self.start_method != "fork":
            return
        if self._warming is not None:
            self._warming.join()           # tuning fast may be importing them already
        new = [name for name in modules if name not in sys.modules]
        with collector_paused():
            for name in new:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - the stage that needs it imports it again and reports the error
                    pass
        self._preloaded = self._preloaded or bool(new)

    def _fork_pool(self) -> None:
        """Fork only, before a pass (the pool is idle): fork the workers, or, once a pass warmed up ``warm``
        (the warm-up done) or after a :meth:`preload`, fork fresh ones when this process imported modules
        since the last fork. Before the first warm-up (the plan stage's jobs, then pass 1) the workers stay."""
        if self._warming is not None:
            self._warming.join()           # no thread may be running (or hold the import lock) at a fork
        if self._ready.is_set() and (self._error is not None or not (self._warming is not None or self._preloaded)
                                     or len(sys.modules) == self._modules_at_fork):
            return
        self._preloaded = False
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # its workers and its manager thread end too
            self._pool = None
        self._start()

    def map(self, fn, items, desc):
        if self.start_method == "fork":
            self._fork_pool()
        out: list[Any] = []
        with progress(len(items), desc) as bar:
            while len(out) < len(items) and not self._ready.is_set():  # the pool is starting: work meanwhile
                out.append(fn(*items[len(out)]))
                bar.update(out[-1])
            if len(out) < len(items):
                first = len(out)
                pool = self._started_pool()
                futures = [pool.submit(fn, *a) for a in items[first:]]
                self._warm_up()            # the workers run this pass; the next one forks with the imports
                for i, f in enumerate(futures, start=first):   # in input order, whoever finished first
                    try:
                        out.append(f.result())
                    except BrokenProcessPool as e:
                        for g in futures:
                            g.cancel()
                        raise RunnerError(_died(desc, i, len(items))) from e
                    bar.update(out[-1])
        return out

    def submit(self, fn, args):
        """Start ``fn(*args)`` in a worker; ``.result()`` waits for it (and raises its error)."""
        if self.start_method == "fork" and not self._ready.is_set():
            self._fork_pool()              # the first call: later submits share the pool (tasks may be in flight)
        return self._started_pool().submit(fn, *args)

    def close(self) -> None:
        if self.start_method != "fork":
            self._ready.wait()             # the background start
        if self._warming is not None:
            self._warming.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _died(desc: str, done: int, total: int) -> str:
    """What to tell the user when a worker vanished (its unit is one of those not done), and what to try."""
    return (f"a worker process died during {desc!r} with {done} of {total} units done: the operating system "
            f"killed it (out of memory?) or it crashed. Rerun with fewer workers (runner.workers) or with "
            f"runner: local, which reports the error itself")


def _progress(it: Iterable[Any], total: int, desc: str) -> Iterator[Any]:
    """``it``'s items, counted by a progress bar on a terminal or a periodic log line (runners/progress.py)."""
    with progress(total, desc) as bar:
        for x in it:
            bar.update(x)
            yield x


#: what tuning ``fast`` imports ahead for pass 2 and the run's tail (see runners/_warm.py)
WARM_MODULES = ("sensorpipe.runners._warm",)


def make_runner(name: str, workers: int, start_method: str = "auto", tuning: str = "none",
                beam_options: Any = (), work_dir: str = ".work", ahead: tuple[str, ...] = ()) -> LocalRunner:
    """The configured runner: multiprocess workers retain freed heap memory, and a multiprocess driver warms up
    ``ahead`` (the caption levels' slow imports: :func:`sensorpipe.captions.generator.level_imports`) during pass
    1, or everything in :data:`WARM_MODULES` under tuning ``fast``; ``local`` imports them at their first use;
    ``beam`` runs the passes as Beam pipelines with ``beam_options`` (:mod:`sensorpipe.runners.beam`)."""
    if name == "beam":
        from sensorpipe.runners.beam import BeamRunner
        from sensorpipe.runners.beam_options import beam_flags

        return BeamRunner(beam_flags(beam_options), work_dir)
    if name != "multiprocess":
        return LocalRunner()
    return MultiprocessRunner(workers, start_method, warm=WARM_MODULES if tuning == "fast" else tuple(ahead),
                              retain_memory=True)
