"""Workers exit when the driver dies: kill -9 a real driver process while its workers run a unit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sensorpipe

DRIVER = """
import os, sys, time
from sensorpipe.runners.executors import MultiprocessRunner
runner = MultiprocessRunner(2, sys.argv[1])
futures = [runner.submit(time.sleep, (60,)) for _ in range(2)]   # both workers busy with a long unit
deadline = time.time() + 60
while len(runner._pool._processes) < 2 and time.time() < deadline:
    time.sleep(0.05)
print(" ".join(str(p) for p in runner._pool._processes), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie left for a reaper has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("start_method", ["fork", "forkserver", "spawn"])
def test_workers_exit_within_seconds_of_a_kill_9_of_the_driver(start_method):
    src = str(Path(sensorpipe.__file__).parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, start_method], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = [int(p) for p in driver.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), f"{start_method} workers outlived the driver: {pids}"
    finally:
        driver.kill()
        for p in pids if "pids" in locals() else []:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
