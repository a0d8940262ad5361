"""The one window container: what windowing, label processors and caption levels read from it."""

from __future__ import annotations

import numpy as np

from sensorpipe.core.windows import WindowBatch
from sensorpipe.processing.window import time_features


def _batch() -> WindowBatch:
    W = 90
    values = np.arange(2 * W * 2, dtype=np.float32).reshape(2, W, 2)
    observed = np.zeros((2, W, 2), bool)
    observed[1, 10:20, 1] = True
    start = np.array([1000 * 1440 - 30, 1000 * 1440 + 600], np.int64)   # the first window crosses midnight UTC
    offsets = np.full((2, W), 120, np.int16)
    offsets[1, 45:] = 60                                                  # a DST change inside window 1
    return WindowBatch(values=values, observed=observed, channels=("heart_rate", "steps"), start_utc_min=start,
                       tz_offset_min=offsets, grid_start_minute=999 * 1440,
                       events=[[], [(10, 20, "activity", "walking")]])


def test_local_clock_is_derived_from_utc_start_and_offsets_as_the_records_time_features_are():
    batch = _batch()
    times = time_features(0, batch.start_utc_min, batch.tz_offset_min).astype(np.int64)
    assert np.array_equal(batch.local_min, times[:, :, 1] * 60 + times[:, :, 0])
    assert batch.local_min[0, :3].tolist() == [90, 91, 92]                # 23:30 UTC + 2 h = 01:30 local
    assert batch.local_min[1, 44:47].tolist() == [764, 705, 706]          # the clock goes back an hour


def test_grid_rows_days_channels_and_one_window_alone():
    batch = _batch()
    assert len(batch) == 2 and batch.size_min == 90
    assert batch.start_row.tolist() == [1440 - 30, 1440 + 600]
    assert batch.local_day().tolist() == [1000, 1000]                     # 01:30 local is the next local day
    vals, obs = batch.channel("steps")
    assert vals.shape == (2, 90) and int(obs.sum()) == 10 and batch.channel("glucose") is None
    assert batch.index("steps") == 1 and batch.index("glucose") is None
    one = batch.window(1)
    assert len(one) == 1 and one.events == [[(10, 20, "activity", "walking")]]
    assert np.array_equal(one.local_min[0], batch.local_min[1]) and one.start_row.tolist() == [1440 + 600]
    cm_values, cm_observed = one.channel_major()
    assert cm_values.shape == (1, 2, 90) and cm_values.flags.c_contiguous
    assert one.any_observed()[0].nonzero()[0].tolist() == list(range(10, 20))


def test_an_empty_batch_keeps_its_shapes_and_defaults():
    empty = WindowBatch.empty(1440, ("heart_rate", "steps", "glucose"))
    assert len(empty) == 0 and empty.size_min == 1440 and empty.values.shape == (0, 1440, 3)
    assert empty.start_utc_min.shape == (0,) and empty.tz_offset_min.shape == (0, 1440)
    assert empty.local_day().shape == (0,) and empty.events == [] and empty.dropped == {}
    plain = WindowBatch(values=np.zeros((3, 5, 1), np.float32), observed=np.ones((3, 5, 1), bool), channels=("x",))
    assert plain.events == [[], [], []] and plain.local_min[0].tolist() == [0, 1, 2, 3, 4]
