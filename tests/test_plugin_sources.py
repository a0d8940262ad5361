"""Plugins of the sources and labels groups: an installed package's adapter and label processor run by config name.

The example plugin (tests/plugins/sensorpipe_pulselog_plugin) is pip-installed into a temporary folder on
sys.path: a real dist-info with its entry points, found by ``importlib.metadata`` in the driver and, through
the inherited sys.path, in spawned workers, which load the groups themselves.
"""

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
from sensorpipe.labels import base as labels_base
from sensorpipe.labels.schema import BY_NAME
from sensorpipe.sources import base as sources_base

PLUGIN_SRC = Path(__file__).parent / "plugins" / "sensorpipe_pulselog_plugin"
GROUPS = ("sensorpipe.sources", "sensorpipe.labels")


def _forget() -> None:
    sys.modules.pop("sensorpipe_pulselog_plugin", None)
    sources_base._ADAPTERS.pop("pulselog", None)
    labels_base._PROCESSORS.pop("pulselog_activity", None)
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
    """Two pulselog files, heart rate every minute 10:00-11:59 UTC; the first hour labelled with an activity."""
    d = tmp_path / "logs"
    d.mkdir()
    minutes = np.arange(np.datetime64("2024-05-02T10:00"), np.datetime64("2024-05-02T12:00"))
    for pid, act in ACTIVITY.items():
        rows = [f"{m}:00Z,{60 + i % 9},{act if i < 60 else ''}" for i, m in enumerate(minutes)]
        (d / f"{pid}.pulselog").write_text("utc,bpm,activity\n" + "\n".join(rows) + "\n")
    return {"sources": [{"name": "pl", "adapter": "pulselog", "path": str(d), "options": {"tz": "UTC"}}],
            "channels": ["heart_rate"], "window": {"size_min": 60, "stride_min": 60, "max_missing_ratio": 0.5},
            "output": {"dir": str(tmp_path / "out"), "name": "pl"}, "privacy": {"pseudonymize": False},
            "splits": {"train": 1.0, "validation": 0.0, "test": 0.0}, "runner": runner,
            "normalization": {"default": "none"}}   # input holds the rows as read


@pytest.mark.parametrize("runner", [{"name": "local"},
                                    {"name": "multiprocess", "workers": 2, "start_method": "spawn"}],
                         ids=["local", "spawn"])
def test_a_pipeline_reads_the_plugin_source_and_labels(installed_plugin, tmp_path, runner):
    import sensorpipe
    from sensorpipe.runners.driver import run_pipeline

    r = run_pipeline(load_config(_config(tmp_path, runner)))
    names = BY_NAME["activity"].names
    got = sorted((ex["participant_id"].decode(), str(np.datetime64(int(ex["start_utc"]), "s")),
                  int(ex["labels"]["activity"]), ex["input"][:, 0].tolist(), bool(ex["mask"].any()))
                 for ex in sensorpipe.open(r.output_dir)["train"])
    bpm = [60 + i % 9 for i in range(120)]   # the rows, unchanged (heart rate is the only channel)
    assert got == [(p, f"2024-05-02T{h}:00:00", names.index(ACTIVITY[p]) if h == "10" else -1,
                    bpm[:60] if h == "10" else bpm[60:], False) for p in ("p1", "p2") for h in ("10", "11")]
    assert plugins.installed("sensorpipe.sources") == {"pulselog": "sensorpipe-pulselog-plugin==0.1.0"}
    assert plugins.installed("sensorpipe.labels") == {"pulselog_activity": "sensorpipe-pulselog-plugin==0.1.0"}


def test_the_code_version_follows_the_plugin_code(installed_plugin, tmp_path):
    src, target = installed_plugin
    before = _version.code_version()
    module = src / "sensorpipe_pulselog_plugin.py"
    module.write_text(module.read_text().replace('HEADER = ["utc", "bpm", "activity"]',
                                                 'HEADER = ["utc", "bpm", "activity"]  # changed'))
    _install(src, target)   # same name and version 0.1.0: only the code differs
    _forget()
    assert _version.code_version() != before


def _fake(monkeypatch, group: str, *pairs: tuple[str, str]) -> None:
    monkeypatch.setattr(sources_base, "_ADAPTERS", dict(sources_base._ADAPTERS))
    monkeypatch.setattr(labels_base, "_PROCESSORS", dict(labels_base._PROCESSORS))
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
                                                  r"registered by sensorpipe.sources.long_table"):
        sources_base.get_adapter("plugin_only")


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
