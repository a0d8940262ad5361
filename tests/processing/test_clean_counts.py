"""Built-in cleaning rules run without the per-rule audit copy, so check here that they count every change."""

from __future__ import annotations

import numpy as np

from sensorpipe.config import CleaningConfig, build_dataclass
from sensorpipe.core.grid import MinuteGrid
from sensorpipe.processing.clean import clean_grid

RULES = ["sentinel", "range", "flatline", "spike", "nonwear"]


def _grid(seed: int) -> MinuteGrid:
    rng = np.random.default_rng(seed)
    T = 3 * 1440
    hr = rng.normal(70, 4, T).round()
    hr[rng.random(T) < 0.01] = 255.0                      # sentinels
    hr[rng.integers(0, T, 20)] += 60                       # spikes
    hr[1000:1060] = 64.0                                   # a flatline hour
    hr[rng.random(T) < 0.1] = np.nan                       # dropped minutes
    hr[2000:2200] = np.nan                                 # off-wrist: no pulse ...
    temp = rng.normal(33, 0.3, T)
    temp[2000:2200] = 22.0 + rng.normal(0, 0.2, 200)       # ... and cold skin
    spo2 = rng.normal(96, 1, T)
    spo2[rng.random(T) < 0.005] = 127.0
    on_wrist = np.full(T, np.nan)
    values = np.stack([hr, spo2, temp, on_wrist], axis=1).astype(np.float32)
    return MinuteGrid(28_000_000, values, np.isfinite(values), np.zeros(T, np.int16),
                      ("heart_rate", "spo2", "skin_temperature", "on_wrist"), 0, T - 1)


def test_built_in_rules_count_every_cell_they_change():
    for seed in range(3):
        grid = _grid(seed)
        values, observed = grid.values.copy(), grid.observed.copy()
        counts = clean_grid(grid, build_dataclass(CleaningConfig, {"rules": RULES}, "cleaning"))
        changed = (observed != grid.observed) | (observed & grid.observed & (values != grid.values))
        assert int(changed.sum()) == sum(counts.values()) > 0
        reasons = {k.split(":")[1] for k in counts}
        assert {"sentinel", "flatline", "spike", "non_wear", "worn"} <= reasons


def _hampel_direct(values, observed, window, k, min_dev):
    from sensorpipe.processing.clean import MAD_TO_SD

    x = np.where(observed, values, np.nan).astype(np.float64)
    xp = np.pad(x, window // 2, constant_values=np.nan)
    out = np.zeros(x.size, bool)
    for i in np.flatnonzero(observed):  # one window at a time: the definition
        w = xp[i:i + window]
        w = w[~np.isnan(w)]
        if w.size >= window // 2 + 1:
            med = np.median(w)
            out[i] = abs(x[i] - med) > max(k * MAD_TO_SD * np.median(np.abs(w - med)), min_dev)
    return out


def test_hampel_matches_the_per_window_definition():
    from sensorpipe.processing.clean_rules import hampel_rows

    rng = np.random.default_rng(11)
    for trial in range(40):
        T = int(rng.integers(1, 400))
        window = int(rng.choice([3, 5, 7, 21]))  # 21: the row-sort path
        v = (rng.normal(70, 3, T) + (rng.random(T) < 0.05) * 40).astype(np.float32)
        if trial % 2:
            v = np.round(v)
        obs = rng.random(T) < rng.choice([0.3, 0.8, 1.0])
        k, md = float(rng.choice([2.0, 4.0])), float(rng.choice([0.0, 5.0]))
        assert np.array_equal(hampel_rows(v, obs, window, k, md), _hampel_direct(v, obs, window, k, md)), trial


def test_hampel_dense_and_sparse_columns_both_match_the_definition():
    """A minute-resolution column (shifted views over every cell) and a sparse one (gathers at the cells
    that can flag), with spikes, ties, a long gap and windows of 3 to 15 minutes."""
    from sensorpipe.processing.clean_rules import hampel_rows

    rng = np.random.default_rng(4)
    T = 3000
    v = np.round(rng.normal(70, 4, T) + (rng.random(T) < 0.03) * rng.choice([-45, 45], T)).astype(np.float32)
    dense = rng.random(T) < 0.97
    dense[1000:1100] = False
    sparse = rng.random(T) < 0.55
    flagged = 0
    for obs in (dense, sparse):
        for window in (3, 5, 9, 15):
            got = hampel_rows(v, obs, window, 3.0, 5.0)
            assert np.array_equal(got, _hampel_direct(v, obs, window, 3.0, 5.0)), (obs.mean(), window)
            flagged += int(got.sum())
    assert flagged > 100


def test_hampel_orders_float64_columns_in_float64():
    """float32 columns are ordered in float32 (exact: min and max pick values); a float64 column whose values
    float32 cannot hold must keep every digit, on the dense and the sparse path."""
    from sensorpipe.processing.clean_rules import hampel_rows

    rng = np.random.default_rng(8)
    T = 600
    v = 70.0 + rng.normal(0, 1e-8, T)          # differences below float32's resolution at 70 (7.6e-6)
    v[::50] += 2e-6                            # spikes only float64 sees
    for obs in (rng.random(T) < 0.97, rng.random(T) < 0.5):
        got = hampel_rows(v, obs, 5, 3.0, 1e-6)
        assert np.array_equal(got, _hampel_direct(v, obs, 5, 3.0, 1e-6))
        assert got.sum() >= 3
        assert not hampel_rows(v.astype(np.float32), obs, 5, 3.0, 1e-6).any()   # float32: all 70.0
