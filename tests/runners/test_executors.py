"""The multiprocess runner: how its workers start, and result order whoever computed a unit."""

from __future__ import annotations

import operator
import os
import sys
import threading

import pytest

from sensorpipe.runners import executors
from sensorpipe.runners.executors import MultiprocessRunner, resolve_start_method


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_results_keep_input_order_across_driver_and_workers():
    items = [(i,) for i in range(300)]
    with MultiprocessRunner(2, "forkserver") as pool:
        out = pool.map(_pid_and_square, items, "test")  # the pool is still starting: this process works
        assert [sq for _, sq in out] == [i * i for i in range(300)]
        assert os.getpid() in {pid for pid, _ in out}
        # once the pool is up, every unit goes to the workers (none to this process)
        pool._ready.wait()
        later = pool.map(_pid_and_square, items[:20], "test")
    assert {pid for pid, _ in later} and os.getpid() not in {pid for pid, _ in later}
    assert [sq for _, sq in later] == [i * i for i in range(20)]


def test_a_pool_that_cannot_start_is_reported(monkeypatch):
    def broken(method):
        raise OSError("no forkserver here")

    monkeypatch.setattr(executors.mp, "get_context", broken)
    runner = MultiprocessRunner(2, "forkserver")
    runner._ready.wait()
    with pytest.raises(RuntimeError, match="could not start the multiprocess runner's worker pool: no forkserver"):
        runner.map(operator.mul, [(1, 2)] * 3, "test")
    runner.close()


def _fail(msg: str) -> None:
    raise ValueError(msg)


def test_submit_returns_or_raises_in_the_callers_order():
    from sensorpipe.runners.executors import LocalRunner

    local = LocalRunner()
    assert local.submit(operator.mul, (6, 7)).result() == 42
    pending = local.submit(_fail, ("shard writer broke",))  # the error waits for result(), like a future's
    with pytest.raises(ValueError, match="shard writer broke"):
        pending.result()
    with MultiprocessRunner(2) as pool:
        pid, square = pool.submit(_pid_and_square, (9,)).result()
        assert square == 81 and pid != os.getpid()
        with pytest.raises(ValueError, match="report broke"):
            pool.submit(_fail, ("report broke",)).result()


_FRESH_DRIVER = """
import io, os, sys, threading
from sensorpipe.runners.executors import MultiprocessRunner, resolve_start_method, tqdm
from tests.runners.test_executors import _pid_and_square

assert resolve_start_method("auto") == "fork"
with tqdm(total=3, disable=False, file=io.StringIO()) as bar:   # a drawn bar (on a terminal) starts no thread
    bar.update(3)
assert threading.active_count() == 1, threading.enumerate()
for run in range(2):   # a second run in the same process forks too: the first left no thread behind
    with MultiprocessRunner(2) as pool:
        assert pool.start_method == "fork" and pool.forks == 0   # forked at the first map, with its imports
        out = pool.map(_pid_and_square, [(i,) for i in range(40)], "test")
        assert pool.forks == 1
        import xml.dom.minidom   # the driver imports between passes: without ``warm`` the workers stay
        again = pool.map(_pid_and_square, [(i,) for i in range(40)], "test")
        assert pool.forks == 1, pool.forks
    assert [sq for _, sq in out] == [sq for _, sq in again] == [i * i for i in range(40)]
    assert os.getpid() not in {pid for pid, _ in out + again}        # every unit ran in a worker
del sys.modules["xml.dom.minidom"]

# ``warm`` (the caption levels' slow imports; everything under tuning fast): what a later pass needs is imported
# here during the first pass; the next pass runs in fresh forks that have it. Jobs before the first pass (the
# plan stage's) start the workers, and the first pass keeps them even though this process imported more since.
def has(name): return os.getpid(), name in sys.modules
with MultiprocessRunner(2, warm=("xml.dom.minidom", "no_such_module_here")) as pool:
    planned = {pool.submit(os.getpid, ()).result() for _ in range(8)}
    import json.tool   # noqa: F401  (this process imports between the plan stage and pass 1)
    first = pool.map(has, [("xml.dom.minidom",)] * 4, "test")
    assert pool.forks == 1 and {p for p, _ in first} <= set(pool._pool._processes) >= planned, (planned, first)
    second = pool.map(has, [("xml.dom.minidom",)] * 4, "test")
    workers_of_second = set(pool._pool._processes)   # the pool's workers (one may have run the whole pass)
    third = pool.map(has, [("xml.dom.minidom",)] * 4, "test")   # nothing new imported: the same workers
    workers_of_third = set(pool._pool._processes)
assert not any(h for _, h in first) and all(h for _, h in second), (first, second)
assert not {p for p, _ in first} & {p for p, _ in second}, (first, second)
assert workers_of_third == workers_of_second, (workers_of_second, workers_of_third)
assert {p for p, _ in second} | {p for p, _ in third} <= workers_of_second, (second, third)
assert pool.forks == 2 and "xml.dom.minidom" in sys.modules, pool.forks   # a failed warm import is left to its stage
del sys.modules["xml.dom.minidom"]

# preload (tuning none): the driver imports what the next pass needs once, and that pass runs in fresh forks that
# have it; a module already imported forks nothing
with MultiprocessRunner(2) as pool:
    first = pool.map(has, [("xml.dom.minidom",)] * 4, "test")
    pool.preload(("xml.dom.minidom", "no_such_module_here"))
    second = pool.map(has, [("xml.dom.minidom",)] * 4, "test")
    pool.preload(("xml.dom.minidom",))
    third = pool.map(has, [("xml.dom.minidom",)] * 4, "test")
assert not any(h for _, h in first) and all(h for _, h in second + third), (first, second, third)
assert not {p for p, _ in first} & {p for p, _ in second}, (first, second)
assert pool.forks == 2, pool.forks   # a failed preload import is left to its stage, like a warm one
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="auto forks on Linux only")
def test_auto_forks_from_a_single_threaded_driver_and_the_workers_are_ready_at_once():
    import subprocess
    from pathlib import Path

    # a fresh interpreter: this test process may hold other tests' threads or TensorFlow
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _FRESH_DRIVER], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_auto_uses_the_forkserver_when_forking_is_unsafe(monkeypatch):
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)       # a second Python thread (a notebook kernel has several)
    other.start()
    try:
        assert resolve_start_method("auto") == "forkserver"
    finally:
        stop.set()
        other.join()
    monkeypatch.setitem(sys.modules, "tensorflow", object())   # TensorFlow's runtime does not survive a fork
    assert resolve_start_method("auto") == "forkserver"
    monkeypatch.setattr(executors.sys, "platform", "darwin")
    monkeypatch.delitem(sys.modules, "tensorflow")
    assert resolve_start_method("auto") == "forkserver"
    assert resolve_start_method("spawn") == "spawn"                # an explicit choice is kept


def test_the_start_method_is_a_checked_config_key():
    from sensorpipe.config import ConfigError, RunnerConfig, coerce

    assert coerce(RunnerConfig, {"name": "multiprocess", "start_method": "forkserver"}, "runner").start_method \
        == "forkserver"
    with pytest.raises(ConfigError, match="runner.start_method.*'auto', 'fork', 'forkserver', 'spawn'"):
        coerce(RunnerConfig, {"name": "multiprocess", "start_method": "thread"}, "runner")


def test_tuning_is_a_checked_config_key_and_fast_warms_up_everything():
    from sensorpipe.config import ConfigError, RunnerConfig, coerce

    assert coerce(RunnerConfig, {"name": "multiprocess"}, "runner").tuning == "none"
    assert coerce(RunnerConfig, {"tuning": "fast"}, "runner").tuning == "fast"
    with pytest.raises(ConfigError, match="runner.tuning.*'none', 'fast'"):
        coerce(RunnerConfig, {"tuning": "turbo"}, "runner")
    plain = executors.make_runner("multiprocess", 2, "forkserver")
    ahead = executors.make_runner("multiprocess", 2, "forkserver", ahead=("xml.dom.minidom",))
    fast = executors.make_runner("multiprocess", 2, "forkserver", "fast", ahead=("xml.dom.minidom",))
    try:
        assert (plain.warm, plain.retain_memory) == ((), True)      # heap retention always (BENCHMARKS.md)
        assert ahead.warm == ("xml.dom.minidom",)                    # the caption levels' slow imports, by default
        assert (fast.warm, fast.retain_memory) == (executors.WARM_MODULES, True)   # which include them
    finally:
        plain.close()
        ahead.close()
        fast.close()
    assert type(executors.make_runner("local", 2, "auto", "fast")) is executors.LocalRunner


_KILLED_WORKER = """
import os, signal, sys
from sensorpipe.runners.executors import MultiprocessRunner
from tests.runners.test_executors import _die_in_a_worker

with MultiprocessRunner(2, sys.argv[1]) as pool:
    try:
        pool.map(_die_in_a_worker, [(i, os.getpid()) for i in range(int(sys.argv[2]))], "pass 1: prepare")
    except RuntimeError as e:
        print(e)
"""


def _die_in_a_worker(i: int, driver_pid: int) -> int:
    import signal
    import time

    if i >= 5 and os.getpid() != driver_pid:
        os.kill(os.getpid(), signal.SIGKILL)       # what the kernel's out-of-memory killer does
    time.sleep(0.05)
    return i


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_a_worker_killed_mid_pass_is_an_error_not_a_hang(start):
    import subprocess
    from pathlib import Path

    if start not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {start} here")
    root = Path(__file__).resolve().parents[2]
    items = 12 if start == "fork" else 80      # the forkserver's workers come up after ~1 s of items here
    done = subprocess.run([sys.executable, "-c", _KILLED_WORKER, start, str(items)], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "a worker process died during 'pass 1: prepare'" in done.stdout and "runner: local" in done.stdout


def test_the_cli_reports_a_runner_that_cannot_start_as_a_message(monkeypatch, sources_dir, base_config, tmp_path,
                                                                  capsys):
    from sensorpipe.cli import main
    from tests.conftest import write_config

    def broken(method):
        raise OSError("no processes here")

    monkeypatch.setattr(executors.mp, "get_context", broken)
    cfg = dict(base_config, output=dict(base_config["output"], dir=str(tmp_path / "out")),
               runner={"name": "multiprocess", "workers": 2, "start_method": "fork"})
    assert main(["run", str(write_config(sources_dir, cfg, "broken-runner.yaml"))]) == 2
    err = capsys.readouterr().err
    assert "sensorpipe run: error: could not start the multiprocess runner's worker pool: no processes here" in err
    assert "Traceback" not in err


def test_the_caption_levels_name_their_slow_imports_for_the_runner_to_preload():
    from sensorpipe.captions.generator import level_imports
    from sensorpipe.config import CaptionConfig
    from sensorpipe.runners.executors import LocalRunner

    assert level_imports(CaptionConfig()) == ("sensorpipe.captions._scipy_signal",)   # structural: find_peaks
    assert level_imports(CaptionConfig(levels=("statistical", "semantic"))) == ()
    LocalRunner().preload(("no_such_module_here",))                   # in process: left to the stage's first use
    assert "no_such_module_here" not in sys.modules


def test_the_driver_has_the_runner_warm_up_the_caption_levels_slow_imports(monkeypatch, sources_dir, base_config,
                                                                            tmp_path):
    """pass 2's ``scipy.signal`` is imported during pass 1 (the runner's ``ahead``), not between the passes
    while the workers wait."""
    from sensorpipe.captions.generator import level_imports
    from sensorpipe.config import CaptionConfig
    from sensorpipe.runners import driver
    from tests.conftest import write_config

    asked = []

    def spy(*args, **kwargs):
        asked.append(kwargs.get("ahead"))
        return executors.LocalRunner()

    monkeypatch.setattr(driver, "make_runner", spy)
    cfg = dict(base_config, output=dict(base_config["output"], dir=str(tmp_path / "out")),
               runner={"name": "multiprocess", "workers": 2})
    driver.run_pipeline(str(write_config(sources_dir, cfg, "ahead.yaml")))
    assert asked == [level_imports(CaptionConfig())] == [("sensorpipe.captions._scipy_signal",)]
