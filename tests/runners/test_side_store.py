"""The run's metadata database kept by its side process (runners/side_store.py).

A run that forks its side process never imports SQLAlchemy or TFDS in the driver: the side process writes the
run's rows and (under ``local``) TFDS's metadata. A write's error still fails the run with its own error, and
a side process that dies is a clear error, not a hang, with the failure recorded on the run's row.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sensorpipe.metadata.store import MetadataStore
from sensorpipe.runners.executors import RunnerError
from sensorpipe.runners.report_process import ReportProcess
from sensorpipe.runners.side_store import InProcessStore, SideStore

from .test_report_process import _ran_in_a_fresh_process
from .tiny_cohort import config, write_cohort, write_yaml

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the side process is forked (POSIX only)")

SRC = Path(__file__).resolve().parents[2] / "src"

# the driver's modules at its exit, checked by a hook run after the CLI's main() returns
_PROBE = """
import json, sys
from sensorpipe.cli import main
rc = main(["run", sys.argv[1]])
heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "tensorflow_datasets")})
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def _run_cli(tmp_path: Path, runner: str) -> tuple[dict, subprocess.CompletedProcess]:
    write_cohort(tmp_path / "data", ("p1", "p2"))
    cfg = config(tmp_path, tmp_path / "data", runner={"name": runner, "workers": 2, "start_method": "fork"})
    path = write_yaml(tmp_path / "p.yaml", cfg)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


@pytest.mark.parametrize("runner", ["local", "multiprocess"])
def test_the_driver_of_a_run_imports_neither_sqlalchemy_nor_tfds(tmp_path, runner):
    seen, _ = _run_cli(tmp_path, runner)
    assert seen["rc"] == 0 and seen["heavy"] == []
    # ... and the side process did the work: the version is published, recorded, and its metadata written
    out = tmp_path / "out"
    store = MetadataStore(f"sqlite:///{out / 'metadata.db'}")
    try:
        (run,) = store.list_runs()
        assert (run["status"], run["stage"]) == ("succeeded", "done")
        assert [v["semantic_version"] for v in store.list_versions()] == ["1.0.0"]
    finally:
        store.close()
    assert (out / "tiny" / "1.0.0" / "dataset_info.json").is_file() and (out / "metrics.prom").is_file()
    assert "sensorpipe_run_succeeded" in (out / "metrics.prom").read_text() or "succeeded" in (
        out / "metrics.prom").read_text()


def test_a_database_that_cannot_be_opened_fails_the_run_with_its_own_error(tmp_path, request):
    """The database cannot be opened (a folder where its file should be): the run fails with SQLAlchemy's
    error, raised by the first store call after the side process's open came back (in process it was raised
    at once), and nothing is published."""
    from sensorpipe.runners.driver import run_pipeline

    if _ran_in_a_fresh_process(request):
        return
    write_cohort(tmp_path / "data", ("p1",))
    (tmp_path / "db-is-a-folder").mkdir()
    cfg = config(tmp_path, tmp_path / "data", metadata={"url": f"sqlite:///{tmp_path / 'db-is-a-folder'}"})
    with pytest.raises(Exception, match="unable to open database file") as e:
        run_pipeline(write_yaml(tmp_path / "p.yaml", cfg))
    assert not isinstance(e.value, RunnerError)
    assert not (tmp_path / "out" / "tiny").exists() or not any((tmp_path / "out" / "tiny").iterdir())
    assert mp.active_children() == []


def _refuse(*args, **kwargs):
    raise sqlite3.OperationalError("attempt to write a readonly database")


def test_a_refused_write_fails_the_run_before_it_publishes_and_its_row_says_failed(tmp_path, monkeypatch,
                                                                                   request):
    """The 'publishing' row is refused: the write was not waited for, but the run syncs before the rename, so
    it fails with the database's error, publishes nothing, and records the failure."""
    from sensorpipe.runners.driver import run_pipeline

    if _ran_in_a_fresh_process(request):
        return
    write_cohort(tmp_path / "data", ("p1",))
    monkeypatch.setattr(MetadataStore, "record_run", _refuse)    # inherited by the forked side process
    with pytest.raises(sqlite3.OperationalError, match="readonly database"):
        run_pipeline(write_yaml(tmp_path / "p.yaml", config(tmp_path, tmp_path / "data")))
    assert not (tmp_path / "out" / "tiny").exists() or not any((tmp_path / "out" / "tiny").iterdir())
    (run,) = _store_rows(f"sqlite:///{tmp_path / 'out' / 'metadata.db'}")
    assert (run["status"], run["stage"]) == ("failed", "publish") and "readonly database" in run["error"]
    assert mp.active_children() == []


def _kill_side_process_at_pass2(*args):
    """``fit_normalization``, after killing the run's side process (the report process is the driver's child)."""
    from sensorpipe.runners import driver

    for child in mp.active_children():
        if child.name == "sensorpipe-report":
            os.kill(child.pid, signal.SIGKILL)
            child.join()
    return driver.fit_normalization(*args)


def test_a_killed_side_process_fails_the_run_clearly_and_its_row_says_so(tmp_path, monkeypatch, request):
    from sensorpipe.runners import driver

    if _ran_in_a_fresh_process(request):
        return
    write_cohort(tmp_path / "data", ("p1", "p2"))
    cfg = config(tmp_path, tmp_path / "data")

    real_make_runner = driver.make_runner

    def make_runner(*args, **kwargs):   # the local pool, killing the side process between the passes
        pool = real_make_runner(*args, **kwargs)
        pool.fit_normalization = _kill_side_process_at_pass2
        return pool

    monkeypatch.setattr(driver, "make_runner", make_runner)
    with pytest.raises(RunnerError, match=r"report process \(pid \d+\) died during"):
        driver.run_pipeline(write_yaml(tmp_path / "p.yaml", cfg))
    store = MetadataStore(f"sqlite:///{tmp_path / 'out' / 'metadata.db'}")
    try:
        (run,) = store.list_runs()
        assert run["status"] == "failed" and run["error"].startswith("RunnerError: the report process")
    finally:
        store.close()
    assert not (tmp_path / "out" / "tiny").exists() or not any((tmp_path / "out" / "tiny").iterdir())
    assert mp.active_children() == []


def _store_rows(url: str) -> list[dict]:
    store = MetadataStore(url)
    try:
        return store.list_runs()
    finally:
        store.close()


def test_writes_do_not_wait_and_their_error_is_raised_once_at_the_next_call(tmp_path):
    from sensorpipe.metadata.records import RunStart

    url = f"sqlite:///{tmp_path / 'm.db'}"
    with ReportProcess(warm=()) as side:
        store = SideStore(side, url)
        assert store.begin_run(RunStart("r1", "2026-01-01T00:00:00+00:00", "local", 1, "v", "{}", str(tmp_path),
                                        "tiny", "auto", os.getpid(), "h")) is None
        store.update_run("r1", stage="pass1")
        store.record_alerts("no-such-run", [object()])        # fails in the side process
        with pytest.raises(Exception):
            store.sync()
        store.sync()                                           # ... raised once
        assert [(r["run_id"], r["stage"]) for r in store.list_runs()] == [("r1", "pass1")]   # a read waits
        store.finish_run("r1", "failed", error="x", stage="pass1")
        store.close()
    assert [(r["run_id"], r["status"]) for r in _store_rows(url)] == [("r1", "failed")]


def test_after_the_side_process_died_the_store_is_opened_in_the_driver(tmp_path):
    from sensorpipe.metadata.records import RunStart

    url = f"sqlite:///{tmp_path / 'm.db'}"
    with ReportProcess(warm=()) as side:
        store = SideStore(side, url)
        store.begin_run(RunStart("r1", "t", "local", 1, "v", "{}", str(tmp_path), "tiny", "auto", os.getpid(), "h"))
        store.sync()
        os.kill(side.pid, signal.SIGKILL)
        with pytest.raises(RunnerError, match="died"):
            store.list_runs()
        store.finish_run("r1", "failed", error="the side process died", stage="pass1")   # here, at once
        store.close()
    assert [(r["run_id"], r["status"]) for r in _store_rows(url)] == [("r1", "failed")]


def test_the_in_process_store_has_the_same_interface(tmp_path):
    store = InProcessStore(f"sqlite:///{tmp_path / 'm.db'}")
    assert store.later(lambda s, n: len(s.list_runs()) + n, 2).result() == 2
    store.sync()
    store.check()
    store.close()
