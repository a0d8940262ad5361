"""Plugins: a real installed package's windowing strategy runs by name, in spawned workers too; bad plugins are named."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

from sensorpipe import _version, plugins
from sensorpipe.config import ConfigError, load_config
from sensorpipe.runners.plan import load_plan
from sensorpipe.processing.windowing import WindowingStrategy, base, get_strategy

PLUGIN_SRC = Path(__file__).parent / "plugins" / "sensorpipe_example_plugin"
GROUP = "sensorpipe.windowing"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """``pip install --target`` the example plugin (built from a copy: no build files in tests/), on sys.path."""
    tmp = tmp_path_factory.mktemp("plugin")
    src, target = tmp / "src", tmp / "site"
    shutil.copytree(PLUGIN_SRC, src)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--disable-pip-version-check", "--target", str(target), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, ("building the example plugin needs setuptools with bdist_wheel "
                                  f"(pip install wheel):\n{proc.stderr[-2000:]}")
    sys.path.insert(0, str(target))   # spawned workers inherit sys.path, so they see the entry point too
    importlib.invalidate_caches()
    plugins._forget(GROUP)
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("sensorpipe_example_plugin", None)
    base._STRATEGIES.pop("top_of_hour", None)
    plugins._forget(GROUP)
    _version.code_version.cache_clear()   # it hashed the plugin; later runs in this process must not


def _long_table_config(tmp_path: Path, window: dict) -> dict:
    """Two participants with heart rate every minute 09:30-15:29 UTC on one day."""
    d = tmp_path / "d"
    d.mkdir()
    minutes = np.arange(np.datetime64("2024-05-02T09:30"), np.datetime64("2024-05-02T15:30"))
    for pid in ("p1", "p2"):
        rows = [f"{pid},{m}:00Z,hr,{60 + i % 7}" for i, m in enumerate(minutes)]
        (d / f"{pid}.csv").write_text("participant,t,signal,value\n" + "\n".join(rows) + "\n")
    return {"sources": [{"name": "tiny", "adapter": "long_table", "path": str(d), "options": {
                "tz": "Europe/Berlin", "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}},
                "files": [{"glob": "*.csv", "participant_column": "participant", "field_column": "signal",
                           "time_column": "t", "time_format": "iso", "value_column": "value"}]}}],
            "channels": ["heart_rate"], "window": window, "output": {"dir": str(tmp_path / "out"), "name": "tiny"},
            "privacy": {"pseudonymize": False}, "splits": {"train": 1.0, "validation": 0.0, "test": 0.0},
            "runner": {"name": "multiprocess", "workers": 2, "start_method": "forkserver"}}  # fresh workers


def test_pipeline_uses_the_plugin_strategy_by_name_in_spawned_workers(installed_plugin, tmp_path):
    import sensorpipe
    from sensorpipe.runners.driver import run_pipeline

    window = {"strategy": "top_of_hour", "options": {"every_h": 2}, "size_min": 60, "max_missing_ratio": 1.0}
    r = run_pipeline(load_config(_long_table_config(tmp_path, window)))
    starts = sorted((ex["participant_id"], str(np.datetime64(int(ex["start_utc"]), "s")))
                    for ex in sensorpipe.open(r.output_dir)["train"])
    assert starts == [(p, f"2024-05-02T{h}:00:00") for p in ("p1", "p2") for h in ("10", "12", "14")]
    # 09:30-09:59, 11:xx, 13:xx and 15:00-15:29 are outside every window, per participant
    assert [u.stats.counts["minutes_not_windowed"] for u in r.units] == [180, 180] and r.windows_dropped == {}
    assert plugins.installed(GROUP) == {"top_of_hour": "sensorpipe-example-plugin==0.1.0"}


def test_plugin_names_are_listed_and_their_options_checked(installed_plugin, tmp_path):
    window = {"strategy": "top_of_hour", "options": {"every_h": "two"}, "size_min": 60}
    with pytest.raises(ConfigError, match=r"window\.options\.every_h: expected an integer, got 'two'"):
        load_plan(_long_table_config(tmp_path, window))
    with pytest.raises(ConfigError) as e:
        get_strategy("hourly")
    assert "unknown windowing strategy 'hourly'; allowed: event, fixed, missingness_stratified, top_of_hour" in str(e.value)


class NotAStrategy:
    name = "not_a_strategy"


class Named(WindowingStrategy, register=False):   # registered only when a (fake) entry point loads it
    name = "named"

    def starts(self, grid, unit):
        return np.zeros(0, np.int64)


NOT_A_CLASS = 42


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace installed entry points with the given (name, value) pairs; the registry is restored after."""
    monkeypatch.setattr(plugins, "_loaded", {})

    def use(*pairs):
        eps = [EntryPoint(n, v, GROUP) for n, v in pairs]
        monkeypatch.setattr(plugins, "_entry_points", lambda group: eps if group == GROUP else [])
    with base._STRATEGIES.scoped():
        yield use


@pytest.mark.parametrize("pair, needle", [
    (("gone", "sensorpipe_no_such_module:Gone"),
     "plugin 'gone' (sensorpipe_no_such_module:Gone, entry-point group sensorpipe.windowing) failed to import: "
     "ModuleNotFoundError"),
    (("not_a_class", "tests.test_plugins:NOT_A_CLASS"), "must name a class, got int 42"),
    (("not_a_strategy", "tests.test_plugins:NotAStrategy"), "was refused by the registry: <class "
                                                             "'tests.test_plugins.NotAStrategy'> is not a subclass"),
    (("renamed", "tests.test_plugins:Named"), "the class's name is 'named' but the entry point is named 'renamed'"),
])
def test_a_broken_plugin_is_named_with_the_fix(fake_entry_points, pair, needle):
    fake_entry_points(pair)
    with pytest.raises(plugins.PluginError) as e:
        get_strategy("anything")
    assert needle in str(e.value)
    assert isinstance(e.value, ConfigError)   # the CLI prints it as a message, not a traceback


def test_plugins_load_once_per_process(fake_entry_points, monkeypatch):
    fake_entry_points(("named", "tests.test_plugins:Named"))
    calls = []
    real = plugins._load_one
    monkeypatch.setattr(plugins, "_load_one", lambda *a: calls.append(a[0].name) or real(*a))
    assert get_strategy("named") is Named and get_strategy("named") is Named
    assert plugins.load_plugins(GROUP) == ("named",) and calls == ["named"]


def test_every_registry_is_a_plugin_group_and_unknown_groups_are_named(monkeypatch):
    from sensorpipe.registry import REGISTRIES

    get_strategy("fixed")   # the windowing registry exists once its module is imported
    assert {r.group for r in REGISTRIES.values()} <= set(plugins.GROUPS)
    assert plugins.GROUPS[GROUP].register == base._STRATEGIES.add and plugins.GROUPS[GROUP].name_attr == "name"
    monkeypatch.setattr(plugins, "_loaded", {})
    with pytest.raises(plugins.PluginError, match="unknown plugin group 'sensorpipe.widgets'; groups: "):
        plugins.load_plugins("sensorpipe.widgets")


def test_one_entry_point_scan_serves_every_group_until_the_import_caches_are_invalidated(monkeypatch):
    scans = []
    real = plugins.metadata.entry_points
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda **kw: scans.append(kw) or real(**kw))
    importlib.invalidate_caches()
    for group in plugins.GROUPS:
        plugins.installed(group)
    _version.plugins_digest()
    assert len(scans) == 1                      # not one per group and one more for the code version
    importlib.invalidate_caches()               # what code that installs a package in a running process calls
    plugins.installed(GROUP)
    assert len(scans) == 2
    sys.path.append("/nonexistent-sensorpipe-site")   # a changed sys.path is scanned again too
    try:
        plugins.installed(GROUP)
        assert len(scans) == 3
    finally:
        sys.path.remove("/nonexistent-sensorpipe-site")
