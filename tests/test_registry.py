"""The one registry mechanism: self-registration, the shared checks, the package walk, and the code version."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from sensorpipe import _version, plugins
from sensorpipe.config import ConfigError
from sensorpipe.registry import REGISTRIES, Registered, Registry

KINDS = {
    # kind -> (module holding the base class, base class name, package the built-ins live under)
    "sources": ("sensorpipe.sources.base", "SourceAdapter", "sensorpipe.sources"),
    "labels": ("sensorpipe.labels.base", "LabelProcessor", "sensorpipe.labels"),
    "features": ("sensorpipe.processing.features.base", "FeatureExtractor", "sensorpipe.processing.features"),
    "cleaning": ("sensorpipe.processing.clean", "CleaningRule", "sensorpipe.processing"),
    "windowing": ("sensorpipe.processing.windowing.base", "WindowingStrategy", "sensorpipe.processing.windowing"),
    "normalizers": ("sensorpipe.processing.normalizers", "Normalizer", "sensorpipe.processing"),
    "captions": ("sensorpipe.captions.base", "CaptionLevel", "sensorpipe.captions"),
    "channels": ("sensorpipe.channels", "ChannelPlugin", None),
}


def _import_all(package: str) -> None:
    """Every module under ``package``, private ones included (what the walk skips must hold no built-in)."""
    import pkgutil

    pkg = importlib.import_module(package)
    for m in pkgutil.walk_packages(pkg.__path__, package + "."):
        importlib.import_module(m.name)


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_one_registry_bound_to_its_base_and_its_entry_point_group(kind):
    module, base_name, package = KINDS[kind]
    base = getattr(importlib.import_module(module), base_name)
    reg = REGISTRIES[kind]
    assert reg.base is base and reg.group == f"sensorpipe.{kind}" and reg.package == package
    assert plugins.GROUPS[reg.group].register == reg.add


@pytest.mark.parametrize("kind", sorted(k for k, v in KINDS.items() if v[2]))
def test_the_package_walk_finds_every_built_in_class(kind):
    module, base_name, package = KINDS[kind]
    base = getattr(importlib.import_module(module), base_name)
    reg = REGISTRIES[kind].builtins()
    _import_all(package)
    concrete = {c for c in _subclasses(base)
                if c.__module__.startswith(package + ".") and getattr(c, reg.key, None)}
    assert {c for c in reg.values() if reg.is_builtin(c)} == concrete
    assert len(concrete) >= 3


def test_the_built_in_names_are_the_ones_documented():
    from sensorpipe.processing.clean import rule_names
    from sensorpipe.processing.normalizers import normalizer_names
    from sensorpipe.processing.windowing import strategy_names

    assert rule_names() == ("flatline", "nonwear", "range", "sentinel", "spike")
    assert normalizer_names() == ("log1p", "minmax", "none", "robust", "zscore")
    assert strategy_names() == ("event", "fixed", "missingness_stratified")
    assert sorted(REGISTRIES["captions"].builtins()) == ["semantic", "statistical", "structural"]
    assert sorted(REGISTRIES["features"].builtins()) == ["acc", "ecg", "eda", "ppg", "resp", "temp"]


@pytest.fixture
def toy():
    """A throw-away kind with one required method."""
    reg = Registry("toy_kind_r1", what="toy", package=None, required=("run",))

    class Toy(Registered, registry=reg):
        name = ""

        def run(self) -> int:
            raise NotImplementedError

    yield reg, Toy
    REGISTRIES.pop("toy_kind_r1")
    plugins.GROUPS.pop("sensorpipe.toy_kind_r1")


def test_a_concrete_subclass_registers_itself_and_an_abstract_one_does_not(toy):
    reg, Toy = toy

    class Intermediate(Toy):   # no name: a helper base
        pass

    class One(Intermediate):
        name = "one"

        def run(self) -> int:
            return 1

    class Helper(One, register=False):
        name = "helper"

    assert dict(reg) == {"one": One} and reg.lookup("one", "toy.name")().run() == 1
    with pytest.raises(ConfigError, match=r"toy.name: unknown toy 'helper'; allowed: one \(built in, plus "
                                                  r"installed plugins of entry-point group sensorpipe.toy_kind_r1\)"):
        reg.lookup("helper", "toy.name")


def test_a_duplicate_name_names_both_classes_and_modules(toy):
    reg, Toy = toy

    class First(Toy):
        name = "same"

        def run(self) -> int:
            return 1

    with pytest.raises(TypeError) as e:
        class Second(Toy):
            name = "same"

            def run(self) -> int:
                return 2
    where = f"{__name__}.test_a_duplicate_name_names_both_classes_and_modules.<locals>"
    assert str(e.value) == (f"toy 'same' is already registered by {where}.First (module {__name__}); "
                            f"{where}.Second (module {__name__}) cannot take the name too: rename one of them")
    assert reg["same"] is First


def test_a_class_missing_an_abstract_method_or_a_good_name_is_refused(toy):
    reg, Toy = toy
    with pytest.raises(TypeError, match=r"^Lazy must implement run\(\)$"):
        class Lazy(Toy):
            name = "lazy"
    with pytest.raises(TypeError, match="Dashed.name must be a non-empty identifier, got 'a-b'"):
        class Dashed(Toy):
            name = "a-b"

            def run(self) -> int:
                return 0
    with pytest.raises(TypeError, match="is not a subclass of"):
        reg.add(int)
    assert dict(reg) == {}


def test_a_second_registry_of_one_kind_is_refused(toy):
    with pytest.raises(TypeError, match="a registry of kind 'toy_kind_r1' already exists"):
        Registry("toy_kind_r1", what="toy", package=None)


def _fake_dist(site: Path, group: str, body: str) -> None:
    """A distribution as pip lays it out: the module, its dist-info with entry points and RECORD."""
    (site / "newkindplug.py").write_text(body)
    info = site / "newkindplug-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: newkindplug\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\nthing = newkindplug:Thing\n")
    (info / "RECORD").write_text("newkindplug.py,,\nnewkindplug-0.1.0.dist-info/METADATA,,\n")


def test_a_new_kinds_plugin_changes_the_code_version_when_its_source_changes(toy, tmp_path):
    reg, _ = toy
    site = tmp_path / "site"
    site.mkdir()
    sys.path.insert(0, str(site))
    try:
        importlib.invalidate_caches()
        _version.code_version.cache_clear()
        without = _version.code_version()
        _fake_dist(site, reg.group, "class Thing:\n    name = 'thing'\n")
        importlib.invalidate_caches()
        _version.code_version.cache_clear()
        assert reg.group in _version.plugin_groups()
        first = _version.code_version()
        _fake_dist(site, reg.group, "class Thing:\n    name = 'thing'  # edited, same version 0.1.0\n")
        _version.code_version.cache_clear()
        assert len({without, first, _version.code_version()}) == 3
    finally:
        sys.path.remove(str(site))
        importlib.invalidate_caches()
        _version.code_version.cache_clear()
