"""CGM targets and consensus glycaemic events against a hand-built day of 5-min readings."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.labels.base import labels_for_windows
from sensorpipe.labels.cgm import GlucoseEvent, cgm_targets, glucose_events
from tests.labels._channels import channel_batch

W = 1440


def _day() -> tuple[np.ndarray, dict[int, float]]:
    """A day of readings every 5 min at 120 mg/dL with dips, a rise and gaps; returns (per-minute, readings)."""
    readings = {m: 120.0 for m in range(0, W, 5)}
    readings |= {100: 60.0, 105: 60.0}                          # 10 min below 70: not an event
    readings |= {300: 55.0, 305: 50.0, 310: 58.0, 315: 65.0}    # 20 min below 70: an event
    readings |= {600: 62.0, 605: 62.0, 610: 62.0, 615: 62.0,    # 20 min low, 5 min back up (< 15),
                 620: 100.0, 625: 64.0, 630: 58.0}              # low again: still the same event
    for m in range(900, 960, 5):                                # an hour without readings
        del readings[m]
    readings |= {1000: 190.0, 1005: 215.0, 1010: 205.0}         # 15 min above 180: a hyper event
    readings |= {1200: 60.0, 1205: 60.0, 1225: 60.0, 1230: 60.0}  # two 10-min dips around a 15-min gap
    for m in (1210, 1215, 1220):
        del readings[m]
    g = np.full(W, np.nan)
    g[list(readings)] = list(readings.values())
    return g, readings


def test_events_follow_the_consensus_definition():
    g, _ = _day()
    assert glucose_events(g) == [GlucoseEvent(300, 320, "hypo", 50.0), GlucoseEvent(600, 635, "hypo", 58.0),
                                 GlucoseEvent(1000, 1015, "hyper", 215.0)]


def test_a_full_recovery_splits_events_and_an_open_event_ends_at_the_window_edge():
    g = np.full(120, np.nan)
    g[::5] = 100.0
    g[0:20:5] = 65.0          # minutes 0-19 low
    g[20:35:5] = 90.0         # 15 min back in range: the event ended
    g[35:50:5] = 60.0         # a second event, 15 min
    g[105::5] = 250.0         # runs into the window's end
    assert glucose_events(g) == [GlucoseEvent(0, 20, "hypo", 65.0), GlucoseEvent(35, 50, "hypo", 60.0),
                                 GlucoseEvent(105, 120, "hyper", 250.0)]


def test_one_minute_sensors_need_15_readings():
    g = np.full(200, 110.0)
    g[10:24] = 66.0            # 14 min
    g[100:115] = 66.0          # 15 min
    assert glucose_events(g) == [GlucoseEvent(100, 115, "hypo", 66.0)]
    with pytest.raises(ValueError, match="1-D"):
        glucose_events(g[None])


def test_targets_use_readings_only():
    g, readings = _day()
    values = np.array(list(readings.values()))
    assert values.size == 273                      # 288 slots minus 15 without a reading
    out = cgm_targets(np.nan_to_num(g)[None], np.isfinite(g)[None])
    # 16 readings below 70 (sum 958), 3 above 180 (610), 254 in range (120 x 253 + 100)
    assert out["glucose_mean_mgdl"][0] == pytest.approx(32028 / 273, rel=1e-6)
    assert out["glucose_cv_pct"][0] == pytest.approx(100 * np.std(values, ddof=1) / (32028 / 273), rel=1e-5)
    assert out["time_below_range_pct"][0] == pytest.approx(100 * 16 / 273, rel=1e-6)
    assert out["time_above_range_pct"][0] == pytest.approx(100 * 3 / 273, rel=1e-6)
    assert out["time_in_range_pct"][0] == pytest.approx(100 * 254 / 273, rel=1e-6)
    assert out["hypo_events"][0] == 2 and out["hyper_events"][0] == 1


def test_processor_targets_missing_below_coverage_and_without_the_channel():
    g, _ = _day()
    sparse = g.copy()
    sparse[: int(W * 0.31)] = np.nan               # 69 % of the 5-min slots keep a reading
    batch = channel_batch({"glucose": np.stack([g, sparse, np.full(W, np.nan)]),
                           "heart_rate": np.full((3, W), 60.0)})
    labels = labels_for_windows(batch)
    assert labels["glucose_mean_mgdl"][0] == pytest.approx(32028 / 273, rel=1e-6)
    assert labels["hypo_events"][0] == 2
    for name in ("glucose_mean_mgdl", "glucose_cv_pct", "time_in_range_pct", "time_below_range_pct",
                 "time_above_range_pct", "hypo_events", "hyper_events"):
        assert np.isnan(labels[name][1:]).all(), name      # never 0 for "no data"
    no_channel = labels_for_windows(channel_batch({"heart_rate": np.full((1, W), 60.0)}))
    assert np.isnan(no_channel["glucose_mean_mgdl"]).all() and np.isnan(no_channel["hypo_events"]).all()
