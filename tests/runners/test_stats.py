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
        per_unit = sum(u.stage_seconds.get(stage, 0.0) for u in local_run.units)
        assert per_unit > 0 and local_run.stage_seconds[stage] == pytest.approx(per_unit)
