"""``scipy.signal`` for the structural captions' peak finding, imported without scipy's docstring rewriting.

Why: ``import scipy.signal`` is the largest import of a small run (``find_peaks``; BENCHMARKS.md,
"Start-up"). In scipy 1.17 about a third of it is the ``xp_capabilities`` decorator
(``scipy/_lib/_array_api.py``): for each of ~800 functions it parses the docstring with numpydoc's
``FunctionDoc`` and appends an array-API support table to it. Nothing here reads those docstrings, and the
issue rules out writing our own peak finder. So, while this module imports ``scipy.signal``, the decorator's
``FunctionDoc`` is replaced by :class:`_UnparsedDoc`, which leaves each docstring as it is; the rest of the
decorator (registering each function's capabilities in scipy's table) runs as scipy wrote it, the functions are
untouched (``find_peaks`` finds the same peaks: tests/captions/test_scipy_signal.py), and the original is put
back at once, so scipy modules imported later get their notes.

Also while it imports, four scipy subpackages that ``scipy.signal`` imports for functions a minute-data run
never calls are stand-ins (:func:`_deferred_subpackages`, :data:`DEFERRED`; together more than half of what
``scipy.signal`` loads): ``scipy.stats`` (``scoreatpercentile``: ``find_peaks_cwt``), ``scipy.interpolate``
(``make_interp_spline``: ``dlsim``; ``BSpline``: the cubic and quadratic spline evaluation), ``scipy.spatial``
(``cKDTree``: ``unique_roots``) and ``scipy.optimize`` (the filter design's root finding, through the module).
Each name ``scipy.signal`` binds from a stand-in is a :class:`_Deferred`, which imports the real subpackage at
its first call or attribute; any other name a stand-in is asked for imports the real subpackage at once (so
code that reached a stand-in behaves as with the real module). The stand-ins leave ``sys.modules`` with the
import: a later ``import scipy.stats`` (or the others) loads the real one.

And ``numpy.f2py`` and ``numpy.testing`` are made lazy modules first (:func:`_lazy_numpy_submodules`,
``importlib.util.LazyLoader``): scipy's array-API layer copies every name ``dir(numpy)`` lists, and numpy
imports a submodule at the first access to its name, so those two (the Fortran wrapper generator and numpy's
test helpers, used by neither scipy.signal nor the pipeline) were imported in full. As lazy modules they are
``numpy.f2py`` and ``numpy.testing`` for the rest of the process and load at the first use of one of their names.

Guarded: where scipy's private module lacks ``FunctionDoc`` or ``xp_capabilities`` (another scipy version),
where ``scipy.signal`` is already imported, or where the import under the replacements fails, it is the plain
import (a stand-in only where its subpackage is not imported yet). Importing this module is the import
(``CaptionLevel.imports`` names it, so a multiprocess run's driver preloads it for its workers).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from sensorpipe._gc import collector_paused


class _UnparsedDoc:
    """Stands in for numpydoc's ``FunctionDoc`` in ``xp_capabilities``: the decorator appends its note to the
    ``Notes`` section and writes ``str(doc)`` without its first line back to ``__doc__``; this keeps the
    docstring as it was (less leading blank space) and drops the note."""

    def __init__(self, f) -> None:
        self._doc = getattr(f, "__doc__", None) or ""

    def __getitem__(self, section: str) -> list:
        return []

    def __str__(self) -> str:
        return "\n" + self._doc


def _private_api(name: str = "scipy._lib._array_api") -> ModuleType | None:
    """scipy's ``_lib._array_api`` where it has what the replacement expects, else None."""
    try:
        api = importlib.import_module(name)
    except ImportError:
        return None
    return api if hasattr(api, "FunctionDoc") and hasattr(api, "xp_capabilities") else None


def _lazy_numpy_submodules(names: tuple[str, ...] = ("f2py", "testing")) -> None:
    """Each ``numpy.<name>`` not imported yet becomes a lazy module (see the module docstring)."""
    import numpy

    for name in names:
        full = f"numpy.{name}"
        if full in sys.modules or name in vars(numpy):
            continue
        try:
            spec = importlib.util.find_spec(full)
            spec.loader = importlib.util.LazyLoader(spec.loader)   # TypeError: a loader without exec_module
        except (ImportError, ValueError, TypeError, AttributeError):  # numpy lays it out otherwise
            continue                                              # ... then scipy imports it as before
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)      # a lazy loader's: the module's code runs at its first attribute
        setattr(numpy, name, module)


#: the subpackages that stand in while ``scipy.signal`` imports, each with the names scipy.signal binds from it
#: then (used only inside functions the captions never call; see the module docstring)
DEFERRED: dict[str, tuple[str, ...]] = {
    "scipy.stats": ("scoreatpercentile",),
    "scipy.interpolate": ("make_interp_spline", "BSpline"),
    "scipy.spatial": ("cKDTree",),
    "scipy.optimize": (),
}


def _real(module: str) -> ModuleType:
    """The real ``module``, imported now (its stand-in taken out of ``sys.modules`` first, if still there)."""
    if getattr(sys.modules.get(module), "_sensorpipe_stand_in", False):
        del sys.modules[module]
    return importlib.import_module(module)


class _Deferred:
    """``module.name`` as ``scipy.signal`` bound it from a stand-in: calling it, or reading one of its attributes
    (``BSpline.basis_element``), imports the real module and uses the real object."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: str, name: str) -> None:
        self._module, self._name = module, name

    def _target(self):
        return getattr(_real(self._module), self._name)

    def __call__(self, *args, **kwargs):
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str):
        return getattr(self._target(), attr)

    def __repr__(self) -> str:
        return f"<deferred {self._module}.{self._name}>"


def _stand_in(module: str, deferred: tuple[str, ...]) -> ModuleType:
    """A stand-in for ``module``: its ``deferred`` names are :class:`_Deferred`, any other the real module's,
    imported at once. Not dunder names: the import system asks a module for ``__path__`` and the like, and a
    plain module without them answers "none"."""
    stand_in = ModuleType(module, f"Stands in for {module} while scipy.signal is imported.")
    stand_in._sensorpipe_stand_in = True
    for name in deferred:
        setattr(stand_in, name, _Deferred(module, name))

    def forward(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_real(module), name)

    stand_in.__getattr__ = forward
    return stand_in


@contextmanager
def _deferred_subpackages(deferred: dict[str, tuple[str, ...]] = DEFERRED) -> Iterator[None]:
    """Inside the block each subpackage of ``deferred`` not imported yet is a stand-in (:func:`_stand_in`)."""
    added = {module: _stand_in(module, names) for module, names in deferred.items() if module not in sys.modules}
    sys.modules.update(added)
    try:
        yield
    finally:
        for module, stand_in in added.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]


def import_scipy_signal(fast: bool = True) -> ModuleType:
    """``scipy.signal``, imported once (collector paused: sensorpipe._gc); ``fast``: with the docstring
    parsing skipped where scipy's private API is as expected and four subpackages deferred (see the module
    docstring)."""
    if "scipy.signal" in sys.modules:
        return sys.modules["scipy.signal"]
    with collector_paused():
        if fast:
            _lazy_numpy_submodules()
        api = _private_api() if fast else None
        if api is not None:
            original = api.FunctionDoc
            api.FunctionDoc = _UnparsedDoc
            try:
                with _deferred_subpackages():
                    import scipy.signal
                return scipy.signal
            except Exception:  # noqa: BLE001 - scipy used FunctionDoc or a subpackage otherwise: the plain import below
                pass
            finally:
                api.FunctionDoc = original
        import scipy.signal    # an import statement, not importlib: -X importtime lists it (bench_start.py)
        return scipy.signal


signal = import_scipy_signal()
