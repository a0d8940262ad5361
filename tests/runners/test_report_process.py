"""The report's side process (runners/report_process.py): jobs, errors, its end, and a run that uses it.

A run forks it at its start where a fork is safe, draws the report there, and has ended it when the run
returns, also when the run fails; where a fork is not safe (a second thread, as in a notebook kernel) the
run's pool draws, as before.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import sensorpipe.reporting as reporting
from sensorpipe.runners.executors import RunnerError
from sensorpipe.runners.report_process import WARM_IMPORTS, ReportProcess, start_report_process

from .tiny_cohort import config, write_cohort, write_yaml

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the report process is forked (POSIX only)")


def _pid_and_sum(*xs: int) -> tuple[int, int]:
    return os.getpid(), sum(xs)


def _fails(name: str) -> None:
    raise KeyError(f"no channel {name!r}")


def test_jobs_run_in_the_side_process_in_order_and_errors_come_back():
    with ReportProcess(warm=()) as side:
        pid, total = side.submit(_pid_and_sum, (1, 2, 39)).result()
        assert (pid, total) == (side.pid, 42) and pid != os.getpid()
        job = side.submit(_fails, ("spo3",))
        with pytest.raises(KeyError, match="spo3"):
            job.result()
        assert side.submit(_pid_and_sum, (5,)).result() == (side.pid, 5)   # an error does not end it
        proc = side._proc
    assert proc.exitcode == 0 and proc not in mp.active_children()        # it left on its own


def _echo(payload: bytes) -> bytes:
    return payload[::-1]


def test_jobs_queue_behind_the_running_one_and_large_ones_do_not_block_each_other():
    """Jobs sent while one runs wait their turn; a job and a reply each far larger than the pipe's buffer
    pass both ways without either side waiting on the other, whichever result is taken first."""
    big = [bytes([k]) * 8_000_000 + b"end" for k in range(3)]
    with ReportProcess(warm=()) as side:
        jobs = [side.submit(time.sleep, (0.2,))] + [side.submit(_echo, (b,)) for b in big]
        assert jobs[3].result() == big[2][::-1]          # the last one first: the replies before it are kept
        assert [j.result() for j in jobs[1:3]] == [big[0][::-1], big[1][::-1]] and jobs[0].result() is None
        assert side.submit(_pid_and_sum, (1, 2)).result() == (side.pid, 3)
        proc = side._proc
    assert proc.exitcode == 0


def test_a_killed_report_process_is_a_runner_error_naming_it():
    with ReportProcess(warm=()) as side:
        assert side.submit(_pid_and_sum, ()).result()[1] == 0
        os.kill(side.pid, signal.SIGKILL)
        # raised by submit (the send finds the pipe closed) or by result (the reply never comes)
        with pytest.raises(RunnerError, match=r"report process \(pid \d+\) died during sleep"):
            side.submit(time.sleep, (0,)).result()


def test_a_failed_run_ends_the_process_at_once_whatever_it_draws():
    side = ReportProcess(warm=())
    side.submit(time.sleep, (60,))
    t = time.monotonic()
    side.close(wait=False)
    assert time.monotonic() - t < 10 and side._proc.exitcode == -signal.SIGTERM


def test_no_side_process_where_a_fork_is_not_safe_or_the_runner_has_its_own():
    assert start_report_process("beam") is None
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)      # a notebook kernel's threads: forking could deadlock
    other.start()
    try:
        assert start_report_process("local") is None
        assert start_report_process("multiprocess") is None
    finally:
        stop.set()
        other.join()
    assert start_report_process("multiprocess", "spawn") is None


_REAL_RUN_REPORT = reporting.run_report
_NOTE: list[Path] = []      # where the patched job writes its process id (set before the run forks)


def _run_report_noting_pid(*args):
    """``run_report``, noting the process that draws it (module level: the job is pickled by reference)."""
    _NOTE[0].write_text(str(os.getpid()))
    return _REAL_RUN_REPORT(*args)


def _broken_report(*args):
    raise ValueError("report drawing failed on purpose")


def _ran_in_a_fresh_process(request) -> bool:
    """Where an earlier test left a thread running in this process (a test server, say), a run here would not
    fork its side process, as in a notebook kernel: the test then runs alone in a new pytest process, and True
    means it passed there."""
    if threading.active_count() == 1:
        return False
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return True


@pytest.mark.parametrize("runner", ["local", "multiprocess"])
def test_a_run_draws_its_report_in_the_side_process_and_leaves_none(tmp_path, monkeypatch, runner, request):
    from sensorpipe.runners.driver import run_pipeline

    if _ran_in_a_fresh_process(request):
        return
    write_cohort(tmp_path / "data", ("p1", "p2"))
    note = tmp_path / "drawn-by"
    _NOTE[:] = [note]
    monkeypatch.setattr(reporting, "run_report", _run_report_noting_pid)
    cfg = config(tmp_path, tmp_path / "data", runner={"name": runner, "workers": 2, "start_method": "fork"})
    result = run_pipeline(write_yaml(tmp_path / "p.yaml", cfg))
    page = Path(result.report).read_text()
    assert 'id="examples"' in page and page.count("<svg") >= 5 and page.rstrip().endswith("</html>")
    assert "peak RSS of the run&#x27;s driver process" in page        # the driver's memory, not the drawer's
    assert int(note.read_text()) != os.getpid()
    assert mp.active_children() == []


def test_a_run_whose_report_fails_publishes_nothing_and_leaves_no_process(tmp_path, monkeypatch, request):
    from sensorpipe.runners.driver import run_pipeline

    if _ran_in_a_fresh_process(request):
        return
    write_cohort(tmp_path / "data", ("p1",))
    monkeypatch.setattr(reporting, "run_report", _broken_report)
    cfg = config(tmp_path, tmp_path / "data")
    with pytest.raises(ValueError, match="on purpose"):
        run_pipeline(write_yaml(tmp_path / "p.yaml", cfg))
    assert not (tmp_path / "out" / "tiny").exists() or not any((tmp_path / "out" / "tiny").iterdir())
    assert mp.active_children() == []


def test_the_report_process_imports_no_database_library(tmp_path):
    """The report's jobs get the drift from the driver (which has the database open): what the side process
    imports ahead, the report's modules included, leaves SQLAlchemy out, as drawing needs no database."""
    probe = ("import json, sys, importlib\n"
             "from sensorpipe.runners.report_process import WARM_IMPORTS\n"
             "for name in WARM_IMPORTS:\n"
             "    importlib.import_module(name)\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy')[:3]))\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(root / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sensorpipe.reporting" in WARM_IMPORTS    # the module that imported the store before
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_side_process_forks_before_the_driver_opens_the_database(tmp_path, monkeypatch, request):
    """The side process starts its imports (matplotlib, the report's modules) while the driver imports
    SQLAlchemy, opens the database and plans: it is forked right after the output lock, before the store is
    opened, and so inherits no database connection either."""
    import sensorpipe.runners.driver as driver
    from sensorpipe.metadata.store import MetadataStore

    if _ran_in_a_fresh_process(request):
        return
    events: list[str] = []
    real_start, real_init = driver.start_report_process, MetadataStore.__init__

    def start(*args, **kwargs):
        side = real_start(*args, **kwargs)
        events.append("fork" if side is not None else "no fork")
        return side

    def init(self, *args, **kwargs):
        events.append("store")
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(driver, "start_report_process", start)
    monkeypatch.setattr(MetadataStore, "__init__", init)
    write_cohort(tmp_path / "data", ("p1",))
    driver.run_pipeline(write_yaml(tmp_path / "p.yaml", config(tmp_path, tmp_path / "data")))
    assert events[:2] == ["fork", "store"], events
    assert mp.active_children() == []
