"""The per-channel source priority that fuses a person's sources before the minute grid."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.config import StudyConfig
from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.observations import Observations
from sensorpipe.processing.fuse import fuse, priority_ranks, window_sources
from sensorpipe.processing.grid import build_grid
from sensorpipe.schema.validate import CHANNEL_NAMES

HR, GLU, STEPS = (CHANNEL_NAMES.index(c) for c in ("heart_rate", "glucose", "steps"))
T0 = 1_709_800_000 // 60 * 60 * 10**9   # a whole minute, March 2024


def _obs(channel: int, minutes: list[float], values: list[float], file: str) -> Observations:
    n = len(minutes)
    return Observations(np.full(n, channel, np.int16), T0 + (np.array(minutes) * MINUTE_NS).astype(np.int64),
                        np.array(values, np.float64), np.zeros(n, np.int32), np.arange(n, dtype=np.int64) + 2,
                        [file], np.arange(n, dtype=np.int64))


def _cat(*parts: Observations) -> Observations:
    return Observations.concat(list(parts))


def test_priority_ranks_default_to_config_order_and_follow_the_study_priority():
    ranks = priority_ranks(("watch", "cgm", "lab"), None)
    assert ranks[:, HR].tolist() == [0, 1, 2] and ranks[:, GLU].tolist() == [0, 1, 2]
    ranks = priority_ranks(("watch", "cgm", "lab"), StudyConfig(priority={"heart_rate": ("lab",)}))
    assert ranks[:, HR].tolist() == [1, 2, 0]         # lab first, then the rest in config order
    assert ranks[:, GLU].tolist() == [0, 1, 2]        # other channels keep the config order


def test_the_higher_ranked_source_wins_shared_minutes_and_losers_are_counted():
    watch = _cat(_obs(HR, [0, 1, 2, 3, 4], [60, 61, 62, 63, 64], "watch.csv"),
                 _obs(STEPS, [0, 1, 2], [10, 0, 5], "watch.csv"))
    # the lab's readings at 1 s resolution: two in minute 1 (:20, :40), one in minute 2, one in minute 9
    lab = _obs(HR, [1 + 20 / 60, 1 + 40 / 60, 2.5, 9], [90, 92, 94, 96], "lab.edf")
    ranks = priority_ranks(("watch", "lab"), StudyConfig(priority={"heart_rate": ("lab", "watch")}))
    fused = fuse([watch, lab], ranks)
    assert fused.overridden == [{"heart_rate": 2}, {}]    # watch's minutes 1 and 2; the lab's minute 9 is new
    kept = fused.obs
    hr = kept.channel == HR
    assert kept.value[hr].tolist() == [60, 63, 64, 90, 92, 94, 96]   # original order kept, never averaged
    assert fused.part[hr].tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert kept.value[kept.channel == STEPS].tolist() == [10, 0, 5]  # the lab has no steps: nothing lost
    grid = build_grid(kept, ("heart_rate", "steps"), "UTC")
    row = (T0 // MINUTE_NS) - grid.start_minute
    assert grid.values[row:row + 5, 0].tolist() == [60, 91, 94, 63, 64]   # minute 1 = the lab's own mean


def test_without_a_priority_the_first_source_in_config_order_wins():
    a, b = _obs(GLU, [0, 5, 10], [100, 110, 120], "a.csv"), _obs(GLU, [5, 15], [300, 310], "b.csv")
    fused = fuse([a, b], priority_ranks(("dexcom", "libre"), None))
    assert fused.overridden == [{}, {"glucose": 1}]
    assert fused.obs.value.tolist() == [100, 110, 120, 310]


def test_one_source_is_returned_as_it_is():
    a = _obs(HR, [0, 1], [60, 61], "a.csv")
    fused = fuse([a, Observations.empty()], priority_ranks(("a", "b"), None))
    assert fused.obs is a and fused.overridden == [{}, {}] and fused.part.tolist() == [0, 0]


def test_window_sources_says_which_sources_fed_each_window():
    watch = _obs(HR, list(range(0, 120)), [60.0 + (i % 5) for i in range(120)], "w.csv")
    cgm = _obs(GLU, [70, 75, 80], [100, 104, 108], "c.csv")
    fused = fuse([watch, cgm], priority_ranks(("watch", "cgm"), None))
    grid = build_grid(fused.obs, ("heart_rate", "glucose"), "UTC")
    row0 = (T0 // MINUTE_NS) - grid.start_minute
    starts = np.array([row0, row0 + 60, row0 + 200])
    got = window_sources(fused, grid, 2, starts, 60)
    assert got.tolist() == [[True, False], [True, True], [False, False]]
    grid.observed[row0 + 60:row0 + 90, 1] = False          # cleaning removed the CGM readings: not a contribution
    assert window_sources(fused, grid, 2, starts, 60)[1].tolist() == [True, False]


@pytest.mark.parametrize("priority, error", [
    ({"glucose": ["nope"]}, "'nope' is not a source of study 'trial'"),
    ({"glucose": ["cgm", "cgm"]}, "a source is listed twice"),
    ({"enmo": ["cgm"]}, "not one of the output channels"),
])
def test_a_priority_naming_a_wrong_source_or_channel_is_a_config_error(priority, error, tmp_path):
    from sensorpipe.config import ConfigError
    from sensorpipe.runners.plan import load_plan

    (tmp_path / "w").mkdir()
    cfg = {"sources": [{"name": "watch", "adapter": "long_table", "path": "w", "study": "trial",
                        "options": {"files": [], "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}, "tz": "UTC"}},
                       {"name": "cgm", "adapter": "dexcom_clarity", "path": "w", "study": "trial",
                        "options": {"tz": "UTC"}}],
           "channels": ["heart_rate", "glucose"], "studies": {"trial": {"priority": priority}}}
    with pytest.raises(ConfigError, match=error):
        load_plan(cfg, base_dir=str(tmp_path))
    cfg["studies"] = {"other": {}}
    with pytest.raises(ConfigError, match="no source declares study 'other'"):
        load_plan(cfg, base_dir=str(tmp_path))
