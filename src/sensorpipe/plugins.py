"""Plugins: third-party source adapters, label processors, channels, windowing strategies, cleaning rules,
feature extractors, normalizers and caption levels.

A plugin is an installed package that declares Python entry points in a
group ``sensorpipe.<kind>`` of :data:`GROUPS` (one per
:class:`sensorpipe.registry.Registry`); each entry point names a class, and
the kind's registry checks and registers it as it does the built-ins. The config
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

import sys
import threading
from importlib import metadata
from typing import Any, Callable, Mapping, NamedTuple

from sensorpipe.core.errors import ConfigError


class PluginGroup(NamedTuple):
    """How a group's classes are registered, and which class attribute holds their config name."""

    register: Callable[[type], Any]   # the kind's Registry.add
    name_attr: str


#: entry-point group -> its registry's entry; each :class:`sensorpipe.registry.Registry` adds itself when created,
#: so the groups are derived from the registries and no list is kept by hand
GROUPS: dict[str, PluginGroup] = {}

_loaded: dict[str, tuple[str, ...]] = {}
_lock = threading.RLock()


class PluginError(ConfigError):
    """A plugin could not be loaded; the message names the entry point and the fix."""


#: the last scan: (sys.path, every installed entry point, group -> its entry points as :func:`_entry_points` lists them)
_scan: tuple[tuple[str, ...], metadata.EntryPoints, dict[str, list[metadata.EntryPoint]]] | None = None


def installed_entry_points() -> metadata.EntryPoints:
    """Every installed entry point of every group, read once per process and ``sys.path``.

    A scan reads the ``entry_points.txt`` of every installed distribution
    (a few milliseconds with a data-science stack), and a run asks for a
    dozen groups: the plugin loader per kind, the code version per group.
    One scan serves them all. It is read again when ``sys.path`` changes,
    after :func:`importlib.invalidate_caches` (Python's way to say "modules
    were installed while this process runs", which tests that install a
    plugin call) and after :func:`_forget`.
    """
    return _scanned()[1]


def _scanned() -> tuple[tuple[str, ...], metadata.EntryPoints, dict[str, list[metadata.EntryPoint]]]:
    global _scan
    with _lock:
        path = tuple(sys.path)
        if _scan is None or _scan[0] != path:
            _scan = (path, metadata.entry_points(), {})
        return _scan


class _ScanInvalidator:
    """On :data:`sys.meta_path` only so that :func:`importlib.invalidate_caches`, which calls every meta-path
    finder's ``invalidate_caches``, drops the entry-point scan too; it finds no modules."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> None:
        return None

    @staticmethod
    def invalidate_caches() -> None:
        global _scan
        _scan = None


sys.meta_path.append(_ScanInvalidator)   # last: asked only about modules no other finder knows


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    """Installed entry points of ``group``, each once, in name order (so loading is deterministic).

    Kept with the scan: a unit's adapter asks whether its group has plugins (:func:`any_installed`)."""
    _, everything, by_group = _scanned()
    if group not in by_group:
        unique = {(ep.name, ep.value): ep for ep in everything.select(group=group)}
        by_group[group] = [unique[k] for k in sorted(unique)]
    return list(by_group[group])


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
            for ep in eps:
                _load_one(ep, group, GROUPS[group].register)
            _loaded[group] = tuple(names)
        return _loaded[group]


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


def any_installed(group: str) -> bool:
    """Whether ``group`` has an installed plugin (none is imported)."""
    return bool(_entry_points(group))


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
        _ScanInvalidator.invalidate_caches()
