"""Windowing strategies: fixed, event-centred, missingness-stratified, minimum coverage; drops counted by reason."""

from __future__ import annotations

import copy
import hashlib
import shutil
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sensorpipe.config import ConfigError, EventWindowConfig, SourceConfig, StratifiedWindowConfig, WindowConfig, \
    load_config
from sensorpipe.core.grid import MinuteGrid
from sensorpipe.core.labels import BY_NAME
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.labels.base import labels_for_windows
from sensorpipe.runners.plan import load_plan
from sensorpipe.processing.window import cut_windows
from sensorpipe.processing.windowing import WindowingStrategy, base, register_windowing, strategy_names

DAY0 = int(np.datetime64("2024-03-07T00:00", "m").astype(np.int64))   # grid row 0, UTC minutes
CH = ("heart_rate", "steps")


def _grid(observed: np.ndarray) -> MinuteGrid:
    values = np.where(observed, np.arange(observed.size, dtype=np.float32).reshape(observed.shape), np.nan)
    rows = np.flatnonzero(observed.any(axis=1))
    return MinuteGrid(DAY0, values.astype(np.float32), observed, np.zeros(len(observed), np.int16), CH,
                      int(rows[0]), int(rows[-1]))


def _hourly(**kw) -> WindowConfig:
    return WindowConfig(size_min=60, stride_min=60, alignment="none", **kw)


def test_builtins_registered_and_old_config_shape_means_fixed(base_config, tmp_path):
    assert {"fixed", "event", "missingness_stratified"} <= set(strategy_names())
    cfg = load_config(copy.deepcopy(base_config), base_dir=str(tmp_path))
    assert (cfg.window.strategy, cfg.window.required_coverage, cfg.window.options) == ("fixed", {}, {})


def test_fixed_cuts_every_stride_from_the_first_observation():
    obs = np.zeros((3 * 1440, 2), bool)
    obs[1450:1450 + 300, 0] = True
    grid = _grid(obs)
    win = cut_windows(grid, _hourly(max_missing_ratio=1.0))
    assert win.start_row.tolist() == [1450, 1510, 1570, 1630, 1690]
    np.testing.assert_array_equal(win.values[2], grid.values[1570:1630])
    assert win.dropped == {} and win.minutes_not_windowed == 0


def test_min_coverage_per_required_channel_after_too_missing():
    obs = np.zeros((3 * 1440, 2), bool)
    day = slice(1440, 2880)
    obs[day, 0] = True                                   # heart rate all day ...
    obs[1440 + 20 * 60:1440 + 24 * 60, 0] = False        # ... except hours 20-23
    obs[1440 + 20 * 60:1440 + 24 * 60:3, 0] = True       # where a third of the minutes remain
    obs[1440:1440 + 11 * 60, 1] = True                   # steps in hours 0-10
    obs[1440 + 11 * 60:1440 + 11 * 60 + 30, 1] = True    # and exactly half of hour 11
    cfg = _hourly(max_missing_ratio=0.6, required_coverage={"steps": 0.5})
    win = cut_windows(_grid(obs), cfg)
    # hours 0-11 kept (hour 11 sits exactly at the threshold); 12-19 lack steps; 20-23 miss 83 % overall
    assert ((win.start_row - 1440) // 60).tolist() == list(range(12))
    assert win.dropped == {"too_missing": 4, "below_min_coverage:steps": 8}
    loose = cut_windows(_grid(obs), _hourly(max_missing_ratio=0.6))
    assert len(loose) == 20 and loose.dropped == {"too_missing": 4}


def _stratified_grid() -> tuple[MinuteGrid, np.ndarray]:
    """70 hourly windows; window i observes its first k minutes of heart rate, k cycling over 7 values."""
    k = np.tile([60, 50, 40, 30, 20, 10, 3], 10)
    obs = np.zeros((1440 + 70 * 60 + 1440, 1), bool)
    for i, n in enumerate(k):  # test set-up, one slice per window
        obs[1440 + 60 * i:1440 + 60 * i + n, 0] = True
    g = _grid(np.repeat(obs, 2, axis=1))
    g.observed[:, 1] = g.observed[:, 0]
    return g, 1.0 - k / 60


def _rank(salt: str, unit_key: str, start: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}\0{unit_key}\0{start}".encode()).digest()[:8], "big")


def test_stratified_keeps_at_most_n_per_bucket_chosen_by_keyed_hash():
    grid, missing = _stratified_grid()
    sc = StratifiedWindowConfig(per_bucket=3)
    cfg = _hourly(max_missing_ratio=1.0, strategy="missingness_stratified", stratified=sc)
    unit = SimpleNamespace(key="cohort/p1")
    win = cut_windows(grid, cfg, unit)
    assert win.dropped == {"not_sampled:0-0.1": 7, "not_sampled:0.1-0.3": 7, "not_sampled:0.3-0.5": 7,
                           "not_sampled:0.5-0.8": 17, "not_sampled:0.8-1": 17}
    assert len(win) == 15 and (np.diff(win.start_row) > 0).all()
    # independently: per bucket, the 3 windows with the smallest SHA-256 of (salt, participant, start)
    bucket = np.searchsorted([0.1, 0.3, 0.5, 0.8], missing, side="right")
    starts = 1440 + 60 * np.arange(70)
    expected = []
    for b in range(5):
        members = starts[bucket == b]
        expected += sorted(members, key=lambda s: _rank(sc.salt, unit.key, DAY0 + s))[:3]
    assert win.start_row.tolist() == sorted(expected)
    again = cut_windows(grid, cfg, unit)
    assert np.array_equal(again.start_row, win.start_row)
    other = cut_windows(grid, cfg, SimpleNamespace(key="cohort/p2"))
    assert not np.array_equal(other.start_row, win.start_row) and len(other) == 15


def _segments_unit(tmp_path) -> UnitRef:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "segments.csv").write_text(
        "participant_id,start_utc,end_utc,condition\n"
        "p1,2024-03-08T10:00:00Z,2024-03-08T10:20:00Z,baseline\n"
        "p1,2024-03-08T10:20:00Z,2024-03-08T10:30:00Z,stress\n"
        "p1,2024-03-08T10:30:00Z,2024-03-08T10:50:00Z,recovery\n"
        "p2,2024-03-08T11:00:00Z,2024-03-08T11:20:00Z,stress\n"
        "p1,2024-03-20T10:00:00Z,2024-03-20T10:20:00Z,baseline\n")   # a session the sensors missed
    src = SourceConfig(name="lab", adapter="empatica_e4", path="lab", options={"segments": "segments.csv"})
    return UnitRef(src, str(tmp_path), Participant("p1", "UTC"), ())


def test_event_windows_start_offset_before_each_label_event(tmp_path):
    unit = _segments_unit(tmp_path)
    obs = np.zeros((3 * 1440, 2), bool)
    obs[1440 + 9 * 60:1440 + 12 * 60, 0] = True            # heart rate 09:00-12:00 on Mar 8
    cfg = WindowConfig(size_min=10, max_missing_ratio=1.0, strategy="event",
                       event=EventWindowConfig(offset_before_min=2))
    win = cut_windows(_grid(obs), cfg, unit)
    start_utc = DAY0 + win.start_row
    hhmm = [str(np.datetime64(int(s), "m"))[11:] for s in start_utc]
    assert hhmm == ["09:58", "10:18", "10:28"]
    assert win.dropped == {"no_data": 1}
    batch = replace(win, unit=unit)
    assert batch.channels == ("heart_rate", "steps") and np.array_equal(batch.start_utc_min, start_utc)
    labels = labels_for_windows(batch)
    names = BY_NAME["condition"].names
    assert [names[c] for c in labels["condition"]] == ["baseline", "stress", "recovery"]


def test_a_registered_strategy_gets_duplicates_counted():
    @register_windowing   # subclassing registered it already: the decorator is a no-op
    class Twice(WindowingStrategy):
        name = "twice_at_noon"

        def starts(self, grid, unit):
            return np.array([1440 + 720, 1440 + 720, 2 * 1440 + 720])

    obs = np.zeros((3 * 1440, 2), bool)
    obs[1440:2880] = True
    win = cut_windows(_grid(obs), _hourly(strategy="twice_at_noon"))
    assert win.start_row.tolist() == [2160] and win.dropped == {"duplicate_start": 1}  # the day-3 one has no data
    with pytest.raises(TypeError, match="already registered"):
        register_windowing(type("Other", (Twice,), {}))
    with pytest.raises(TypeError, match="must implement starts"):
        register_windowing(type("NoStarts", (WindowingStrategy,), {"name": "no_starts"}))


@pytest.mark.parametrize("window, expected", [
    ({"strategy": "nope"}, "window.strategy: unknown windowing strategy 'nope'; allowed: event, fixed, "
                           "missingness_stratified"),
    ({"stratified": {"per_bucket": 2}}, "window.stratified is set but window.strategy is 'fixed'"),
    ({"strategy": "event", "event": {"offset_before_min": 1440}},
     "window.event.offset_before_min (1440) must be below window.size_min (1440)"),
    ({"strategy": "missingness_stratified", "stratified": {"buckets": [0, 0.5, 0.4, 1]}},
     "window.stratified.buckets must rise strictly from 0 to 1"),
    ({"strategy": "missingness_stratified", "stratified": {"per_bucket": 0}}, "window.stratified.per_bucket must be between 1 and 1000000000, got 0"),
    ({"required_coverage": {"glucose": 0.5}}, "window.required_coverage.glucose: not one of the output channels"),
    ({"required_coverage": {"heart_rate": 1.5}}, "window.required_coverage.heart_rate must be between 0 and 1"),
    ({"options": {"every_h": 2}}, "window.options: strategy 'fixed' takes no options"),
    ({"event": {"offset_before_min": -5}, "strategy": "event"}, "window.event.offset_before_min must be between 0 and 527040 minutes, got -5"),
])
def test_bad_window_config_is_named(base_config, tmp_path, window, expected):
    cfg = copy.deepcopy(base_config)
    cfg["channels"] = [c for c in cfg["channels"] if c != "glucose"]
    cfg["window"].update(window)
    with pytest.raises(ConfigError) as e:
        load_plan(cfg, base_dir=str(tmp_path))
    assert expected in str(e.value)


def test_event_windows_in_a_pipeline_carry_the_event_label(base_config, sources_dir, tmp_path):
    import sensorpipe
    from sensorpipe.runners.driver import run_pipeline

    lab = tmp_path / "stress_lab"   # one participant of the shared E4 study (half the signal processing)
    shutil.copytree(sources_dir / "stress_lab" / "sl001", lab / "sl001")
    for name in ("participants.csv", "segments.csv"):
        shutil.copy(sources_dir / "stress_lab" / name, lab / name)
    shutil.copy(sources_dir / "pseudonym.key", tmp_path / "pseudonym.key")
    cfg = copy.deepcopy(base_config)
    cfg["sources"] = [s for s in cfg["sources"] if s["name"] == "stress_lab"]
    cfg["window"] = {"strategy": "event", "size_min": 10, "max_missing_ratio": 1.0, "event": {"offset_before_min": 0}}
    cfg["output"]["dir"] = str(tmp_path / "out")
    cfg["splits"] = {"train": 1.0, "validation": 0.0, "test": 0.0}
    r = run_pipeline(load_config(cfg, base_dir=str(tmp_path)))
    ds = sensorpipe.open(r.output_dir)
    names = BY_NAME["condition"].names
    got = sorted((int(ex["start_utc"]), names[ex["labels"]["condition"]]) for ex in ds["train"])
    assert [c for _, c in got] == ["baseline", "stress", "recovery"] and r.windows_dropped == {}
    segs = pd.read_csv(lab / "segments.csv").query("participant_id == 'sl001'")
    event_s = (pd.to_datetime(segs.start_utc) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1min") * 60
    assert [s for s, _ in got] == sorted(event_s)   # each window starts at its event's minute


def test_stratified_and_coverage_drops_reach_the_metadata(base_config, sources_dir, tmp_path):
    import sensorpipe
    from sensorpipe.metadata.store import MetadataStore
    from sensorpipe.runners.driver import run_pipeline

    cfg = copy.deepcopy(base_config)
    cfg["sources"] = [s for s in cfg["sources"] if s["name"] == "fitbit_cohort"]
    cfg["window"] = {"size_min": 120, "stride_min": 120, "alignment": "utc_midnight", "max_missing_ratio": 1.0,
                     "strategy": "missingness_stratified", "required_coverage": {"heart_rate": 0.95},
                     "stratified": {"per_bucket": 2, "buckets": [0, 0.3, 0.6, 1]}}
    cfg["output"]["dir"] = str(tmp_path / "out")
    cfg["splits"] = {"train": 1.0, "validation": 0.0, "test": 0.0}
    pc = load_config(cfg, base_dir=str(sources_dir))
    r = run_pipeline(pc)
    quality = {q["name"]: q["value"] for q in MetadataStore(pc.metadata_url).quality(r.fingerprint)
               if q["scope"] == "dataset"}
    assert r.windows_dropped and all(quality[f"windows_dropped:{k}"] == v for k, v in r.windows_dropped.items())
    assert {k.split(":")[0] for k in r.windows_dropped} <= {"below_min_coverage", "not_sampled"}
    per_bucket: dict[tuple, int] = {}
    for ex in sensorpipe.open(r.output_dir)["train"]:
        key = (ex["participant_id"], int(np.searchsorted([0.3, 0.6], ex["missingness_ratio"], side="right")))
        per_bucket[key] = per_bucket.get(key, 0) + 1
    assert max(per_bucket.values()) == 2 and len(r.units) == 4
    # every fixed candidate with data is kept or counted: nothing lost silently
    plain = dict(cfg["window"], strategy="fixed", required_coverage={})
    plain.pop("stratified")
    r_all = run_pipeline(load_config(dict(cfg, window=plain, output=dict(cfg["output"], dir=str(tmp_path / "all"))),
                                     base_dir=str(sources_dir)))
    assert r.windows_kept + sum(r.windows_dropped.values()) == r_all.windows_kept and not r_all.windows_dropped
