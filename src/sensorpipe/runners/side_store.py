"""A run's metadata database, kept by the run's side process (runners/report_process.py) instead of the driver.

Why: opening the store imports SQLAlchemy (about a quarter of a second) and each of a run's rows (its start,
its stages, the record, the publish) is a commit. In the driver all of that sat on the critical path of every
run, while the side process, forked when the lock is taken, waited for the report's jobs on an idle core. The
driver now sends the store's calls to that process as jobs, in the order it makes them, and never imports
SQLAlchemy itself.

* A write (``begin_run``, ``update_run``, ``record_run``, ``audit``, ...: :data:`WRITES`) is sent and not
  waited for. Its error is raised by the next call that waits or checks (any later store call raises the
  errors that have come back by then; :meth:`SideStore.sync` waits for every write), so a database that
  refuses a write still fails the run with its own error. The driver syncs before the rename that publishes
  (the ``publishing`` row is committed first, as :mod:`sensorpipe.runners.lifecycle` requires) and at the end
  of the run's work.
* A read (any other method: ``list_versions``, ``get_run``, ...) waits for its reply, and so for every job
  sent before it. :meth:`SideStore.later` runs a function of the store there (``reconcile_runs``, the drift's
  previous version, ``metrics.prom``) and returns a job whose ``result()`` waits.
* A side process that died (killed, out of memory) is a :class:`~sensorpipe.runners.executors.RunnerError`
  at the call that finds it; the calls after that (the run's failure path: its row says ``failed``) open the
  store in the driver.

Without a side process (notebooks, ``spawn``, ``beam``) :class:`InProcessStore` gives the same interface on a
store opened in the driver, as runs always did there.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from sensorpipe.runners.executors import Done, RunnerError

log = logging.getLogger(__name__)

#: the store's methods a run calls without waiting for their reply
WRITES = frozenset({"begin_run", "update_run", "finish_run", "publish_version", "record_run", "record_alerts",
                    "add_stage_timings", "audit"})

# ---- in the side process: the one store of the run ----------------------------------------------------------

_store = None                               # the MetadataStore the side process opened for the run
_open_error: BaseException | None = None    # ... or why it could not: raised again by every later call


def open_side_store(url: str) -> None:
    """The side process's first job: open the run's store (imports SQLAlchemy there, not in the driver)."""
    global _store, _open_error
    from sensorpipe.metadata.store import MetadataStore

    try:
        _store = MetadataStore(url)
    except Exception as e:  # noqa: BLE001 - every later call raises the same error, as the driver's open did
        _open_error = e
        raise


def _opened():
    if _store is None:
        raise _open_error if _open_error is not None else RunnerError("the run's metadata store was not opened")
    return _store


def call_store(method: str, args: tuple, kwargs: dict) -> Any:
    """One of the store's methods, in the side process."""
    return getattr(_opened(), method)(*args, **kwargs)


def with_store(fn: Callable[..., Any], args: tuple) -> Any:
    """``fn(store, *args)`` in the side process."""
    return fn(_opened(), *args)


def close_side_store() -> None:
    global _store
    if _store is not None:
        _store.close()
        _store = None


# ---- in the driver ------------------------------------------------------------------------------------------


class _Sent:
    """A store job sent to the side process; ``checked`` once its error (if any) was raised to the driver."""

    def __init__(self, job, name: str) -> None:
        self.job, self.name, self.checked = job, name, False

    def result(self) -> Any:
        self.checked = True
        return self.job.result()


class SideStore:
    """The run's :class:`~sensorpipe.metadata.store.MetadataStore`, in the side process ``side``."""

    def __init__(self, side, url: str) -> None:
        self._side, self.url = side, url
        self._sent: list[_Sent] = []        # oldest first; dropped once answered and checked
        self._died = False                  # the side process is gone: later calls use ...
        self._here: InProcessStore | None = None   # ... a store opened in this process
        self._send(open_side_store, (url,), "open the metadata database")

    def _local(self) -> InProcessStore | None:
        if self._died and self._here is None:
            self._here = InProcessStore(self.url)
        return self._here

    def _side_call(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, a call on the side process; its death is raised (once) and later calls run here."""
        try:
            return fn()
        except RunnerError:
            if self._side.alive:
                raise
            self._died = True
            self._sent.clear()
            raise

    # -- jobs
    def _send(self, fn: Callable[..., Any], args: tuple, name: str) -> _Sent:
        """Send a job (it runs whatever came back before), then raise the errors that have come back."""
        sent = _Sent(self._side_call(lambda: self._side.submit(fn, args)), name)
        self._sent.append(sent)
        self.check()
        return sent

    def _wait(self, sent: _Sent) -> Any:
        """``sent``'s value, once the errors of the writes sent before it are raised."""
        self._side_call(sent.job.wait)
        self.check()
        return sent.result()

    def check(self) -> None:
        """Raise the error of the oldest write whose failed reply has come back (each error once)."""
        if self._died:
            return
        self._side_call(self._side.collect_ready)
        while self._sent and self._sent[0].job.done():
            sent = self._sent.pop(0)
            if not sent.checked:
                sent.result()

    def sync(self) -> None:
        """Wait for every job sent so far; raise the first error not raised yet."""
        if self._died or not self._sent:
            return
        self._side_call(self._sent[-1].job.wait)
        self.check()

    # -- the store's interface
    def later(self, fn: Callable[..., Any], *args: Any):
        """``fn(store, *args)`` in the side process after the jobs sent before it; ``result()`` waits."""
        if self._died:
            return self._local().later(fn, *args)
        return _Later(self, self._send(with_store, (fn, args), getattr(fn, "__name__", str(fn))))

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._died:
                return getattr(self._local(), method)(*args, **kwargs)
            sent = self._send(call_store, (method, args, kwargs), method)
            return None if method in WRITES else self._wait(sent)

        return call

    def close(self) -> None:
        """Wait for the last jobs and close the store there. Errors not raised yet are logged: the run's outcome
        was decided by then (what is left are its audit row and timings, which never fail a run)."""
        if self._died:
            if self._here is not None:
                self._here.close()
            return
        try:
            closing = self._send(close_side_store, (), "close the metadata database")
            self._side_call(closing.job.wait)
        except Exception:  # noqa: BLE001
            log.exception("the metadata database's side process failed at the end of the run")
            return
        for sent in self._sent:
            if not sent.checked:
                try:
                    sent.result()
                except Exception:  # noqa: BLE001
                    log.exception("the metadata database could not %s", sent.name.replace("_", " "))
        self._sent.clear()


class _Later:
    """A :meth:`SideStore.later` job: ``result()`` waits for it (and raises earlier writes' errors first)."""

    def __init__(self, store: SideStore, sent: _Sent) -> None:
        self._store, self._sent = store, sent

    def result(self) -> Any:
        return self._store._wait(self._sent)


class InProcessStore:
    """:class:`SideStore`'s interface on a store opened in this process: every call runs at once."""

    def __init__(self, url: str) -> None:
        from sensorpipe.metadata.store import MetadataStore

        self._store = MetadataStore(url)
        self.url = url

    def __getattr__(self, method: str) -> Any:
        return getattr(self._store, method)

    def later(self, fn: Callable[..., Any], *args: Any) -> Done:
        try:
            return Done(fn(self._store, *args))
        except Exception as e:  # noqa: BLE001 - raised by result(), as a job's error is
            return Done(error=e)

    def check(self) -> None:
        """Nothing to collect: every call has returned or raised."""

    def sync(self) -> None:
        """Nothing in flight."""

    def close(self) -> None:
        self._store.close()


def open_run_store(url: str, side=None) -> SideStore | InProcessStore:
    """The run's store: kept by ``side`` (a :class:`~sensorpipe.runners.report_process.ReportProcess`), or
    opened here when there is none."""
    return SideStore(side, url) if side is not None else InProcessStore(url)
