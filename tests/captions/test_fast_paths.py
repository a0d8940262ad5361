"""The captions' batched text helpers state exactly what the one-at-a-time definitions state."""

from __future__ import annotations

import numpy as np

from sensorpipe.captions.base import clock, clocks, fmt
from sensorpipe.captions.statistical import StatisticalLevel, category_shares
from sensorpipe.core.windows import WindowBatch


def test_clocks_equal_clock_per_minute_including_the_exclusive_end():
    rng = np.random.default_rng(3)
    local_min = np.cumsum(rng.integers(1, 3, (4, 50)), axis=1) + rng.integers(-200, 3000, (4, 1))   # DAY wraps
    rows = rng.integers(0, 4, 300).tolist()
    minutes = rng.integers(0, 51, 300).tolist()                                                         # 50 = W
    assert clocks(local_min, rows, minutes) == [clock(local_min[i], k) for i, k in zip(rows, minutes)]
    assert clocks(local_min, [], []) == []
    assert clocks(np.array([[1439, 0]]), [0, 0, 0], [0, 1, 2]) == ["23:59", "00:00", "00:01"]


def test_fmt_equals_the_format_spec_it_caches():
    rng = np.random.default_rng(4)
    xs = (rng.standard_normal(200) * 10.0 ** rng.integers(-3, 7, 200)).tolist() + [0.0, -0.0, 1e21, 2.5, -2.5]
    for d in (0, 1, 2, 3, 6, 15, 17):
        assert [fmt(x, d) for x in xs] == [f"{x:,.{d}f}" for x in xs]
    assert fmt(1234.5, 0) == "1,234" and fmt(1234.55, 1) == "1,234.5"


def test_category_shares_of_every_window_at_once_equal_one_window_at_a_time():
    rng = np.random.default_rng(5)
    N, W, K = 30, 60, 5
    values = rng.integers(0, K, (N, W, 1)).astype(np.float32) + rng.uniform(-0.45, 0.45, (N, W, 1)).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan            # never observed cells
    observed = ~np.isnan(values) & (rng.random(values.shape) < rng.random((N, 1, 1)))
    observed[0] = False                                          # a window with no observed minute
    batch = WindowBatch(values=values, observed=observed, channels=("sleep_stage",),
                        local_min=np.zeros((N, W), np.int64))
    got = StatisticalLevel._shares(batch, 0, K)
    for i in range(N):
        want = category_shares(np.round(values[i, observed[i, :, 0], 0]).astype(np.int64), K)
        assert got[i] == [(int(k), int(want[k])) for k in np.argsort(-want, kind="stable")], i
    assert [v for _, v in got[0]] == [0] * K
    for i in range(N):
        assert StatisticalLevel._window_shares(batch, i, 0, K) == got[i]
    values[3, 0, 0], observed[3, 0, 0] = K, True               # a code past the categories: window by window
    assert StatisticalLevel._shares(batch, 0, K) is None
    want = category_shares(np.round(values[3, observed[3, :, 0], 0]).astype(np.int64), K)
    assert len(want) == K + 1
    assert StatisticalLevel._window_shares(batch, 3, 0, K) == [(int(k), int(want[k]))
                                                                for k in np.argsort(-want, kind="stable")]


def test_bouts_of_every_window_at_once_use_each_windows_own_criterion():
    from sensorpipe.captions.semantic import SemanticLevel
    from sensorpipe.config import CaptionConfig

    W, chans = 240, ("steps", "enmo")
    values = np.zeros((3, W, 2), np.float32)
    observed = np.zeros((3, W, 2), bool)
    observed[0, :, 0] = True
    values[0, 30:70, 0] = 100.0                 # window 0: steps observed, a 40-min bout of 100 steps/min
    values[0, 30:70, 1] = 500.0
    observed[1, :, 1] = True
    values[1, 100:130, 1] = 150.0               # window 1: no steps, ENMO decides (30 min at 150 mg)
    observed[2] = False                         # window 2: neither: no bout
    events = [[(40, 60, "activity", "running")], [], []]
    level = SemanticLevel(CaptionConfig())
    batch = WindowBatch(values=values, observed=observed, channels=chans, local_min=np.tile(np.arange(W), (3, 1)),
                        events=events)
    assert level._bouts(batch, 0) == [(30, 70, "running", 4000, "at least 60 steps/min")]
    assert level._bouts(batch, 1) == [(100, 130, None, None, "ENMO at least 100 mg")]
    assert level._bouts(batch, 2) == []
    for i in range(3):   # the same as the window on its own
        assert level._bouts(batch.window(i), 0) == level._bouts(batch, i)


def test_a_bad_code_in_a_window_that_states_no_shares_raises_nothing():
    from sensorpipe import channels as registry
    from sensorpipe.config import CaptionConfig

    W, K = 100, len(registry.get("sleep_stage").categories)
    values = np.full((2, W, 1), 1.0, np.float32)
    observed = np.zeros((2, W, 1), bool)
    observed[0] = True                          # window 0: every minute light sleep
    observed[1, :2] = True
    values[1, :2] = -3.0                        # window 1: 2 minutes (under min_coverage) with a bad code
    batch = WindowBatch(values=values, observed=observed, channels=("sleep_stage",),
                        local_min=np.zeros((2, W), np.int64))
    first, second = StatisticalLevel(CaptionConfig()).claims(batch)
    assert first[0].data["shares"] == {registry.get("sleep_stage").categories[1]: 100} and K > 1
    assert second[0].kind == "missing" and second[0].data["observed_min"] == [2]
