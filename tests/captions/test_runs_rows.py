"""Runs of every window at once are the runs of each window on its own."""

from __future__ import annotations

import numpy as np

from sensorpipe.captions.base import bridged_runs, bridged_runs_rows


def test_bridged_runs_rows_equal_the_per_row_runs_and_counts():
    rng = np.random.default_rng(3)
    for trial in range(200):
        N, W = int(rng.integers(0, 6)), int(rng.integers(1, 60))
        flags = rng.random((N, W)) < rng.random()
        gap, min_len = int(rng.integers(0, 5)), int(rng.integers(0, 8))
        spans, counts = bridged_runs_rows(flags, gap, min_len)
        expected = [bridged_runs(flags[i], gap, min_len) for i in range(N)]
        assert spans == expected, (trial, flags, gap, min_len)
        assert counts.tolist() == [int(flags[i, s:e].sum()) for i in range(N) for s, e in expected[i]]
    spans, counts = bridged_runs_rows(np.zeros((2, 5), bool), 1, 1)
    assert spans == [[], []] and counts.size == 0
    # a bridge never joins the end of one row with the start of the next
    spans, counts = bridged_runs_rows(np.array([[0, 0, 1, 1], [1, 1, 0, 0]], bool), 3, 1)
    assert spans == [[(2, 4)], [(0, 2)]] and counts.tolist() == [2, 2]
