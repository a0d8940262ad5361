"""One writer per output folder: an OS lock on ``<output.dir>/.sensorpipe.lock``.

Two runs writing one folder would interleave shards, quarantine files and the
``.work`` cache. The lock is ``fcntl.flock`` on the lock file, so taking it is
atomic (no window between "is it free?" and "it is mine") and the kernel
releases it when the holder dies, even by ``kill -9``. The file also says who
holds it (run id, PID, host, start time) for the message a second run prints;
the holder clears that text when it releases the lock, so text found by the
next holder means its writer died without releasing: a stale lock, taken over
with a log line.

The lock's file descriptor is closed in forked children (worker processes),
so the lock is the driver's alone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_NAME = ".sensorpipe.lock"

_held_fds: set[int] = set()


def _close_in_child() -> None:
    # a forked worker must not keep the driver's lock alive after the driver died
    for fd in list(_held_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()


os.register_at_fork(after_in_child=_close_in_child)


class OutputLocked(RuntimeError):
    """Another live run holds the output folder's lock (the message names it and the ways out)."""


def this_host() -> str:
    return socket.gethostname()


def read_holder(out_dir: str | Path) -> dict[str, Any] | None:
    """What the lock file says about its holder (None: free, released cleanly, or unreadable)."""
    try:
        text = (Path(out_dir) / LOCK_NAME).read_text()
    except OSError:
        return None
    try:
        holder = json.loads(text) if text.strip() else None
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_alive(out_dir: str | Path, run_id: str, pid: int | None, host: str | None) -> bool:
    """Whether run ``run_id`` may still be running: it holds the folder's lock and, on this host, its PID lives.

    A live run always holds its output folder's lock, and its lock file names it; a run the lock file does not
    name (another run took the lock since, or the file was released) is gone.
    """
    if host is not None and host != this_host() and not Path(out_dir).exists():
        return True   # another machine's output folder (a team database): only that machine can tell
    holder = read_holder(out_dir)
    if not holder or holder.get("run_id") != run_id:
        return False
    if host == this_host() and pid is not None:
        return pid_alive(int(pid))
    return True   # another host's run named by the lock: trust the lock


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another run (it left no details)"
    return (f"run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"started {holder.get('started_at', '?')})")


class OutputLock:
    """Exclusive lock of one output folder for one run; a context manager.

    ``wait_s`` > 0 waits that long for a live holder to finish before giving up.
    ``stale`` is set to the dead holder's details when a stale lock was taken over.
    """

    def __init__(self, out_dir: str | Path, run_id: str, started_at: str, wait_s: float = 0.0) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self.info = {"run_id": run_id, "pid": os.getpid(), "host": this_host(), "started_at": started_at}
        self.wait_s = wait_s
        self.stale: dict[str, Any] | None = None
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    waited = f" after waiting {self.wait_s:g} s" if self.wait_s else ""
                    raise OutputLocked(
                        f"output folder {self.out_dir} is being written by {describe(read_holder(self.out_dir))}"
                        f"{waited}; wait for it to finish, pass --wait-lock SECONDS, or give this run another "
                        f"output.dir") from None
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        _held_fds.add(fd)
        self._fd = fd
        previous = os.pread(fd, 65536, 0).decode("utf-8", "replace")
        if previous.strip():
            try:
                self.stale = json.loads(previous)
            except ValueError:
                self.stale = {}
            log.warning("took over the stale lock of %s in %s: that run ended without releasing it (killed?)",
                        describe(self.stale), self.out_dir)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self.info).encode(), 0)
        os.fsync(fd)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)      # cleared: the next holder knows this run ended properly
        finally:
            _held_fds.discard(fd)
            os.close(fd)             # closing the last descriptor releases the flock

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
