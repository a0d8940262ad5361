"""Typed timestamp columns to UTC nanoseconds (core/timeparse.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sensorpipe.core.timeparse import NAT, UNPARSEABLE, parse_timestamp


def _us(*times: str) -> np.ndarray:
    return np.array(times, "datetime64[us]").astype(np.int64)


def test_a_column_without_nulls_is_read_as_it_is_and_a_far_time_is_still_unparseable():
    us = _us("2024-03-01T00:00", "2024-03-01T00:01:30")
    out, err = parse_timestamp(pa.array(us, pa.int64()).cast(pa.timestamp("us", "UTC")))
    assert out.tolist() == (us * 1000).tolist() and err is None
    far = _us("2024-03-01T00:00", "2300-01-01T00:00")          # past what nanoseconds hold, no null
    out, err = parse_timestamp(pa.array(far, pa.int64()).cast(pa.timestamp("us")))
    assert out.tolist() == [far[0] * 1000, NAT] and err.tolist() == [None, UNPARSEABLE]
    with_null = pa.array(far, pa.int64(), mask=np.array([True, False])).cast(pa.timestamp("us"))
    out, err = parse_timestamp(with_null)
    assert out.tolist() == [NAT, NAT] and err.tolist() == [UNPARSEABLE, UNPARSEABLE]
    out, err = parse_timestamp(pa.array([], pa.timestamp("ns", "UTC")))
    assert out.size == 0 and err is None
