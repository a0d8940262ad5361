"""Peaks of every channel in one find_peaks call are each channel's own peaks."""

from __future__ import annotations

import numpy as np

from sensorpipe.captions.segments import batched_extrema, batched_extrema_channels


def test_extrema_of_all_channels_at_once_equal_one_call_per_channel():
    rng = np.random.default_rng(5)
    for trial in range(300):
        J, N, L = (int(v) for v in (rng.integers(1, 5), rng.integers(1, 6), rng.integers(1, 40)))
        x = np.round(rng.random((J, N, L)) * rng.integers(1, 5), 1)   # rounded: ties and plateaus
        x[rng.random(x.shape) < rng.random()] = np.nan
        if rng.random() < 0.2:
            x[0] = np.nan                                              # a channel without data
        prominence = rng.random(J) * 2
        got = batched_extrema_channels(x, prominence)
        assert len(got) == J
        for j in range(J):
            want = batched_extrema(x[j], float(prominence[j]))
            assert all(np.array_equal(a, b) for a, b in zip(got[j], want)), (trial, j)
    rows, idx, prom = batched_extrema_channels(np.array([[[1.0, 5.0, 1.0]], [[0.0, 2.0, 0.0]]]), np.array([3.0, 3.0]))[0]
    assert rows.tolist() == [0] and idx.tolist() == [1] and prom.tolist() == [4.0]
    assert batched_extrema_channels(np.array([[[1.0, 5.0, 1.0]], [[0.0, 2.0, 0.0]]]), np.array([3.0, 3.0]))[1][0].size == 0
