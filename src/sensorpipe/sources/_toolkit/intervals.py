"""Readings that stand for an interval longer than a minute: spread a total, repeat a rate.

A 15-minute step total placed in its first minute would read as 15 times the
walking rate in that minute and nothing in the next 14. So a reading of a
channel whose minute aggregation is ``sum`` (steps, calories, distance,
floors, activity counts) is divided evenly over the interval's minutes, and
any other (heart rate, light) is repeated on each of them. Every minute row
keeps the reading's row number; a reading whose value is not a number or
whose time failed stays one row with its original value, so validation
quarantines it once, as written.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe.core import timeparse

NS_PER_MIN = 60 * 10**9


def numbers(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values as float64, NaN where a value is not a number (text that does not parse, null, bool)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    out = np.full(len(arr), np.nan)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        text = pc.utf8_trim_whitespace(arr)
        ok = pc.fill_null(pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"), False)
        mask = ok.to_numpy(zero_copy_only=False)
        if mask.any():
            out[mask] = pc.cast(text.filter(ok), pa.float64()).to_numpy(zero_copy_only=False)
    return out


def spread_table(part: pa.Table, interval_min: int, is_total: np.ndarray) -> pa.Table:
    """A native table part (``t_utc_ns`` and ``value`` columns) with each reading expanded to ``interval_min``
    minute rows; ``is_total`` (per row) says which readings are totals to divide rather than rates to repeat."""
    if interval_min <= 1 or part.num_rows == 0:
        return part
    t_ns = part.column("t_utc_ns").to_numpy(zero_copy_only=False)
    value = part.column("value")
    num = numbers(value)
    ok = ~np.isnan(num) & (t_ns != timeparse.NAT)
    reps = np.where(ok, interval_min, 1)
    idx = np.repeat(np.arange(part.num_rows), reps)
    starts = np.cumsum(reps) - reps
    offset_min = np.arange(idx.size) - starts[idx]
    t_out = t_ns[idx] + np.where(ok[idx], offset_min * NS_PER_MIN, 0)
    share = np.where(is_total, num / interval_min, num)
    if ok.all():
        new_value = pa.array(share[idx], pa.float64())
    else:  # text for all, so a failed reading shows as written; repr keeps each share exact
        text = pc.cast(value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value, pa.string()) \
            if not pa.types.is_dictionary(value.type) else pc.cast(value.combine_chunks().dictionary_decode(),
                                                                   pa.string())
        original = text.to_pylist()
        new_value = pa.array([repr(float(share[i])) if ok[i] else original[i] for i in idx], pa.string())
    out = part.take(pa.array(idx))
    out = out.set_column(out.schema.get_field_index("t_utc_ns"), "t_utc_ns", pa.array(t_out, pa.int64()))
    return out.set_column(out.schema.get_field_index("value"), "value", new_value)
