"""Per-unit stats: counts by reason, seconds by timed stage, merged across units into the run's totals."""

from __future__ import annotations

import pytest

from sensorpipe.runners.stats import UnitStats


def test_counts_add_up_by_reason_and_merge_across_units():
    a, b = UnitStats(), UnitStats()
    a.count("dropped_too_short")
    a.count("dropped_too_short", 2)
    a.count("ppg_out_of_range", 0)          # a reason that did not happen is still named
    b.count("dropped_too_short", 4)
    b.count("eda_flat", 7)
    total = UnitStats.merged([a, b])
    assert total.counts == {"dropped_too_short": 7, "ppg_out_of_range": 0, "eda_flat": 7}
    assert a.counts == {"dropped_too_short": 3, "ppg_out_of_range": 0}   # merging left the units' own alone


def test_timed_stages_add_up_also_when_the_block_raises(monkeypatch):
    clock = iter([10.0, 10.5, 20.0, 20.25, 30.0, 31.0])
    monkeypatch.setattr("sensorpipe.runners.stats.time.perf_counter", lambda: next(clock))
    s = UnitStats()
    with s.timed("read"):
        pass
    with s.timed("read"):                   # a second source of the person: the stage adds up
        pass
    with pytest.raises(ValueError), s.timed("validate"):
        raise ValueError("bad row")
    assert s.seconds == {"read": 0.75, "validate": 1.0}
    other = UnitStats(seconds={"read": 0.25, "captions": 2.0})
    assert UnitStats.merged([s, other]).seconds == {"read": 1.0, "validate": 1.0, "captions": 2.0}


def test_a_run_sums_its_units_stage_seconds(local_run):
    stages = {"fingerprint", "read", "validate", "raw_features", "grid", "clean", "window", "labels_lineage",
              "fit_stats", "cache_write", "cache_read", "impute", "normalize", "captions", "serialize"}
    assert stages <= set(local_run.stage_seconds) <= stages
    for stage in ("read", "grid", "window"):   # pass 1's stages: the units' summaries carry them
        per_unit = sum(u.stats.seconds.get(stage, 0.0) for u in local_run.units)
        assert per_unit > 0 and local_run.stage_seconds[stage] == pytest.approx(per_unit)


def test_peaks_keep_the_highest_and_named_counts_read_back_by_prefix():
    a, b = UnitStats(), UnitStats()
    a.peak("rss_mib", 300.0)
    a.peak("rss_mib", 120.0)                # a lower reading later does not lower the peak
    b.peak("rss_mib", 410.5)
    a.count("windows_dropped:too_missing", 3)
    a.count("cleaned:heart_rate:capped", 2)
    a.count("windows_dropped:too_short", 0)
    assert a.peaks == {"rss_mib": 300.0} and UnitStats.merged([a, b]).peaks == {"rss_mib": 410.5}
    assert a.under("windows_dropped") == {"too_missing": 3, "too_short": 0}   # in the order first counted
    assert a.under("cleaned") == {"heart_rate:capped": 2} and a.under("imputed") == {}


def test_stats_travel_in_a_units_json_and_come_back_equal(local_run):
    import json

    from sensorpipe.runners.stages import UnitSummary

    u = local_run.units[0]
    back = UnitSummary(**json.loads(u.to_json()))
    assert isinstance(back.stats, UnitStats) and back.stats == u.stats
    assert back.stats.counts["grid_minutes"] > 0 and back.stats.peaks["rss_mib"] > 0
    assert sum(back.stats.under("observed_minutes").values()) > 0
