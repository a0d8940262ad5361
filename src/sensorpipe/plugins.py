"""Plugins: third-party source adapters, label processors, channels, windowing strategies, cleaning rules,
feature extractors, normalizers and caption levels.

A plugin is an installed package that declares Python entry points in one of
the groups of :data:`GROUPS`; each entry point names a class, and the group's
registry function (the same one the built-ins use) registers it. The config
then refers to it by name exactly like a built-in (``window.strategy:
my_windows``), and the entry point's name must be that name.

Loading is lazy and happens once per process and group: a registry loads its
group the first time it is asked for a name that is not built in
(:func:`lookup`). That happens in the driver while the config is checked and
again in every spawned worker when the stage looks the name up, so a worker
never depends on what the driver imported. A plugin that fails to import, or
is not the right kind of class, stops the run with an error naming the entry
point, its package and the fix: a plugin is never skipped silently.
"""

from __future__ import annotations

import importlib
import threading
from importlib import metadata
from typing import Any, Callable, Mapping, NamedTuple

from sensorpipe.core.errors import ConfigError


class PluginGroup(NamedTuple):
    """Where a group's classes are registered, and which class attribute holds their config name."""

    register: str        # "module:function", imported only when the group is first loaded
    name_attr: str


GROUPS: dict[str, PluginGroup] = {
    "sensorpipe.windowing": PluginGroup("sensorpipe.processing.windowing:register_windowing", "name"),
    "sensorpipe.cleaning": PluginGroup("sensorpipe.processing.clean:register_cleaning_rule", "name"),
    "sensorpipe.features": PluginGroup("sensorpipe.processing.raw_features:register_extractor", "kind"),
    "sensorpipe.normalizers": PluginGroup("sensorpipe.processing.normalizers:register_normalizer", "name"),
    "sensorpipe.captions": PluginGroup("sensorpipe.captions.base:register_caption_level", "name"),
    "sensorpipe.sources": PluginGroup("sensorpipe.sources.base:register_adapter", "name"),
    "sensorpipe.labels": PluginGroup("sensorpipe.labels.base:register_processor", "name"),
    "sensorpipe.channels": PluginGroup("sensorpipe.channels:register_channel", "name"),
}

_loaded: dict[str, tuple[str, ...]] = {}
_lock = threading.RLock()


class PluginError(ConfigError):
    """A plugin could not be loaded; the message names the entry point and the fix."""


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    """Installed entry points of ``group``, each once, in name order (so loading is deterministic)."""
    unique = {(ep.name, ep.value): ep for ep in metadata.entry_points(group=group)}
    return [unique[k] for k in sorted(unique)]


def _register_function(group: str) -> Callable[[type], Any]:
    spec = GROUPS[group].register
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise PluginError(f"plugin group {group}: its registry {spec} is not available in this sensorpipe "
                          f"version ({e}); uninstall the plugin or upgrade sensorpipe") from None


def _describe(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    pkg = f", package {dist.name} {dist.version}" if dist is not None else ""
    return f"plugin {ep.name!r} ({ep.value}, entry-point group {ep.group}{pkg})"


def _load_one(ep: metadata.EntryPoint, group: str, register: Callable[[type], Any]) -> None:
    try:
        obj = ep.load()
    except Exception as e:  # noqa: BLE001 - any import error of third-party code is reported the same way
        raise PluginError(f"{_describe(ep)} failed to import: {type(e).__name__}: {e}. Fix the module path in "
                          f"the plugin's [project.entry-points.\"{group}\"] table, install its dependencies, "
                          f"or uninstall it") from e
    if not isinstance(obj, type):
        raise PluginError(f"{_describe(ep)} must name a class, got {type(obj).__name__} {obj!r}; point the "
                          f"entry point at the class (module:ClassName)")
    attr = GROUPS[group].name_attr
    own = getattr(obj, attr, None)
    if own != ep.name:
        raise PluginError(f"{_describe(ep)}: the class's {attr} is {own!r} but the entry point is named "
                          f"{ep.name!r}; make them equal (the config refers to the plugin by that name)")
    try:
        register(obj)
    except (TypeError, ValueError) as e:
        raise PluginError(f"{_describe(ep)} was refused by the registry: {e}") from None


def load_plugins(group: str) -> tuple[str, ...]:
    """Import and register every installed entry point of ``group`` once per process; returns their names."""
    if group not in GROUPS:
        raise PluginError(f"unknown plugin group {group!r}; groups: {', '.join(GROUPS)}")
    with _lock:
        if group not in _loaded:
            eps = _entry_points(group)
            names = [ep.name for ep in eps]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                where = "; ".join(_describe(ep) for ep in eps if ep.name in dup)
                raise PluginError(f"two installed plugins share the name {dup[0]!r} ({where}); uninstall one")
            if eps:
                register = _register_function(group)
                for ep in eps:
                    _load_one(ep, group, register)
            _loaded[group] = tuple(names)
        return _loaded[group]


def register_named(registry: dict[str, type], cls: type, base: type, required: str, what: str) -> type:
    """Add ``cls`` to a name-keyed registry after the checks every extension point shares.

    ``cls`` must subclass ``base``, have an identifier ``name`` and override
    ``required``; a different class under a taken name is refused (the same
    class again is a no-op: a plugin's module may register on import and the
    loader once more).
    """
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{cls!r} is not a subclass of {base.__module__}.{base.__qualname__}")
    if not cls.name or not cls.name.isidentifier():
        raise TypeError(f"{cls.__name__}.name must be a non-empty identifier, got {cls.name!r}")
    if getattr(cls, required) is getattr(base, required):
        raise TypeError(f"{cls.__name__} must implement {required}()")
    old = registry.get(cls.name)
    if old is not None and old is not cls:
        raise TypeError(f"{what} {cls.name!r} is already registered by {old.__module__}.{old.__qualname__}")
    registry[cls.name] = cls
    return cls


def lookup(group: str, name: str, registry: Mapping[str, Any], path: str, what: str) -> Any:
    """``registry[name]``, loading ``group``'s plugins first when ``name`` is not built in.

    ``path`` is the config key that named it and ``what`` the kind of thing, for
    the error: ``window.strategy: unknown windowing strategy 'x'; allowed: ...``.
    """
    if name not in registry:
        load_plugins(group)
    if name not in registry:
        raise ConfigError(f"{path}: unknown {what} {name!r}; allowed: {', '.join(sorted(registry))} (built in, "
                          f"plus installed plugins of entry-point group {group})")
    return registry[name]


def installed(group: str) -> dict[str, str]:
    """Name -> ``package==version`` of each installed plugin of ``group`` (not imported), for run records."""
    out = {}
    for ep in _entry_points(group):
        dist = getattr(ep, "dist", None)
        out[ep.name] = f"{dist.name}=={dist.version}" if dist is not None else ep.value
    return out


def _forget(group: str) -> None:
    """Let :func:`load_plugins` scan ``group`` again (tests that install or remove a plugin)."""
    with _lock:
        _loaded.pop(group, None)
