"""count_true: the BLAS count equals a plain count, for 2-D and batched masks."""

import numpy as np

from sensorpipe.processing.counts import count_true


def test_count_true_equals_count_nonzero():
    rng = np.random.default_rng(3)
    for shape in [(1440, 9), (7, 1440, 9), (0, 5), (3, 0, 4), (20_000, 2)]:
        mask = rng.random(shape) < 0.37
        got = count_true(mask)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.count_nonzero(mask, axis=-2))
    strided = (rng.random((1440, 18)) < 0.5)[:, ::2]   # a non-contiguous view
    np.testing.assert_array_equal(count_true(strided), np.count_nonzero(strided, axis=0))


def test_any_true_is_any_along_the_channels():
    from sensorpipe.processing.counts import any_true

    rng = np.random.default_rng(6)
    for shape in ((0, 4), (5, 0), (300, 1), (300, 9), (1000, 33)):
        for p in (0.0, 0.05, 0.5):
            mask = rng.random(shape) < p
            got = any_true(mask)
            assert got.dtype == bool and np.array_equal(got, mask.any(axis=1)), (shape, p)
    strided = (rng.random((50, 12)) < 0.1)[:, [1, 5, 7]]       # a column subset, as non-wear passes it
    assert np.array_equal(any_true(strided), strided.any(axis=1))
