"""The run's HTML report, drawn in one side process so that it stays off the critical path of the run.

Why: the report's matplotlib figures (issue 18) cost a run about a second on one core: importing
matplotlib, then drawing about twenty SVG figures. Drawn in the driver (``local`` runner) or on a pool worker
in the run's tail (``multiprocess``) that second was added to every run (BENCHMARKS.md, "Session 9"). Here
one process, forked when the run starts, imports matplotlib and the report's modules while passes 1 and 2
run, draws the sections the run's record and its window sample give (read from the record spills) while the
driver writes the shards, and the timings and the page while the driver records the metadata.

The driver waits for the report before it publishes and ends the process when the run ends (also when it
fails), so ``report.html`` is complete when the run returns and nothing is drawn after it. Jobs run one at a
time, in the order submitted (the next may be sent while one runs); an error in a job is raised by its
``result()`` in the driver, as a pool's would be.

Only under ``fork`` (:func:`sensorpipe.runners.executors.resolve_start_method`: Linux, a driver with one
thread, no TensorFlow): a fork costs milliseconds and shares the imported pipeline. Elsewhere (a notebook
kernel has threads; macOS) :func:`start_report_process` returns None and the jobs run where they did before:
in process under ``local``, on a worker under ``multiprocess``. The ``beam`` runner keeps its own.
"""

from __future__ import annotations

import gc
import importlib
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections import deque
from typing import Any, Callable

from sensorpipe.runners.executors import RunnerError, _exit_with_driver, resolve_start_method

log = logging.getLogger(__name__)

#: imported by the side process as soon as it starts, while the driver runs the passes: the report's modules,
#: matplotlib's figure and SVG backend, and what reads the window sample from the run's record spills (no TFDS:
#: reporting.SpilledWindows)
WARM_IMPORTS = ("sensorpipe.reporting", "matplotlib.figure", "matplotlib.backends.backend_svg",
                "sensorpipe.access.dataset", "sensorpipe.access.decode", "sensorpipe.storage.layout")

#: seconds the driver waits for an idle report process to leave after its last job before ending it
EXIT_WAIT_S = 10.0


def _serve(conn, driver_pid: int, warm: tuple[str, ...]) -> None:
    """The side process: import ``warm``, then run ``(fn, args)`` jobs until ``None`` arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C stops the driver, which ends this process
    signal.signal(signal.SIGTERM, signal.SIG_DFL)    # ... with terminate(), whatever handler the driver set
    _exit_with_driver("fork", driver_pid)            # a killed driver leaves no report process behind
    if "importtime" in sys._xoptions or os.environ.get("PYTHONPROFILEIMPORTTIME"):
        # -X importtime: its lines would interleave with the driver's on the shared stderr (bench_start.py)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    for name in warm:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the job that needs it imports it again and reports the error
            pass
    # Every object alive now (the driver's, inherited by the fork, and the imports') lives as long as this
    # process: frozen, the collector's full collections during the drawing no longer walk them, nor write to
    # (and so copy) the pages shared with the driver.
    gc.freeze()
    # jobs are received by a thread while the main thread draws: the driver's send of a job never waits for
    # the job before it (a large job and a large reply could otherwise each wait for the other's reader)
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_receive_jobs, args=(conn, jobs), name="sensorpipe-report-jobs", daemon=True).start()
    while True:
        job = jobs.get()
        if job is None:                              # the run's end, or the driver is gone
            return
        fn, args = job
        try:
            reply = (True, fn(*args))
        except Exception as e:  # noqa: BLE001 - raised again by the job's result() in the driver
            reply = (False, e)
        try:
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - a value or error that does not pickle: say which
            conn.send((False, RunnerError(f"the report process could not send back the result of "
                                          f"{getattr(fn, '__name__', fn)}: {type(e).__name__}: {e}")))


def _receive_jobs(conn, jobs: queue.SimpleQueue) -> None:
    """Pass the driver's jobs on to the drawing thread, in order, until ``None`` or the driver's end."""
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):                  # the driver is gone
            job = None
        jobs.put(job)
        if job is None:
            return


class ReportJob:
    """One submitted job; :meth:`result` waits for it and returns its value or raises its error."""

    def __init__(self, owner: "ReportProcess", name: str) -> None:
        self._owner, self._name = owner, name
        self._reply: tuple[bool, Any] | None = None

    def result(self) -> Any:
        if self._reply is None:
            self._owner._receive_until(self)
        ok, value = self._reply
        if ok:
            return value
        raise value


class ReportProcess:
    """One forked process that runs the report's jobs (:meth:`submit`, like a pool's), one at a time, in the
    order submitted; several may be in flight."""

    def __init__(self, warm: tuple[str, ...] = WARM_IMPORTS) -> None:
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, os.getpid(), warm), name="sensorpipe-report",
                                 daemon=True)
        self._proc.start()
        child.close()        # only the process holds its end: its exit is an EOF here, even after later forks
        self._pending: deque[ReportJob] = deque()     # submitted, reply not received yet, oldest first
        self._submitted = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def submit(self, fn: Callable[..., Any], args: tuple) -> ReportJob:
        """Send ``fn(*args)`` to the process, which runs it after the jobs submitted before it."""
        name = getattr(fn, "__name__", str(fn))
        try:
            self._conn.send((fn, args))
        except (BrokenPipeError, ConnectionResetError) as e:
            raise self._died(name) from e
        job = ReportJob(self, name)
        self._pending.append(job)
        self._submitted = True
        return job

    def _receive_until(self, job: ReportJob) -> None:
        """Receive replies, which come in submission order, until ``job``'s."""
        while job._reply is None:
            oldest = self._pending[0]
            try:
                oldest._reply = self._conn.recv()
            except (EOFError, ConnectionResetError) as e:
                raise self._died(oldest._name) from e
            self._pending.popleft()

    def _died(self, name: str) -> RunnerError:
        self._proc.join(timeout=1.0)
        return RunnerError(f"the report process (pid {self._proc.pid}) died during {name} (exit code "
                           f"{self._proc.exitcode}): the operating system killed it (out of memory?) or it crashed; "
                           f"nothing was published. Run again; `sensorpipe report` rebuilds a published version's "
                           f"report")

    def close(self, wait: bool = True) -> None:
        """End the process: ``wait`` lets it leave on its own once its last job is done (the run's normal end,
        every result taken); otherwise (a failed run, one that drew nothing: an unchanged version, or a job whose
        result nobody took) it is terminated at once, whatever it was importing or drawing. Either way it has
        exited on return."""
        if wait and self._submitted and not self._pending and self._proc.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(timeout=EXIT_WAIT_S)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()
        self._conn.close()

    def __enter__(self) -> "ReportProcess":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(wait=exc_type is None)


def start_report_process(runner: str, start_method: str = "auto") -> ReportProcess | None:
    """A report process for a run on ``runner``, or None where the run's pool should draw the report itself.

    Call it before the runner starts any thread: it forks only when :func:`resolve_start_method` says a fork
    is safe now (``start_method``: the multiprocess runner's setting; the local runner asks ``auto``).
    """
    if runner not in ("local", "multiprocess"):
        return None
    if resolve_start_method(start_method if runner == "multiprocess" else "auto") != "fork":
        return None
    try:
        return ReportProcess(WARM_IMPORTS)
    except OSError as e:     # no process to be had (limits, memory): the pool draws, as without a fork
        log.warning("could not start the report process (%s): the report is drawn by the run's pool", e)
        return None
