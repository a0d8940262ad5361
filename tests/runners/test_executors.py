"""The multiprocess runner starts its pool in the background and keeps result order whoever computed a unit."""

from __future__ import annotations

import operator
import os

import pytest

from sensorpipe.runners import executors
from sensorpipe.runners.executors import MultiprocessRunner


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_results_keep_input_order_across_driver_and_workers():
    items = [(i,) for i in range(300)]
    with MultiprocessRunner(2) as pool:
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
    runner = MultiprocessRunner(2)
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
