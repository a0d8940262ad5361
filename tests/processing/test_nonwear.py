"""Non-wear detection: still accelerometer plus missing heart rate, cold skin, and what it masks."""

from __future__ import annotations

import numpy as np

from sensorpipe.config import CleaningConfig
from sensorpipe.processing.clean import clean_grid
from sensorpipe.processing.nonwear import long_runs
from tests.processing.test_clean import cleaning, col, make_grid


def test_long_runs():
    m = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1], bool)
    assert long_runs(m, 3).astype(int).tolist() == [1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    assert long_runs(m, 1).tolist() == m.tolist() and not long_runs(m, 5).any()
    assert long_runs(np.zeros(0, bool), 3).size == 0


def wear_day(T=480):
    """Heart rate, SpO2, skin temperature, ENMO and on_wrist over 8 hours with two off-wrist spells."""
    t = np.arange(T)
    hr = 62 + 3 * np.sin(t / 13.0)
    spo2 = np.full(T, 96.0) + (t % 3)
    temp = np.full(T, 33.0) + 0.01 * (t % 5)
    enmo = 20 + 10 * np.abs(np.sin(t / 7.0))
    enmo[60:180] = 1.0                   # 120 min still; heart rate missing in 70..160 (90 minutes)
    hr[70:160] = np.nan
    enmo[300:345] = 0.5                  # 45 min still with heart rate missing: too short
    hr[300:345] = np.nan
    temp[400:470] = 22.0                 # 70 min cold skin, heart rate missing, accelerometer moving (carried)
    hr[400:470] = np.nan
    enmo[200:260] = 2.0                  # 60 min still but heart rate present: asleep, not off-wrist
    return {"heart_rate": hr, "spo2": spo2, "skin_temperature": temp, "enmo": enmo,
            "on_wrist": np.full(T, np.nan), "glucose": np.where(t % 5 == 0, 110.0, np.nan)}


def test_nonwear_masks_physiology_and_sets_on_wrist():
    grid = make_grid(wear_day())
    counts = clean_grid(grid, cleaning(["nonwear"]))
    off = np.zeros(480, bool)
    off[70:160] = off[400:470] = True
    assert counts == {"on_wrist:non_wear": 160, "on_wrist:worn": 320, "skin_temperature:non_wear": 160,
                      "spo2:non_wear": 160}
    for ch in ("spo2", "skin_temperature"):
        assert (~col(grid, ch)[1] == off).all()
    v, o = col(grid, "on_wrist")
    assert o.all() and (v[off] == 0).all() and (v[~off] == 1).all()
    assert col(grid, "glucose")[1].sum() == 96 and col(grid, "enmo")[1].all()   # CGM and ENMO are not masked


def test_nonwear_needs_heart_rate_unless_told_and_reads_enmo_from_rows():
    from sensorpipe.core.grid import MINUTE_NS
    from sensorpipe.schema.validate import CHANNEL_INDEX
    from sensorpipe.core.observations import Observations

    day = wear_day()
    grid = make_grid({"spo2": day["spo2"]})            # no heart rate in this unit, ENMO only in the rows
    minutes = np.arange(480)
    n = minutes.size
    obs = Observations(np.full(n, CHANNEL_INDEX["enmo"], np.int16), (grid.start_minute + minutes) * MINUTE_NS,
                       day["enmo"].astype(np.float64), np.zeros(n, np.int32), np.arange(n), ["acc"], np.arange(n))
    assert clean_grid(grid, cleaning(["nonwear"]), obs) == {}   # still ENMO alone could be sleep
    cfg = cleaning(["nonwear"], nonwear={"require_missing_heart_rate": False})
    assert clean_grid(grid, cfg, obs) == {"spo2:non_wear": 120 + 60}
    assert np.flatnonzero(~grid.observed[:, 0]).tolist() == list(range(60, 180)) + list(range(200, 260))


def test_cleaning_is_deterministic():
    a, b = make_grid(wear_day()), make_grid(wear_day())
    cfg = CleaningConfig()
    assert clean_grid(a, cfg) == clean_grid(b, cfg)
    assert a.values.tobytes() == b.values.tobytes() and (a.observed == b.observed).all()
