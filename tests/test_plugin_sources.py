"""Plugins of the sources, labels and channels groups: an installed package's adapter, label processor and channel.

The example plugin (tests/plugins/sensorpipe_pulselog_plugin) is pip-installed into a temporary folder: a real
dist-info with its entry points, found by ``importlib.metadata``. The pipeline runs in a fresh interpreter with
that folder on its path (the channel registry's order is fixed when a process first validates, so a process
that validated before the plugin was installed cannot take its channel); spawned workers load the groups
themselves.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

from sensorpipe import _version, channels, plugins
from sensorpipe.config import ConfigError, load_config
from sensorpipe.core.labels import BY_NAME
from sensorpipe.labels import base as labels_base
from sensorpipe.sources import base as sources_base

PLUGIN_SRC = Path(__file__).parent / "plugins" / "sensorpipe_pulselog_plugin"
GROUPS = ("sensorpipe.sources", "sensorpipe.labels", "sensorpipe.channels")


def _forget() -> None:
    sys.modules.pop("sensorpipe_pulselog_plugin", None)
    sources_base._ADAPTERS.pop("pulselog", None)
    labels_base._PROCESSORS.pop("pulselog_activity", None)
    if channels.CHANNELS.pop("perfusion_index", None) is not None:
        channels._CHANNELS = channels._BUILT_IN
    for g in GROUPS:
        plugins._forget(g)
    _version.code_version.cache_clear()


def _install(src: Path, target: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--disable-pip-version-check", "--upgrade", "--target", str(target), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"building the example plugin failed:\n{proc.stderr[-2000:]}"


@pytest.fixture
def installed_plugin(tmp_path):
    """``pip install --target`` a copy of the pulselog plugin, on sys.path (spawned workers inherit it)."""
    src, target = tmp_path / "plugin_src", tmp_path / "site"
    shutil.copytree(PLUGIN_SRC, src)
    _install(src, target)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    _forget()
    yield src, target
    sys.path.remove(str(target))
    _forget()


ACTIVITY = {"p1": "walking", "p2": "cycling"}


def _config(tmp_path: Path, runner: dict) -> dict:
    """Two pulselog files, a reading every minute 10:00-11:59 UTC; the first hour labelled with an activity."""
    d = tmp_path / "logs"
    d.mkdir()
    minutes = np.arange(np.datetime64("2024-05-02T10:00"), np.datetime64("2024-05-02T12:00"))
    for pid, act in ACTIVITY.items():
        rows = [f"{m}:00Z,{60 + i % 9},{1 + i % 4}.5,{act if i < 60 else ''}" for i, m in enumerate(minutes)]
        (d / f"{pid}.pulselog").write_text("utc,bpm,pi,activity\n" + "\n".join(rows) + "\n")
    return {"sources": [{"name": "pl", "adapter": "pulselog", "path": str(d), "options": {"tz": "UTC"}}],
            "channels": ["heart_rate", "perfusion_index"],
            "window": {"size_min": 60, "stride_min": 60, "max_missing_ratio": 0.5},
            "output": {"dir": str(tmp_path / "out"), "name": "pl"}, "privacy": {"pseudonymize": False},
            "splits": {"train": 1.0, "validation": 0.0, "test": 0.0}, "runner": runner,
            "normalization": {"default": "none"}}   # input holds the rows as read


RUN = """import json, sys
from sensorpipe.config import load_config
from sensorpipe.runners.driver import run_pipeline
print(run_pipeline(load_config(json.load(open(sys.argv[1])))).output_dir)
"""


@pytest.mark.parametrize("runner", [{"name": "local"},
                                    {"name": "multiprocess", "workers": 2, "start_method": "spawn"}],
                         ids=["local", "spawn"])
def test_a_pipeline_reads_the_plugin_source_channel_and_labels(installed_plugin, tmp_path, runner):
    import sensorpipe

    _, target = installed_plugin
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(_config(tmp_path, runner)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *sys.path])}
    proc = subprocess.run([sys.executable, "-c", RUN, str(cfg)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.strip().splitlines()[-1]
    names = BY_NAME["activity"].names
    got = sorted((ex["participant_id"], str(np.datetime64(int(ex["start_utc"]), "s")),
                  int(ex["labels"]["activity"]), ex["input"].T.tolist(), bool(ex["mask"].any()))
                 for ex in sensorpipe.open(out)["train"])
    bpm = [60 + i % 9 for i in range(120)]        # the rows, unchanged: heart rate, then the plugin's channel
    pi = [1.5 + i % 4 for i in range(120)]
    assert got == [(p, f"2024-05-02T{h}:00:00", names.index(ACTIVITY[p]) if h == "10" else -1,
                    [bpm[:60], pi[:60]] if h == "10" else [bpm[60:], pi[60:]], False)
                   for p in ("p1", "p2") for h in ("10", "11")]
    features = json.loads(next(Path(out).rglob("features.json")).read_text())
    assert "perfusion_index" in json.dumps(features)
    assert plugins.installed("sensorpipe.sources") == {"pulselog": "sensorpipe-pulselog-plugin==0.1.0"}
    assert plugins.installed("sensorpipe.labels") == {"pulselog_activity": "sensorpipe-pulselog-plugin==0.1.0"}
    assert plugins.installed("sensorpipe.channels") == {"perfusion_index": "sensorpipe-pulselog-plugin==0.1.0"}


def test_the_plugin_channel_enters_the_registry_fingerprint(installed_plugin):
    before = channels.registry_fingerprint()   # loads the channels group: the plugin's channel is added
    assert channels.get("perfusion_index").unit == "%" and list(channels.CHANNELS)[-1] == "perfusion_index"
    _forget()
    assert channels.registry_fingerprint() == before   # loaded again, same channel, same fingerprint
    channels.CHANNELS.pop("perfusion_index")
    channels._CHANNELS = channels._BUILT_IN
    plugins._loaded["sensorpipe.channels"] = ()         # as in a process without the plugin
    assert channels.registry_fingerprint() != before


def test_the_code_version_follows_the_plugin_code(installed_plugin, tmp_path):
    src, target = installed_plugin
    before = _version.code_version()
    module = src / "sensorpipe_pulselog_plugin.py"
    module.write_text(module.read_text().replace('HEADER = ["utc", "bpm", "pi", "activity"]',
                                                 'HEADER = ["utc", "bpm", "pi", "activity"]  # changed'))
    _install(src, target)   # same name and version 0.1.0: only the code differs
    _forget()
    assert _version.code_version() != before


def _fake(monkeypatch, group: str, *pairs: tuple[str, str]) -> None:
    monkeypatch.setattr(plugins, "_loaded", {})
    eps = [EntryPoint(n, v, group) for n, v in pairs]
    monkeypatch.setattr(plugins, "_entry_points", lambda g: eps if g == group else [])


def test_a_plugin_taking_a_built_in_adapter_name_is_named(monkeypatch):
    sources_base.get_adapter("long_table")   # built-ins registered first
    _fake(monkeypatch, "sensorpipe.sources", ("long_table", "tests.plugins_clash:LongTable"))
    sys.modules.pop("tests.plugins_clash", None)
    with pytest.raises(plugins.PluginError, match=r"plugin 'long_table' \(tests.plugins_clash:LongTable, "
                                                  r"entry-point group sensorpipe.sources\) failed to import: "
                                                  r"TypeError: source adapter name 'long_table' is already "
                                                  r"registered by sensorpipe.sources.long_table.LongTableAdapter "
                                                  r"\(module sensorpipe.sources.long_table\); "
                                                  r"tests.plugins_clash.LongTable \(module tests.plugins_clash\) "
                                                  r"cannot take the name too"):
        sources_base.get_adapter("plugin_only")


def test_a_plugin_taking_the_adapter_name_the_config_uses_is_named(monkeypatch):
    sources_base.get_adapter("long_table")   # the built-in is registered already: the plugin must still be loaded
    _fake(monkeypatch, "sensorpipe.sources", ("long_table", "tests.plugins_clash:LongTable"))
    sys.modules.pop("tests.plugins_clash", None)
    with pytest.raises(plugins.PluginError, match=r"plugin 'long_table' \(tests.plugins_clash:LongTable, .*already "
                                                  r"registered by sensorpipe.sources.long_table.LongTableAdapter"):
        sources_base.get_adapter("long_table")


def test_a_built_in_adapter_is_found_by_importing_its_own_module_only():
    """A run names one adapter of ~20: its module is imported, the others only for a name held elsewhere."""
    code = ("import sys; from sensorpipe.sources.base import get_adapter; a = get_adapter('long_table'); "
            "print(a.__module__, 'sensorpipe.sources.wesad' in sys.modules); "
            "print(get_adapter('garmin_activity').__module__, 'sensorpipe.sources.wesad' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["sensorpipe.sources.long_table", "False", "sensorpipe.sources.garmin.activity", "True"]


def test_a_plugin_channel_taking_a_built_in_name_is_refused(monkeypatch):
    _fake(monkeypatch, "sensorpipe.channels", ("heart_rate", "tests.plugins_clash_channel:HeartRate"))
    monkeypatch.setattr(channels, "_CHANNELS", channels._CHANNELS)
    sys.modules.pop("tests.plugins_clash_channel", None)
    with pytest.raises(plugins.PluginError, match=r"plugin 'heart_rate' \(tests.plugins_clash_channel:HeartRate, entry-point "
                                                  r"group sensorpipe.channels\) failed to import: TypeError: channel "
                                                  r"'heart_rate' is already registered"):
        channels.get("plugin_only")
    assert channels.CHANNELS["heart_rate"].unit == "bpm"


def test_a_broken_label_plugin_stops_the_labels_with_its_name(monkeypatch):
    _fake(monkeypatch, "sensorpipe.labels", ("broken", "no_such_module_j15:Broken"))
    unit = object()
    with pytest.raises(plugins.PluginError, match=r"plugin 'broken' \(no_such_module_j15:Broken, entry-point group "
                                                  r"sensorpipe.labels\) failed to import: ModuleNotFoundError"):
        labels_base.processors_for(unit)


def test_an_unknown_adapter_names_the_plugin_group(monkeypatch):
    _fake(monkeypatch, "sensorpipe.sources")
    with pytest.raises(ConfigError, match=r"sources\[0\].adapter: unknown adapter 'nope'; registered: .*long_table.* "
                                          r"plugins of entry-point group sensorpipe.sources"):
        sources_base.get_adapter("nope", "sources[0].adapter")
