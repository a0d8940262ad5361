"""One writer per output folder: the flock, its message, waiting, stale locks, and two real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from sensorpipe.runners.lock import LOCK_NAME, OutputLock, OutputLocked, read_holder, this_host

from .conftest import SRC, cli, tiny_config


def test_a_second_lock_fails_at_once_naming_the_holder(tmp_path):
    with OutputLock(tmp_path, "run-a", "2026-12-07T10:00:00+00:00"):
        t = time.monotonic()
        with pytest.raises(OutputLocked) as e:
            OutputLock(tmp_path, "run-b", "2026-12-07T10:00:01+00:00").acquire()
        assert time.monotonic() - t < 0.5
        assert str(e.value) == (
            f"output folder {tmp_path} is being written by run run-a (pid {os.getpid()} on {this_host()}, "
            f"started 2026-12-07T10:00:00+00:00); wait for it to finish, pass --wait-lock SECONDS, or give this "
            f"run another output.dir")
    assert (tmp_path / LOCK_NAME).read_text() == ""        # released: cleared
    with OutputLock(tmp_path, "run-b", "later") as lock:    # and free again
        assert lock.stale is None and read_holder(tmp_path)["run_id"] == "run-b"


def test_wait_lock_waits_for_the_holder(tmp_path):
    first = OutputLock(tmp_path, "run-a", "t0").acquire()
    threading.Timer(0.4, first.release).start()
    t = time.monotonic()
    with OutputLock(tmp_path, "run-b", "t1", wait_s=10):
        assert 0.3 < time.monotonic() - t < 5
    with OutputLock(tmp_path, "run-c", "t2"):
        with pytest.raises(OutputLocked, match="after waiting 0.3 s"):
            OutputLock(tmp_path, "run-d", "t3", wait_s=0.3).acquire()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_log_line(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"run_id": "killed", "pid": pid, "host": this_host(),
                                                  "started_at": "t0"}))
    with caplog.at_level("WARNING"), OutputLock(tmp_path, "run-b", "t1") as lock:
        assert lock.stale["run_id"] == "killed"
    assert f"took over the stale lock of run killed (pid {pid} on {this_host()}" in caplog.text


_HOLD = """
import sys, time
from sensorpipe.runners.lock import OutputLock
OutputLock(sys.argv[1], "holder-run", "2026-12-07T09:00:00+00:00").acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_concurrent_run_fails_at_once_and_a_killed_holder_is_taken_over(tiny_sources, tmp_path):
    out = tmp_path / "out"
    config = tiny_config(tiny_sources, out, name=f"{tmp_path.name}.yaml")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = cli("run", str(config))
        assert second.returncode == 2, second.stderr
        assert second.stderr == (f"sensorpipe run: error: output folder {out} is being written by run holder-run "
                                 f"(pid {holder.pid} on {this_host()}, started 2026-12-07T09:00:00+00:00); wait for "
                                 f"it to finish, pass --wait-lock SECONDS, or give this run another output.dir\n")
        assert not (out / "tiny").exists() and not (out / "metadata.db").exists()   # touched nothing
    finally:
        holder.kill()
        holder.wait()
    third = cli("run", str(config))       # the holder was killed -9: its lock is stale
    assert third.returncode == 0, third.stderr
    assert "took over the stale lock of run holder-run" in third.stderr
    assert (out / "tiny" / "1.0.0" / "dataset_info.json").exists()


def test_a_run_is_alive_while_its_lock_names_it_and_another_machines_folder_is_trusted(tmp_path):
    """`versions` on a team database must not close another machine's live run because its folder is not here."""
    from sensorpipe.runners.lock import run_alive

    with OutputLock(tmp_path, "r1", "2026-12-07T00:00:00+00:00"):
        assert run_alive(tmp_path, "r1", os.getpid(), this_host())
        assert not run_alive(tmp_path, "r0", os.getpid(), this_host())     # the lock names another run
    assert not run_alive(tmp_path, "r1", os.getpid(), this_host())         # released: the run is over
    elsewhere = tmp_path / "on-another-machine"
    assert run_alive(elsewhere, "r2", 4242, "another-host.example")         # not visible here: only it can tell
    assert not run_alive(elsewhere, "r2", 4242, this_host())                # this host: no folder, no lock, no run
