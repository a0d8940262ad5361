"""The unit cache key covers everything that changes the output: the key, plugin code, every plugin group."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import shutil
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import sensorpipe
from sensorpipe import _version, plugins
from sensorpipe.config import load_config
from sensorpipe.privacy.pseudonym import key_digest
from sensorpipe.processing import clean
from sensorpipe.runners.driver import run_pipeline
from tests.runners.tiny_cohort import config, shard_bytes, write_cohort


def _ids(out_dir: str) -> set[str]:
    return {ex["participant_id"] for ex in sensorpipe.open(out_dir)["train"]}


def test_a_new_key_file_recomputes_the_units_with_new_pseudonyms(tmp_path):
    write_cohort(tmp_path / "d", ("p1", "p2"))
    keys = {}
    for name in ("k1", "k2"):
        keys[name] = (name * 16).encode()
        (tmp_path / name).write_bytes(keys[name])
    cfg = {**config(tmp_path, tmp_path / "d"), "privacy": {"pseudonymize": True, "key_file": str(tmp_path / "k1")}}
    first = run_pipeline(load_config(cfg))
    expect = lambda key: {hmac.new(key, f"tiny/{p}".encode(), hashlib.sha256).hexdigest()[:16] for p in ("p1", "p2")}
    assert _ids(first.output_dir) == expect(keys["k1"])
    cfg["privacy"]["key_file"] = str(tmp_path / "k2")           # key rotation, same output folder and cache
    second = run_pipeline(load_config(cfg), overwrite=True)   # the same label, new content
    assert second.units_cached == {"pass1": 0, "pass2": 0}
    assert _ids(second.output_dir) == expect(keys["k2"]) and second.fingerprint != first.fingerprint
    cfg["privacy"]["key_file"] = str(tmp_path / "k1")           # back to the first key: its entries are still there
    third = run_pipeline(load_config(cfg), overwrite=True)
    assert third.units_cached == {"pass1": 2, "pass2": 2} and third.fingerprint == first.fingerprint


def test_the_key_enters_through_a_keyed_digest_only():
    key = b"0123456789abcdef0123456789abcdef"
    d = key_digest(key)
    assert d == hmac.new(key, b"sensorpipe/cache-key/v1", hashlib.sha256).hexdigest()[:16]
    assert key.hex()[:16] != d and hashlib.sha256(key).hexdigest()[:16] != d and key.decode()[:16] != d
    assert key_digest(b"another key of 32 bytes, really!") != d and key_digest(None) == "none"


def test_every_plugin_group_is_in_the_code_version(monkeypatch):
    assert _version.plugin_groups() == tuple(sorted(plugins.GROUPS))
    assert "sensorpipe.captions" in _version.plugin_groups()
    before = _version.plugins_digest()
    ep = EntryPoint("haiku", "tests.runners.tiny_cohort:config", "sensorpipe.captions")
    monkeypatch.setattr(plugins, "_entry_points", lambda group: [ep] if group == "sensorpipe.captions" else [])
    with_caption_plugin = _version.plugins_digest()
    assert with_caption_plugin != before
    assert (Path(__file__).parent / "tiny_cohort.py").resolve() in [p.resolve() for p in _version.plugin_files(ep)]


PLUGIN = '''
from sensorpipe.processing.clean import CleaningRule

CAP = {cap}


class CapRule(CleaningRule):
    """Removes heart rate above CAP (a cleaning rule a user edits and reinstalls under the same version)."""

    name = "cap_plugin"

    def apply(self, state):
        j = state.channels.index("heart_rate")
        state.remove(j, state.values[:, j] > CAP, "capped")
'''


def _above(cap: int) -> int:
    """Minutes of p1 and p2 whose heart rate (tiny_cohort.rows) is above ``cap``."""
    return sum(60 + (i * 7 + 2) % 13 > cap for i in range(2880)) * 2


def _install(site: Path, cap: str) -> None:
    """The plugin as pip leaves it: the module, a dist-info with its entry point and RECORD (version 0.1.0)."""
    (site / "capplug.py").write_text(PLUGIN.format(cap=cap))
    shutil.rmtree(site / "__pycache__", ignore_errors=True)
    info = site / "capplug-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: capplug\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[sensorpipe.cleaning]\ncap_plugin = capplug:CapRule\n")
    (info / "RECORD").write_text("capplug.py,,\ncapplug-0.1.0.dist-info/METADATA,,\n"
                                 "capplug-0.1.0.dist-info/entry_points.txt,,\ncapplug-0.1.0.dist-info/RECORD,,\n")


def _reload_plugins() -> None:
    """What a new process sees after the reinstall: nothing of the old module, registry entry or digest."""
    sys.modules.pop("capplug", None)
    clean._RULES.pop("cap_plugin", None)
    plugins._forget("sensorpipe.cleaning")
    importlib.invalidate_caches()
    _version.code_version.cache_clear()


@pytest.fixture
def plugin_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    sys.path.insert(0, str(site))
    _reload_plugins()
    yield site
    sys.path.remove(str(site))
    _reload_plugins()


def test_editing_a_plugin_without_a_version_bump_recomputes_the_units(plugin_site, tmp_path):
    write_cohort(tmp_path / "d", ("p1", "p2"))
    cfg = config(tmp_path, tmp_path / "d", cleaning={"rules": ["cap_plugin"]})
    _install(plugin_site, "70")
    first = run_pipeline(load_config(cfg))
    capped = sum(u.stats.counts.get("cleaned:heart_rate:capped", 0) for u in first.units)
    assert capped == _above(70)          # heart rate 60..72: the minutes above the cap are removed
    assert plugins.installed("sensorpipe.cleaning") == {"cap_plugin": "capplug==0.1.0"}
    old_code = _version.code_version()
    _install(plugin_site, "65.0")                               # edited, reinstalled, same version string
    _reload_plugins()
    assert plugins.installed("sensorpipe.cleaning") == {"cap_plugin": "capplug==0.1.0"}
    assert _version.code_version() != old_code
    second = run_pipeline(load_config(cfg), overwrite=True)
    assert second.units_cached == {"pass1": 0, "pass2": 0}
    recapped = sum(u.stats.counts.get("cleaned:heart_rate:capped", 0) for u in second.units)
    assert recapped == _above(65) > capped and second.fingerprint != first.fingerprint
    # the output is what a fresh run with the edited plugin gives
    fresh = run_pipeline(load_config(config(tmp_path, tmp_path / "d", out="fresh", cleaning={"rules": ["cap_plugin"]})))
    assert shard_bytes(fresh.version_dir) == shard_bytes(second.version_dir)
    assert sum(u.stats.counts.get("cleaned:heart_rate:capped", 0) for u in fresh.units) == recapped
