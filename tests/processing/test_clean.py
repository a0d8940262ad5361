"""Cleaning rules on crafted minute grids: exact counts and exactly which cells change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.config import CleaningConfig, ConfigError, build_dataclass
from sensorpipe.core.arrays import load_arrays
from sensorpipe.core.grid import MinuteGrid
from sensorpipe.processing import clean
from sensorpipe.processing.clean import CleaningRule, clean_grid
from sensorpipe.processing.clean_rules import flatline_rows, hampel_rows
from sensorpipe.runners.plan import resolve_cleaning


def make_grid(columns: dict[str, np.ndarray]) -> MinuteGrid:
    """A grid from NaN-for-missing columns (observed = finite)."""
    values = np.stack([np.asarray(v, np.float32) for v in columns.values()], axis=1)
    T = values.shape[0]
    return MinuteGrid(28_000_000, values, np.isfinite(values), np.zeros(T, np.int16), tuple(columns), 0, T - 1)


def cleaning(rules, **kw) -> CleaningConfig:
    return build_dataclass(CleaningConfig, {"rules": list(rules), **kw}, "cleaning")


def col(grid: MinuteGrid, ch: str) -> tuple[np.ndarray, np.ndarray]:
    j = grid.channels.index(ch)
    return grid.values[:, j], grid.observed[:, j]


def test_range_clips_or_removes_per_channel():
    grid = make_grid({"heart_rate": [25, 29, 100, 221, np.nan], "spo2": [101, 98, 50, 49, 99.5],
                      "steps": [0, 10, 300, 0, 5]})
    cfg = cleaning(["range"], per_channel={"heart_rate": {"valid_min": 30, "valid_max": 220},
                                           "spo2": {"valid_max": 99}})
    counts = clean_grid(grid, cfg)
    assert counts == {"heart_rate:out_of_range_removed": 3, "spo2:out_of_range_removed": 3}
    v, o = col(grid, "heart_rate")
    assert o.tolist() == [False, False, True, False, False] and np.isnan(v[[0, 1, 3]]).all() and v[2] == 100
    v, o = col(grid, "spo2")  # registry action for spo2 is quarantine: out-of-range cells are removed
    assert o.tolist() == [False, True, True, False, False] and v[1] == 98 and v[2] == 50
    assert col(grid, "steps")[0].tolist() == [0, 10, 300, 0, 5]


def test_sentinels_are_removed_and_glucose_limits_are_kept_by_default():
    grid = make_grid({"heart_rate": [0, 72, 255, 73], "spo2": [127, 97, 0, 96], "glucose": [40, 400, 39, 120]})
    counts = clean_grid(grid, cleaning(["sentinel"]))
    assert counts == {"heart_rate:sentinel": 2, "spo2:sentinel": 2}
    assert col(grid, "heart_rate")[1].tolist() == [False, True, False, True]
    assert col(grid, "glucose")[1].all()   # Low/High are censored readings, not sentinels
    grid = make_grid({"glucose": [40, 400, 39, 120]})
    assert clean_grid(grid, cleaning(["sentinel"], per_channel={"glucose": {"sentinels": [39, 401]}})) == \
        {"glucose:sentinel": 1}
    assert col(grid, "glucose")[1].tolist() == [True, True, False, True]


def test_flatline_runs_and_their_gaps():
    v = np.zeros(100)
    obs = np.ones(100, bool)
    v[:] = np.arange(100) % 7            # varying
    v[10:40] = 72.0                      # 30 minutes stuck: a flatline
    v[50:79] = 72.0                      # 29 minutes: kept
    assert np.flatnonzero(flatline_rows(v, obs, 30, 2)).tolist() == list(range(10, 40))
    obs2 = obs.copy()
    obs2[[20, 21]] = False               # a 2-minute hole is bridged, the run still lasts 30 minutes
    assert flatline_rows(v, obs2, 30, 2).sum() == 28
    obs2[22] = False                     # a 3-minute hole splits it into 10 + 17 minutes
    assert flatline_rows(v, obs2, 30, 2).sum() == 0


def test_flatline_defaults_leave_steps_sleep_and_calories_alone():
    T = 600
    hr = 60 + np.sin(np.arange(T) / 9.0) * 5
    hr[100:145] = 61.0                    # 45 min stuck
    grid = make_grid({"heart_rate": hr, "steps": np.zeros(T), "sleep_stage": np.full(T, 2.0),
                      "calories": np.full(T, 1.1), "enmo": np.zeros(T)})
    counts = clean_grid(grid, cleaning(["flatline"]))
    assert counts == {"heart_rate:flatline": 45}
    assert np.flatnonzero(~col(grid, "heart_rate")[1]).tolist() == list(range(100, 145))


def test_hampel_removes_isolated_spikes_only():
    rng = np.random.default_rng(0)
    T = 400
    hr = 65 + rng.normal(0, 2, T)
    hr[200:230] += 55                     # a 30-minute run: real exercise, not a spike
    hr[50] += 45                          # single-minute artefacts
    hr[120:122] += 40                     # a two-minute one (window 5 still sees a majority of normal minutes)
    hr[[302, 303, 305, 306]] = np.nan
    hr[304] += 60                         # a spike between holes: 1 of its 5-minute window observed -> not judged
    plateau = np.array([70.0] * 10 + [71.0] + [70.0] * 10)   # integer readings, MAD 0: 1 bpm is no spike
    hr[350:371] = plateau
    rows = hampel_rows(hr, np.isfinite(hr), 5, 4.0, 20.0)
    assert np.flatnonzero(rows).tolist() == [50, 120, 121]
    grid = make_grid({"heart_rate": hr, "steps": np.where(np.arange(T) == 77, 250.0, 3.0)})
    assert clean_grid(grid, cleaning(["spike"])) == {"heart_rate:spike": 3}   # steps: no spike filter by default
    assert clean_grid(make_grid({"steps": np.where(np.arange(T) == 77, 250.0, 3.0)}),
                      cleaning(["spike"], per_channel={"steps": {"hampel_k": 4.0}})) == {"steps:spike": 1}


def test_hampel_edge_window_and_minimum_points():
    x = np.array([10.0, 10.5, 40.0, 10.2, 9.9, 10.1])
    assert hampel_rows(x, np.isfinite(x), 5, 3.0, 0.0).tolist() == [False, False, True, False, False, False]
    x[[0, 2]] = 60.0, 10.3                 # at the edge the window holds 3 of 5 minutes: still judged
    assert hampel_rows(x, np.isfinite(x), 5, 3.0, 0.0).tolist() == [True, False, False, False, False, False]


def test_rules_run_in_order_and_disabled_cleaning_changes_nothing():
    hr = np.array([70, 71, 255, 72, 70, 300, 71, 70, 72, 71], float)
    grid = make_grid({"heart_rate": hr})
    assert clean_grid(grid, cleaning(["range", "sentinel"])) == {"heart_rate:out_of_range_removed": 2}
    grid = make_grid({"heart_rate": hr})
    assert clean_grid(grid, cleaning(["sentinel", "range"])) == {"heart_rate:out_of_range_removed": 1,
                                                                  "heart_rate:sentinel": 1}
    grid = make_grid({"heart_rate": hr})
    assert clean_grid(grid, cleaning(["range"], enabled=False)) == {} and grid.observed.all()


@dataclasses.dataclass(frozen=True)
class _CapOptions:
    cap: float = 100.0


class _CapRule(CleaningRule, register=False):   # added per test (setitem)
    name = "cap_test"
    Options = _CapOptions

    def apply(self, state):
        for j in range(len(state.channels)):
            state.remove(j, state.values[:, j] > self.options.cap, "capped")


class _SilentRule(CleaningRule, register=False):
    name = "silent_test"

    def apply(self, state):
        state.values[0, 0] = 1.0           # not through the state: not counted


def test_registered_rule_with_options_and_the_counting_guard(monkeypatch):
    monkeypatch.setitem(clean._RULES, "cap_test", _CapRule)
    monkeypatch.setitem(clean._RULES, "silent_test", _SilentRule)
    cfg = cleaning(["cap_test"], options={"cap_test": {"cap": 80}})
    grid = make_grid({"heart_rate": [70, 90, 85, 60]})
    assert clean_grid(grid, cfg) == {"heart_rate:capped": 2}
    with pytest.raises(ConfigError, match=r"unknown key cleaning.options.cap_test.cop"):
        resolve_cleaning(cleaning(["cap_test"], options={"cap_test": {"cop": 80}}))
    with pytest.raises(RuntimeError, match="'silent_test' changed 1 grid cells but counted 0"):
        clean_grid(make_grid({"heart_rate": [70, 90]}), cleaning(["silent_test"]))
    with pytest.raises(TypeError, match="already registered"):
        clean.register_cleaning_rule(type("Other", (CleaningRule,), {"name": "range", "apply": lambda s, st: None}))


@pytest.mark.parametrize("section, message", [
    ({"rules": ["range", "range"]}, "cleaning.rules: a rule is listed twice"),
    ({"rules": ["range", "despike"]}, "cleaning.rules[1]: unknown cleaning rule 'despike'"),
    ({"per_channel": {"heart_rate": {"flatline": 30}}}, "unknown key cleaning.per_channel.heart_rate.flatline"),
    ({"per_channel": {"heart_rate": {"range_action": "drop"}}}, "cleaning.per_channel.heart_rate.range_action"),
    ({"per_channel": {"heart_rate": {"valid_min": 300}}}, "cleaning.per_channel.heart_rate: the valid range 300"),
    ({"per_channel": {"heartrate": {}}}, "cleaning.per_channel.heartrate: unknown channel"),
    ({"hampel_window_min": 4}, "cleaning.hampel_window_min must be an odd number"),
    ({"nonwear": {"min_duration_min": 0}}, "cleaning.nonwear.min_duration_min must be > 0"),
    ({"nonwear": {"enmo_max": 5}}, "unknown key cleaning.nonwear.enmo_max"),
    ({"options": {"range": {"x": 1}}}, "cleaning.options.range: rule 'range' takes no options"),
])
def test_config_errors_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve_cleaning(build_dataclass(CleaningConfig, section, "cleaning"))


def _inject_artifacts(parquet_path) -> tuple[list[int], int]:
    """A stuck heart rate (40 minutes at 45.3 bpm) and a one-minute spike (+60 bpm) in a 5-s HR stream.

    Returns (the stuck minutes, the spike minute), in minutes since the epoch.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(parquet_path).to_pandas()
    is_hr = (t.metric == "heart_rate").to_numpy()
    minute = t.timestamp_ms.to_numpy() // 60_000
    hr_minutes, n = np.unique(minute[is_hr], return_counts=True)
    full = set(hr_minutes[n >= 6].tolist())
    first = int(hr_minutes[0]) + 2160                 # from 36 h in: a daytime span with heart rate in every minute
    start = next(m for m in range(first, first + 1440) if all(m + k in full for k in range(40)))
    stuck = list(range(start, start + 40))
    means = {m: t.value[is_hr & (minute == m)].mean() for m in range(start + 200, start + 1400)}
    spike = next(m for m in range(start + 202, start + 1398)
                 if all(m + k in full for k in range(-2, 3))
                 and np.ptp([means[m + k] for k in range(-2, 3)]) < 8 and means[m] < 150)
    value = t.value.to_numpy().copy()
    value[is_hr & np.isin(minute, stuck)] = 45.3
    value[is_hr & (minute == spike)] = means[spike] + 60
    t["value"] = value
    pq.write_table(pa.Table.from_pandas(t, preserve_index=False), parquet_path)
    return stuck, spike


def test_cleaning_in_the_pipeline_reaches_windows_and_the_metadata_db(local_run, copied_sources, base_config):
    from sensorpipe.metadata.store import MetadataStore
    from sensorpipe.runners.driver import run_pipeline
    from tests.conftest import write_config

    # the demo cohort is clean: the default rules change nothing (steps zeros at night, sleep stages, CGM
    # limits and off-wrist gaps are real data)
    assert all(u.stats.under("cleaned") == {} for u in local_run.units)
    stuck, spike = _inject_artifacts(copied_sources / "fitbit_cohort" / "minute" / "fc001.parquet")
    cfg = dict(base_config, sources=[s for s in base_config["sources"] if s["name"] == "fitbit_cohort"])
    result = run_pipeline(str(write_config(copied_sources, cfg)), runner="local")
    (unit,) = [u for u in result.units if u.key == "fitbit_cohort/fc001"]
    assert unit.stats.under("cleaned") == {"heart_rate:flatline": 40, "heart_rate:spike": 1}
    assert all(u.stats.under("cleaned") == {} for u in result.units if u is not unit)
    cache = load_arrays(unit.cache)                    # the windows cut after cleaning: those minutes are missing
    start, observed = cache["start_utc_min"], cache["observed"]
    hr = cfg["channels"].index("heart_rate")
    for m in stuck + [spike]:
        (w,) = np.flatnonzero((start <= m) & (m < start + observed.shape[1]))
        assert not observed[w, m - start[w], hr]
    assert observed[w, :, hr].sum() > 1000             # the rest of that day's heart rate is kept
    quality = {(q["scope"], q["name"]): q["value"] for q in MetadataStore(result.metadata_url).quality(result.fingerprint)}
    assert quality[("study:fitbit_cohort", "cleaned:heart_rate:flatline")] == 40   # one grid per person of a study
    assert quality[("study:fitbit_cohort", "cleaned:heart_rate:spike")] == 1
    assert quality[("channel:heart_rate", "cleaned:flatline")] == 40
    assert quality[("channel:heart_rate", "cleaned:spike")] == 1
    assert not any(name.startswith("cleaned:") and scope != "study:fitbit_cohort" and scope != "channel:heart_rate"
                   for scope, name in quality)
    assert "<td>heart_rate</td><td>flatline</td><td>40</td>" in Path(result.report).read_text()


def test_the_readme_cleaning_example_is_a_valid_config():
    import re

    import yaml

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("### Cleaning"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    cfg = build_dataclass(CleaningConfig, yaml.safe_load(block)["cleaning"], "cleaning")
    assert clean.channel_rules("steps", cfg).hampel_k == 6.0
    assert clean.channel_rules("skin_temperature", cfg).flatline_min == 0
    assert clean.channel_rules("heart_rate", cfg).sentinels == (0.0, 255.0)   # kept from the defaults
