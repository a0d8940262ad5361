"""CGM targets and consensus glycaemic events: 5-min and 15-min devices, seconds jitter, censored readings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sensorpipe.captions.base import Claim
from sensorpipe.captions.faithfulness import check_window
from sensorpipe.captions.generator import CaptionGenerator
from sensorpipe.captions.semantic import SemanticLevel
from sensorpipe.config import CaptionConfig
from sensorpipe.core.windows import WindowBatch
from sensorpipe.labels.base import labels_for_windows
from sensorpipe.labels.cgm import (CGM_LABELS, GlucoseEvent, cgm_targets, glucose_events, glucose_events_per_window,
                                   infer_reading_interval_min, reading_intervals_min)
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
    assert out["time_below_range_l2_pct"][0] == pytest.approx(100 * 1 / 273, rel=1e-6)   # the 50 at minute 305
    assert out["time_above_range_l2_pct"][0] == 0.0
    assert out["hypo_l2_events"][0] == 0 and out["hyper_l2_events"][0] == 0               # 5 min below 54 only
    assert out["gmi_pct"][0] == pytest.approx(3.31 + 0.02392 * 32028 / 273, rel=1e-6)


def test_processor_targets_missing_below_coverage_and_without_the_channel():
    g, _ = _day()
    sparse = g.copy()
    sparse[: int(W * 0.31)] = np.nan               # 69 % of the 5-min slots keep a reading
    batch = channel_batch({"glucose": np.stack([g, sparse, np.full(W, np.nan)]),
                           "heart_rate": np.full((3, W), 60.0)})
    labels = labels_for_windows(batch)
    assert labels["glucose_mean_mgdl"][0] == pytest.approx(32028 / 273, rel=1e-6)
    assert labels["hypo_events"][0] == 2
    assert len(CGM_LABELS) == 12
    for name in CGM_LABELS:
        assert np.isnan(labels[name][1:]).all(), name      # never 0 for "no data"
    no_channel = labels_for_windows(channel_batch({"heart_rate": np.full((1, W), 60.0)}))
    assert np.isnan(no_channel["glucose_mean_mgdl"]).all() and np.isnan(no_channel["hypo_events"]).all()


# --- the device's cadence -----------------------------------------------------------------------------
def _minutes(readings: dict[int, float], w: int = W) -> np.ndarray:
    g = np.full(w, np.nan)
    g[list(readings)] = list(readings.values())
    return g


def _libre_day(keep: int = 96) -> np.ndarray:
    """A FreeStyle Libre 2 day: a historic reading every 15 min (first ``keep``), with a hypo at 07:30-08:15."""
    readings = {15 * k: 110.0 for k in range(keep)}
    readings |= {450: 65.0, 465: 52.0, 480: 58.0}     # three 15-min readings below 70, one of them below 54
    return _minutes({m: v for m, v in readings.items() if m < 15 * keep})


def test_a_complete_15_minute_libre_day_gets_its_labels_declared_or_inferred():
    g = _libre_day()
    assert np.isfinite(g).sum() == 96
    batch = channel_batch({"glucose": g[None]})
    declared = dataclasses.replace(batch, reading_interval_min={"glucose": 15.0})
    for b in (declared, batch):                       # the LibreView adapter declares 15; a long table is inferred
        labels = labels_for_windows(b)
        assert labels["glucose_mean_mgdl"][0] == pytest.approx((93 * 110 + 65 + 52 + 58) / 96, rel=1e-6)
        assert labels["time_below_range_pct"][0] == pytest.approx(100 * 3 / 96, rel=1e-6)
        assert labels["time_below_range_l2_pct"][0] == pytest.approx(100 / 96, rel=1e-6)
        assert labels["hypo_events"][0] == 1 and labels["hypo_l2_events"][0] == 1
    assert glucose_events(g, 15.0) == [GlucoseEvent(450, 495, "hypo", 52.0, 1), GlucoseEvent(465, 480, "hypo", 52.0, 2)]
    assert glucose_events(g) == glucose_events(g, 15.0)
    assert infer_reading_interval_min(np.isfinite(g)[None]).tolist() == [15.0]


def test_libre_coverage_counts_readings_against_96_per_day():
    b68, b67 = (dataclasses.replace(channel_batch({"glucose": _libre_day(k)[None]}),
                                    reading_interval_min={"glucose": 15}) for k in (68, 67))
    assert labels_for_windows(b68)["time_in_range_pct"][0] == pytest.approx(100 * 65 / 68, rel=1e-6)  # 70.8 %
    assert np.isnan(labels_for_windows(b67)["time_in_range_pct"][0])                                  # 69.8 %


def _clarity_seconds(n: int) -> np.ndarray:
    """Reading instants (seconds from the window start) as a Dexcom export writes them: every 300 s from
    00:01:59, each at second 59 except every fifth, written one second later at second 00 of the next minute
    (as in a real Clarity export: ...22:11:59 then 22:17:00), so minute bins are 4, 5 or 6 apart."""
    k = np.arange(n)
    return 119 + 300 * k + (k % 5 == 2)


def test_events_survive_the_seconds_jitter_of_a_real_dexcom_export(monkeypatch):
    t_s = _clarity_seconds(288)
    minute = t_s // 60                                 # the grid's minute of each reading
    gaps = np.diff(minute)
    assert set(gaps.tolist()) == {4, 5, 6}
    value = np.full(288, 120.0)
    value[100:106] = 62.0                              # six readings below 70 (about 30 min) ...
    value[200:205] = [60.0, 50.0, 48.0, 51.0, 58.0]    # a dip with three readings below 54 (about 15 min)
    value[250:256] = 265.0                             # six readings above 250
    assert gaps[101] == 6 and gaps[201] == 6 and gaps[251] == 6   # the jitter falls inside each run
    g = _minutes(dict(zip(minute.tolist(), value.tolist())))
    m = minute.tolist()
    assert glucose_events(g, 5.0) == [
        GlucoseEvent(m[100], m[106], "hypo", 62.0, 1), GlucoseEvent(m[200], m[205], "hypo", 48.0, 1),
        GlucoseEvent(m[201], m[204], "hypo", 48.0, 2), GlucoseEvent(m[250], m[256], "hyper", 265.0, 1),
        GlucoseEvent(m[250], m[256], "hyper", 265.0, 2)]
    assert m[204] - m[201] == 15                       # the level-2 run is exactly 15 minutes, with a 6-min gap
    assert glucose_events(g) == glucose_events(g, 5.0)  # inferred: the median gap is 5
    out = cgm_targets(np.nan_to_num(g)[None], np.isfinite(g)[None], 5.0)
    assert out["hypo_events"][0] == 2 and out["hypo_l2_events"][0] == 1
    assert out["hyper_events"][0] == 1 and out["hyper_l2_events"][0] == 1
    assert out["time_above_range_l2_pct"][0] == pytest.approx(100 * 6 / 288, rel=1e-6)
    monkeypatch.setattr("sensorpipe.labels.cgm.JITTER_TOLERANCE_MIN", 0)   # a reading covering only 5 minutes
    broken = glucose_events(g, 5.0)           # each run loses its first 10 min; the 200 dip: 10 + 14, no event
    assert [(e.start_min, e.kind, e.level) for e in broken] == [(m[102], "hypo", 1), (m[252], "hyper", 1),
                                                                (m[252], "hyper", 2)]


def test_two_jittered_readings_are_still_not_fifteen_minutes():
    g = _minutes({0: 120.0, 5: 60.0, 11: 60.0, 15: 120.0, 20: 120.0, 25: 120.0}, 30)   # 10 min low, one jitter
    assert glucose_events(g, 5.0) == []
    g = _minutes({0: 120.0, 5: 60.0, 11: 60.0}, 30)    # the last low before a gap covers 5 + 1 minutes: 12 min
    assert glucose_events(g, 5.0) == []


def test_a_run_a_jitter_minute_short_counts_only_with_enough_readings():
    # three 5-min readings below 70, the first written a second late: minute bins 4 and 5 apart, 14 minutes
    g = _minutes({0: 120.0, 6: 60.0, 10: 60.0, 15: 60.0, 20: 120.0, 25: 120.0, 30: 120.0, 35: 120.0}, 40)
    assert glucose_events(g, 5.0) == [GlucoseEvent(6, 20, "hypo", 60.0, 1)]
    # a Libre reading below 54 written a minute late, then the next one on time: 14 minutes, still 15-min worth
    g = _minutes({0: 100.0, 16: 50.0, 30: 100.0, 45: 100.0}, 60)
    assert glucose_events(g, 15.0) == [GlucoseEvent(16, 30, "hypo", 50.0, 1), GlucoseEvent(16, 30, "hypo", 50.0, 2)]
    # two 5-min readings before a gap hold 12 minutes, and two readings are never 15 minutes' worth
    g = _minutes({0: 120.0, 5: 60.0, 11: 60.0, 19: 120.0}, 30)
    assert glucose_events(g, 5.0) == []


def test_a_declared_interval_is_an_upper_bound_and_inference_fills_in():
    every_10 = _minutes({m: 120.0 for m in range(0, W, 10)})       # a 5-min Dexcom missing every other reading
    declared = cgm_targets(np.nan_to_num(every_10)[None], np.isfinite(every_10)[None], 5.0)
    assert np.isnan(declared["glucose_mean_mgdl"][0])               # 144 of 288 readings: 50 %
    inferred = cgm_targets(np.nan_to_num(every_10)[None], np.isfinite(every_10)[None])
    assert inferred["glucose_mean_mgdl"][0] == 120.0                # nothing declared: a 10-min device
    libre3 = np.isfinite(_minutes({m: 100.0 for m in range(0, W, 5)}))[None]
    assert reading_intervals_min(libre3, 15.0).tolist() == [5]     # a Libre 3 export through LibreView
    scans = _libre_day()
    scans[[100, 200, 340, 700, 1001]] = 120.0                      # five scans between historic readings
    assert reading_intervals_min(np.isfinite(scans)[None]).tolist() == [15]
    assert reading_intervals_min(np.zeros((1, 60), bool), 15.0).tolist() == [15]
    assert reading_intervals_min(np.zeros((1, 60), bool)).tolist() == [5]
    with pytest.raises(ValueError, match="> 0 minutes"):
        reading_intervals_min(libre3, 0.0)


# --- censored readings --------------------------------------------------------------------------------
def test_censored_readings_count_beyond_every_threshold_and_enter_the_mean_at_the_limits():
    """A day of 5-min readings at 100 mg/dL with four Lows (stored at 20) and four Highs (stored at 600)."""
    readings = {m: 100.0 for m in range(0, W, 5)}
    readings |= {300: 20.0, 305: 20.0, 310: 20.0, 315: 20.0}      # Low x 4: 20 min below 54
    readings |= {900: 600.0, 905: 600.0, 910: 600.0, 915: 600.0}  # High x 4: 20 min above 250
    g = _minutes(readings)
    out = cgm_targets(np.nan_to_num(g)[None], np.isfinite(g)[None], 5.0)
    as_mean = np.array([100.0] * 280 + [40.0] * 4 + [400.0] * 4)  # Low counts 40, High 400
    assert out["glucose_mean_mgdl"][0] == pytest.approx(as_mean.mean(), rel=1e-6)        # 103.33
    assert out["glucose_cv_pct"][0] == pytest.approx(100 * as_mean.std(ddof=1) / as_mean.mean(), rel=1e-5)
    assert out["gmi_pct"][0] == pytest.approx(3.31 + 0.02392 * 29760 / 288, rel=1e-6)
    for name in ("time_below_range_pct", "time_below_range_l2_pct", "time_above_range_pct", "time_above_range_l2_pct"):
        assert out[name][0] == pytest.approx(100 * 4 / 288, rel=1e-6), name
    assert out["time_in_range_pct"][0] == pytest.approx(100 * 280 / 288, rel=1e-6)
    assert (out["hypo_l2_events"][0], out["hyper_l2_events"][0]) == (1, 1)
    assert glucose_events(g, 5.0)[:2] == [GlucoseEvent(300, 320, "hypo", 20.0, 1),
                                          GlucoseEvent(300, 320, "hypo", 20.0, 2)]


def test_captions_say_a_censored_extreme_as_beyond_the_reporting_limit_and_hold():
    level = SemanticLevel(CaptionConfig())
    base = {"t0": "05:00", "t1": "05:20", "duration_min": 20, "start_min": 300, "end_min": 320}
    low = level.fields(Claim("semantic", "glucose_excursion", {**base, "event": "hypo", "extreme_mgdl": 20.0}))
    high = level.fields(Claim("semantic", "glucose_excursion", {**base, "event": "hyper", "extreme_mgdl": 600.0}))
    real = level.fields(Claim("semantic", "glucose_excursion", {**base, "event": "hypo", "extreme_mgdl": 39.6}))
    assert (low["extreme"], high["extreme"], real["extreme"]) == ("under 40", "over 400", "40")
    # a day with four 'Low' readings, its glucose_censored flag channel, captioned and checked
    g = _minutes({**{m: 100.0 for m in range(0, W, 5)}, 300: 20.0, 305: 20.0, 310: 20.0, 315: 20.0})
    seen = np.isfinite(g)
    values = np.stack([np.where(seen, g, 100.0), np.where(seen & (g == 20.0), 1.0, 0.0)], axis=1)[None]
    batch = WindowBatch(values=values.astype(np.float32), observed=np.stack([seen, seen], axis=1)[None],
                        channels=("glucose", "glucose_censored"), local_min=np.arange(W)[None], events=[[]])
    cap, = CaptionGenerator(CaptionConfig()).generate(batch, ["w0"])
    text = cap.texts["semantic"]
    assert "under 40 mg/dL" in text and "20 mg/dL" not in text
    assert text.count("05:00") == 1 and "05:20" in text     # the level-2 event inside the level-1 one: said once
    n, findings = check_window(CaptionConfig(), batch.window(0), cap.texts, cap.claims_json)
    assert n and findings == []


def test_events_of_all_windows_at_once_equal_one_window_at_a_time():
    """The batched search (reading intervals for all windows, windows without a long enough excursion
    skipped) finds exactly the events of glucose_events per window, and the targets count them."""
    rng = np.random.default_rng(5)
    n, w = 60, 1440
    g = rng.normal(120, 35, (n, w))
    for i in range(0, n, 3):                    # excursions of 10-40 min below 54/70 and above 180/250
        a, length = int(rng.integers(0, w - 40)), int(rng.integers(10, 41))
        g[i, a:a + length] = rng.choice([50.0, 65.0, 200.0, 300.0])
    every = rng.choice([1, 5, 15], n)            # 1-, 5- and 15-minute sensors, a few readings missing
    keep = (np.arange(w)[None, :] % every[:, None] == 0) & (rng.random((n, w)) > 0.05)
    g = np.where(keep, g, np.nan)
    g[7] = np.nan                               # a window without readings
    expected = [glucose_events(row) for row in g]
    assert sum(map(len, expected)) > 10 and any(not e for e in expected)   # some windows have events, some none
    assert glucose_events_per_window(g) == expected
    declared = [glucose_events(row, 5.0) for row in g]
    assert glucose_events_per_window(g, 5.0) == declared
    t = cgm_targets(np.nan_to_num(g), np.isfinite(g))
    counted = np.array([sum(e.kind == "hypo" and e.level == 1 for e in ev) for ev in expected], np.float32)
    covered = np.isfinite(t["hypo_events"])
    assert covered.any() and np.array_equal(t["hypo_events"][covered], counted[covered])
