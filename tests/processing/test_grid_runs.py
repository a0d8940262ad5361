"""The minute grid built from per-channel runs is bit-identical to the general (interleaved rows) path."""

from __future__ import annotations

import numpy as np

from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.observations import Observations
from sensorpipe.processing.grid import build_grid
from sensorpipe.schema.validate import CHANNEL_INDEX

CHANNELS = ("heart_rate", "steps", "sleep_stage", "resting_heart_rate")


def _obs(order: np.ndarray, ch: np.ndarray, t: np.ndarray, v: np.ndarray) -> Observations:
    n = order.size
    return Observations(ch[order], t[order], v[order], np.zeros(n, np.int32), np.arange(n, dtype=np.int64),
                        ["f"], np.arange(n, dtype=np.int64))


def test_runs_and_interleaved_rows_give_the_same_grid():
    rng = np.random.default_rng(0)
    t0 = 1_709_528_400 * 10**9
    parts = []
    for name, per_min, lo, hi in (("heart_rate", 12, 50, 150), ("steps", 1, 0, 120), ("sleep_stage", 2, 0, 4),
                                  ("resting_heart_rate", 0.01, 50, 70)):
        n = int(3 * 1440 * per_min)
        t = t0 + np.sort(rng.integers(0, 3 * 1440 * MINUTE_NS, n))
        v = rng.integers(lo, hi, n).astype(np.float64) + (0 if name == "sleep_stage" else rng.random(n))
        parts.append((np.full(n, CHANNEL_INDEX[name], np.int16), t, v))
    ch, t, v = (np.concatenate([p[i] for p in parts]) for i in range(3))
    runs = _obs(np.arange(ch.size), ch, t, v)                 # one run per channel
    mixed = _obs(np.argsort(t, kind="stable"), ch, t, v)     # channels interleaved; each keeps its row order
    a, b = build_grid(runs, CHANNELS, "Europe/Berlin"), build_grid(mixed, CHANNELS, "Europe/Berlin")
    assert a.values.tobytes() == b.values.tobytes() and np.array_equal(a.observed, b.observed)
    assert (a.start_minute, a.first_data_minute, a.last_data_minute) == (b.start_minute, b.first_data_minute,
                                                                        b.last_data_minute)
    assert np.array_equal(a.tz_offset_min, b.tz_offset_min)
    # a direct check of one cell: heart rate minute mean
    m = (t - a.start_minute * MINUTE_NS) // MINUTE_NS
    hr = ch == CHANNEL_INDEX["heart_rate"]
    cell = int(m[hr][100])
    np.testing.assert_allclose(a.values[cell, 0], v[hr & (m == cell)].mean(), rtol=1e-6)


def test_runs_of_channels_not_in_the_output_are_skipped():
    t = 1_709_528_400 * 10**9 + np.arange(10) * MINUTE_NS
    ch = np.r_[np.full(5, CHANNEL_INDEX["glucose"]), np.full(5, CHANNEL_INDEX["steps"])].astype(np.int16)
    g = build_grid(_obs(np.arange(10), ch, t, np.arange(10.0)), ("steps",), "UTC")
    assert g.observed.sum() == 5 and g.values[g.observed[:, 0], 0].tolist() == [5, 6, 7, 8, 9]
    assert build_grid(_obs(np.arange(5), ch, t, np.arange(10.0)), ("steps",), "UTC") is None
    assert build_grid(Observations.empty(), ("steps",), "UTC") is None


def test_one_row_per_minute_runs_give_the_bincount_grid_bit_for_bit(monkeypatch):
    """Minute exports (one row per minute and channel) skip the bincounts; the values, -0.0 included, and the
    observed cells are those of the general path, for a mean and a sum channel with gaps."""
    import sensorpipe.processing.grid as grid_module

    rng = np.random.default_rng(3)
    t0 = 1_709_528_400 * 10**9 + 17 * MINUTE_NS
    parts = []
    for name in ("heart_rate", "steps"):
        minutes = np.sort(rng.choice(2 * 1440, 1500, replace=False))
        v = rng.integers(0, 3, minutes.size) * rng.random(minutes.size)
        v[rng.random(minutes.size) < 0.2] = -0.0
        parts.append((np.full(minutes.size, CHANNEL_INDEX[name], np.int16), t0 + minutes * MINUTE_NS + 5, v))
    ch, t, v = (np.concatenate([p[i] for p in parts]) for i in range(3))
    calls = []
    real_bincount = np.bincount
    monkeypatch.setattr(grid_module.np, "bincount", lambda *a, **k: calls.append(1) or real_bincount(*a, **k))
    runs = build_grid(_obs(np.arange(ch.size), ch, t, v), ("heart_rate", "steps"), "UTC")
    assert calls == []                                        # the runs took the one-row-per-minute path
    mixed = build_grid(_obs(np.argsort(t, kind="stable"), ch, t, v), ("heart_rate", "steps"), "UTC")
    assert runs.values.tobytes() == mixed.values.tobytes() and np.array_equal(runs.observed, mixed.observed)
    assert not np.signbit(runs.values[runs.observed]).any()   # -0.0 stored as 0.0, as 0.0 + v does


def test_one_row_per_minute_runs_of_last_max_and_mode_channels_give_the_reduced_grid(monkeypatch):
    """A 5-minute CGM (``last``), a per-minute activity intensity (``max``) and sleep stages (``mode``) with one
    row per minute skip ``_reduce``: each minute holds the value itself, -0.0 kept where ``last`` and ``max``
    keep it and turned into 0.0 where a mode's integer code does, bit for bit the general path's grid. A run
    with a negative stage code still goes to ``_reduce``."""
    import sensorpipe.processing.grid as grid_module

    rng = np.random.default_rng(5)
    t0 = 1_709_528_400 * 10**9 + 3 * MINUTE_NS
    names = ("glucose", "activity_intensity", "sleep_stage")
    parts = []
    for name, step in zip(names, (5, 1, 1)):
        minutes = np.sort(rng.choice(np.arange(0, 2 * 1440, step), 400, replace=False))
        v = rng.integers(0, 4, minutes.size).astype(np.float64) + (0.0 if name == "sleep_stage" else rng.random(minutes.size))
        v[rng.random(minutes.size) < 0.1] = -0.0
        parts.append((np.full(minutes.size, CHANNEL_INDEX[name], np.int16), t0 + minutes * MINUTE_NS + 7, v))
    ch, t, v = (np.concatenate([p[i] for p in parts]) for i in range(3))
    calls = []
    real_reduce = grid_module._reduce
    monkeypatch.setattr(grid_module, "_reduce", lambda *a: calls.append(a[0]) or real_reduce(*a))
    runs = build_grid(_obs(np.arange(ch.size), ch, t, v), names, "UTC")
    assert calls == []                                        # every run took the one-row-per-minute path
    mixed = build_grid(_obs(np.argsort(t, kind="stable"), ch, t, v), names, "UTC")
    assert sorted(calls) == sorted(["last", "max", "mode"])  # the interleaved rows reduce every channel
    assert runs.values.tobytes() == mixed.values.tobytes() and np.array_equal(runs.observed, mixed.observed)
    stages = runs.values[runs.observed[:, 2], 2]
    assert stages.size and not np.signbit(stages).any()      # a mode's code: -0.0 stored as 0.0
    assert np.signbit(runs.values[runs.observed[:, 0], 0]).any()   # glucose's -0.0 kept, as _reduce keeps it

    calls.clear()
    sleep = ch == CHANNEL_INDEX["sleep_stage"]
    v_neg = np.where(sleep & (np.cumsum(sleep) == 1), -1.0, v)   # one negative code: the general path decides
    build_grid(_obs(np.arange(ch.size), ch, t, v_neg), names, "UTC")
    assert calls == ["mode"]
