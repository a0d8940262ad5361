"""Window quality figures (missing share, longest gap) against their per-cell definitions."""

from __future__ import annotations

import numpy as np

from sensorpipe.processing.impute import gap_lengths, window_quality


def test_longest_gap_and_missing_share_match_the_definitions():
    rng = np.random.default_rng(2)
    for trial in range(100):
        shape = (int(rng.integers(0, 5)), int(rng.integers(1, 120)), int(rng.integers(1, 4)))
        observed = rng.random(shape) < rng.choice([0.0, 0.2, 0.7, 1.0])
        missing, longest = window_quality(observed)
        assert missing.dtype == np.float32 and longest.dtype == np.int32
        np.testing.assert_array_equal(longest, gap_lengths(observed).max(axis=1, initial=0))
        np.testing.assert_array_equal(missing, (~observed).mean(axis=1).astype(np.float32))
    observed = np.ones((1, 10, 2), bool)
    observed[0, 2:5, 0] = False          # a 3-minute gap
    observed[0, 7:, 0] = False           # a 3-minute gap that ends the window (runs never cross windows)
    observed[0, :, 1] = False            # all missing
    missing, longest = window_quality(observed)
    assert longest.tolist() == [[3, 10]] and missing.tolist() == [[0.6000000238418579, 1.0]]
