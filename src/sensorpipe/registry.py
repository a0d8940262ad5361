"""One registry mechanism for every extension point (sources, labels, features, cleaning, windowing, normalizers,
captions, channels).

A kind's base class mixes in :class:`Registered` and names its :class:`Registry`
in the class statement (``class SourceAdapter(Registered, registry=ADAPTERS)``).
From then on every subclass that carries a value in the registry's ``key``
attribute (``name``, or ``kind`` for feature extractors) registers itself when
the class statement runs, TFDS style; a class without one (an intermediate
base) or declared with ``register=False`` does not. Registering checks what
every kind shares, so a broken class fails where it is defined, not in a
worker hours later:

* the key is an identifier-like, non-empty string;
* the class overrides each of the registry's ``required`` methods;
* no other class holds the name (the error names both classes and modules);
* the kind's own ``check`` (channels known, labels in the schema, ...).

Nobody keeps a list of built-ins: a lookup imports the module of the name's own
name under the kind's ``package`` when there is one, else every public module
there (:func:`pkgutil.walk_packages`), and a name that
is not built in loads the entry-point group ``sensorpipe.<kind>`` once per
process (:mod:`sensorpipe.plugins`, whose error messages name the plugin and
the fix). :data:`REGISTRIES` holds every registry created, so the code version
and the plugin loader derive the groups from it.

Ground layer: this module imports nothing of the pipeline but :mod:`sensorpipe.plugins`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pkgutil
import threading
from typing import Any, Callable, ClassVar, Iterator

from sensorpipe import plugins

#: kind -> its registry, in creation order (filled as the kinds' base modules are imported)
REGISTRIES: dict[str, "Registry"] = {}


class Registry(dict):
    """``name -> class`` for one kind; a dict, so lookups stay plain dict reads on hot paths.

    ``package`` is where the built-ins live (walked on first use; None: the
    kind has no built-in classes); ``what`` words the errors (``"windowing
    strategy"``); ``check(cls)`` raises TypeError or ValueError for what only
    this kind requires.
    """

    def __init__(self, kind: str, *, what: str, package: str | None, key: str = "name",
                 required: tuple[str, ...] = (), check: Callable[[type], None] | None = None) -> None:
        super().__init__()
        if kind in REGISTRIES:
            raise TypeError(f"a registry of kind {kind!r} already exists (entry-point group sensorpipe.{kind})")
        self.kind, self.group, self.what, self.package = kind, f"sensorpipe.{kind}", what, package
        self.key, self.required, self.check = key, required, check
        self.base: type | None = None
        self._walked = False
        self._lock = threading.RLock()
        REGISTRIES[kind] = self
        plugins.GROUPS[self.group] = plugins.PluginGroup(self.add, key)

    # --- registering ---------------------------------------------------------
    def add(self, cls: type, *, replace: bool = False) -> type:
        """Register ``cls`` under its key after the shared checks; the same class again is a no-op."""
        base = self.base
        if base is None or not (isinstance(cls, type) and issubclass(cls, base)):
            where = f"{base.__module__}.{base.__qualname__}" if base is not None else f"the {self.what} base class"
            raise TypeError(f"{cls!r} is not a subclass of {where}")
        name = getattr(cls, self.key, None)
        if not name or not isinstance(name, str):
            raise ValueError(f"{cls.__name__} has no {self.key}; set {self.key} = '<{self.what} {self.key}>'")
        if not name.isidentifier():
            raise TypeError(f"{cls.__name__}.{self.key} must be a non-empty identifier, got {name!r}")
        old = self.get(name)
        if old is not None and old is not cls and not replace and not _same_definition(old, cls):
            raise TypeError(f"{self.what} {name!r} is already registered by {_where(old)}; {_where(cls)} cannot "
                            f"take the name too: rename one of them")
        if self.check is not None:
            self.check(cls)
        for method in self.required:
            if getattr(cls, method) is getattr(base, method):
                raise TypeError(f"{cls.__name__} must implement {method}()")
        self[name] = cls
        return cls

    def is_builtin(self, cls: type) -> bool:
        """Whether ``cls`` comes from the kind's own package (not a plugin or a test)."""
        return self.package is not None and (cls.__module__ + ".").startswith(self.package + ".")

    # --- finding -------------------------------------------------------------
    def builtins(self) -> "Registry":
        """Import every public module under ``package`` once, so each built-in class has registered itself."""
        if self._walked or self.package is None:
            return self
        with self._lock:
            if not self._walked:
                pkg = importlib.import_module(self.package)
                for m in sorted(pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."), key=lambda m: m.name):
                    if not any(part.startswith("_") for part in m.name.split(".")):
                        importlib.import_module(m.name)
                self._walked = True
        return self

    def builtin(self, name: str) -> "Registry":
        """Import the built-in module called ``name`` under ``package``, when there is one, instead of them all.

        Most built-ins live in a module of their name (``sources/long_table.py``
        holds ``long_table``): a run names a few of a kind's tens of classes, and
        importing every module to find one cost more than the rest of a small
        run's planning. A name held elsewhere is left to :meth:`builtins`, which
        the callers run when the name is still missing; plugins load only after
        that full walk, so a plugin taking a built-in's name is still refused.
        """
        if self._walked or self.package is None or not name.isidentifier() or name.startswith("_"):
            return self
        module = f"{self.package}.{name}"
        if importlib.util.find_spec(module) is not None:   # the package is imported already: a path lookup
            importlib.import_module(module)
        return self

    def with_plugins(self) -> "Registry":
        """Built-ins plus every installed plugin of ``sensorpipe.<kind>`` (loaded once per process)."""
        self.builtins()
        plugins.load_plugins(self.group)
        return self

    def lookup(self, name: str, path: str, what: str | None = None) -> Any:
        """The class registered as ``name``; loads the built-ins, then the plugins, only when it is missing.

        ``path`` is the config key (or file) that named it, for the error:
        ``window.strategy: unknown windowing strategy 'x'; allowed: ...``.
        """
        if name not in self:
            self.builtin(name)
        if name not in self:
            self.builtins()
        return plugins.lookup(self.group, name, self, path, what or self.what)

    def available(self) -> tuple[str, ...]:
        """Every name: built-ins and installed plugins, sorted."""
        return tuple(sorted(self.with_plugins()))

    @contextlib.contextmanager
    def scoped(self) -> Iterator["Registry"]:
        """Restore the registry's entries on exit (tests that register throw-away classes).

        Built-ins the package walk registered meanwhile stay: their modules are imported once per process.
        When a plugin's entry is dropped, its group is loaded again on the next miss.
        """
        saved = dict(self)
        try:
            yield self
        finally:
            walked = {k: v for k, v in self.items() if k not in saved and self.is_builtin(v)}
            dropped = set(self) - set(saved) - set(walked)
            self.clear()
            self.update(saved)
            self.update(walked)
            if dropped:
                plugins._forget(self.group)


def _same_definition(old: type, new: type) -> bool:
    """A module imported again (a plugin reloaded) defines the class anew: that is not a second claim on the name."""
    return old.__module__ == new.__module__ and old.__qualname__ == new.__qualname__ and "<locals>" not in new.__qualname__


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__} (module {cls.__module__})"


class Registered:
    """Mixin of a kind's base class: subclasses register themselves in the base's :class:`Registry`.

    ``class Base(Registered, registry=REG)`` binds the registry (the base itself
    does not register); ``class Mine(Base, register=False)`` opts out (a helper
    or a test double).
    """

    _registry: ClassVar[Registry | None] = None

    def __init_subclass__(cls, registry: Registry | None = None, register: bool = True, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if registry is not None:
            if registry.base is not None:
                raise TypeError(f"the {registry.what} registry is already bound to {_where(registry.base)}")
            registry.base, cls._registry = cls, registry
            return
        reg = cls._registry
        if reg is not None and register and getattr(cls, reg.key, None):
            reg.add(cls)


__all__ = ["REGISTRIES", "Registered", "Registry"]
