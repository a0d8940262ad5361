"""Counting True cells of masks along the minute axis, fast.

A bool reduction across the interleaved channels of ``[..., T, C]`` walks the
array with strides; a float32 product with a vector of ones is one BLAS call
and faster. It is exact while every partial sum is an integer below
2**24, so longer axes are counted the plain way.
"""

from __future__ import annotations

import numpy as np

_EXACT_FLOAT32 = 1 << 24


def count_true(mask: np.ndarray) -> np.ndarray:
    """True cells of ``mask [..., T, C]`` summed over ``T``: int64 ``[..., C]``."""
    if mask.shape[-2] >= _EXACT_FLOAT32:
        return np.count_nonzero(mask, axis=-2).astype(np.int64)
    return (np.ones(mask.shape[-2], np.float32) @ mask.astype(np.float32)).astype(np.int64)


def any_true(mask: np.ndarray) -> np.ndarray:
    """bool ``[T]``: rows of ``mask [T, C]`` with any True cell.

    ``mask.any(axis=1)`` reduces C (a few channels) at a time; counting with a
    float32 product (exact for any C below 2**24) is faster.
    """
    C = mask.shape[1]
    if C >= _EXACT_FLOAT32 or not mask.size:
        return mask.any(axis=1)
    return (mask.astype(np.float32) @ np.ones(C, np.float32)) > 0
