"""The captions' ``scipy.signal`` import without scipy's docstring rewriting (captions/_scipy_signal.py).

Each case runs in a fresh interpreter (``scipy.signal`` imports once per process): the fast import must give
the same peaks, prominences and widths as the plain one, register the same array-API capabilities, put
scipy's ``FunctionDoc`` back afterwards, and fall back to the plain import where scipy's private API is not
the one it was written against, or where the import under the replacement fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

_PROBE = """
import json, sys
import numpy as np
mode = sys.argv[1]
if mode == "plain":
    import scipy.signal as signal
else:
    from sensorpipe.captions import _scipy_signal as scipy_signal
    signal = scipy_signal.signal
stats_after_import = "scipy.stats" in sys.modules
deferred_after_import = [m in sys.modules for m in ("scipy.interpolate", "scipy.optimize", "scipy.spatial")]
rng = np.random.default_rng(7)
x = np.round(np.cumsum(rng.normal(size=(6, 400)), axis=1), 1)    # rounded: plateaus, as binned means have
out = []
for row in x:
    for kw in ({{}}, {{"prominence": 2.0}}, {{"prominence": 1.0, "width": 2}}, {{"distance": 10, "height": 0}},
               {{"prominence": (0.5, 4.0), "plateau_size": 1}}):
        p, props = signal.find_peaks(row, **kw)
        out.append([p.tolist(), {{k: np.asarray(v).round(12).tolist() for k, v in sorted(props.items())}}])
    p, _ = signal.find_peaks(row)
    out.append([signal.peak_prominences(row, p)[0].tolist(), signal.peak_widths(row, p)[0].round(12).tolist()])
cwt = signal.find_peaks_cwt(x[0], np.arange(1, 12)).tolist()    # its noise floor: scipy.stats.scoreatpercentile
# the functions behind the other deferred subpackages: they import them at their first call
xs = np.linspace(0, 3, 25)
others = [
    [[round(v.real, 9), round(v.imag, 9)]                                                    # cKDTree
     for v in signal.unique_roots([1 + 1j, 1 + 1.0004j, 2.0, 2.0002, -1j], tol=1e-3)[0].tolist()],
    np.round(signal.cspline1d_eval(signal.cspline1d(x[2][:40]), xs), 9).tolist(),        # BSpline.basis_element
    np.round(signal.qspline1d_eval(signal.qspline1d(x[3][:40]), xs), 9).tolist(),
    np.round(signal.dlsim(([1.0], [1.0, -0.5], 0.5), [1.0, 2.0, 0.5, 3.0], t=[0.0, 0.4, 1.1, 1.6])[1], 9).ravel().tolist(),
    (lambda n, wn: [float(n), *np.round(np.ravel(wn), 9).tolist()])(
        *signal.buttord([0.2, 0.5], [0.3, 0.4], 3, 40)),                                      # optimize.fminbound
    np.round(signal.bessel(4, 0.2, norm="mag")[1], 9).tolist(),                              # optimize.newton
]
real_others = [type(sys.modules[m]).__name__ == "module" and not hasattr(sys.modules[m], "_sensorpipe_stand_in")
               for m in ("scipy.interpolate", "scipy.optimize", "scipy.spatial")]
import scipy.stats
real_stats = [not hasattr(scipy.stats, "_sensorpipe_stand_in"), float(scipy.stats.norm.cdf(0.0)),
              float(scipy.stats.scoreatpercentile(x[1], 25)), scipy.stats.__file__ is not None]
import scipy._lib._array_api as api
doc = signal.find_peaks.__doc__
print(json.dumps({{"results": out, "stats_after_import": stats_after_import, "cwt": cwt, "real_stats": real_stats,
                  "deferred_after_import": deferred_after_import, "others": others, "real_others": real_others,
                  "note": "Array API Standard Support" in doc,
                  "has_doc": "Find peaks inside a signal" in doc,
                  "restored": getattr(api, "FunctionDoc", None).__name__ if hasattr(api, "FunctionDoc") else None,
                  "capabilities": sorted(f.__name__ for f in api.xp_capabilities_table
                                         if getattr(f, "__module__", "").startswith("scipy.signal"))}}))
"""


def _run(script: Path, *args: str) -> str:
    """The stdout of ``script`` run in a fresh interpreter on this tree's package."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _probe(mode: str, tmp_path: Path, prelude: str = "") -> dict:
    script = tmp_path / f"probe_{mode}.py"
    script.write_text(prelude + _PROBE.format())
    return json.loads(_run(script, mode).strip().splitlines()[-1])


def test_the_fast_import_finds_the_same_peaks_and_registers_the_same_capabilities(tmp_path):
    plain, fast = _probe("plain", tmp_path), _probe("fast", tmp_path)
    assert fast["results"] == plain["results"] and len(plain["results"]) == 36
    assert sum(len(r[0]) for r in plain["results"]) > 100          # the cases do find peaks
    assert fast["capabilities"] == plain["capabilities"] and "find_peaks" in plain["capabilities"]
    assert plain["note"] and not fast["note"]       # the docstring work was skipped ...
    assert fast["has_doc"]                          # ... and the docstring itself kept
    assert fast["restored"] == plain["restored"] == "FunctionDoc"   # scipy's own is back afterwards


def test_scipy_stats_is_deferred_to_find_peaks_cwt_and_the_real_one_afterwards(tmp_path):
    plain, fast = _probe("plain", tmp_path), _probe("fast", tmp_path)
    assert plain["stats_after_import"] and not fast["stats_after_import"]     # scipy.signal loaded it; we did not
    assert fast["cwt"] == plain["cwt"] and len(plain["cwt"]) > 3     # the deferred scoreatpercentile, same peaks
    assert fast["real_stats"] == plain["real_stats"]                  # a later import scipy.stats: the real module
    assert plain["real_stats"][:2] == [True, 0.5]


def test_interpolate_optimize_and_spatial_are_deferred_to_the_functions_that_use_them(tmp_path):
    plain, fast = _probe("plain", tmp_path), _probe("fast", tmp_path)
    assert plain["deferred_after_import"] == [True] * 3 and fast["deferred_after_import"] == [False] * 3
    assert fast["others"] == plain["others"] and all(plain["others"])       # the same results, once called
    assert fast["real_others"] == plain["real_others"] == [True] * 3          # ... from the real subpackages


def test_the_stand_in_hands_out_the_real_scipy_stats_for_any_other_name(tmp_path):
    script = tmp_path / "other_names.py"
    script.write_text(
        "import sys\n"
        "from sensorpipe.captions import _scipy_signal as s\n"
        "with s._deferred_subpackages():\n"
        "    from scipy import stats          # a module that keeps the stand-in itself ...\n"
        "    held = stats\n"
        "    from scipy.stats import norm     # ... or asks it for another name: the real module, at once\n"
        "    real_in_block = sys.modules['scipy.stats']\n"
        "print(held._sensorpipe_stand_in, norm.cdf(0.0), held.norm is norm, real_in_block is sys.modules['scipy.stats'],\n"
        "      hasattr(real_in_block, '_sensorpipe_stand_in'), held.scoreatpercentile([1, 2, 3, 4, 5], 50))\n")
    assert _run(script).split() == ["True", "0.5", "True", "True", "False", "3.0"]


def test_a_scipy_without_that_private_api_gets_the_plain_import(monkeypatch):
    import types

    from sensorpipe.captions import _scipy_signal as scipy_signal

    older = types.ModuleType("older_array_api")          # e.g. scipy 1.16: no xp_capabilities
    older.FunctionDoc = object
    monkeypatch.setitem(sys.modules, "older_array_api", older)
    assert scipy_signal._private_api("older_array_api") is None
    assert scipy_signal._private_api("no_such_module_here") is None
    assert scipy_signal._private_api() is not None         # this environment's scipy has it


def test_a_failing_replacement_falls_back_to_the_plain_import(tmp_path):
    plain = _probe("plain", tmp_path)
    # a scipy whose decorator uses FunctionDoc another way: the replacement raises, the plain import follows
    failing = ("import importlib.util, sys\n"
               "spec = importlib.util.find_spec('sensorpipe.captions._scipy_signal')\n"
               "mod = importlib.util.module_from_spec(spec)\n"
               "src = spec.loader.get_source(spec.name).replace('signal = import_scipy_signal()', '')\n"
               "exec(compile(src, spec.origin, 'exec'), mod.__dict__)\n"
               "def _broken(self, f):\n"
               "    raise AttributeError('FunctionDoc used another way')\n"
               "mod._UnparsedDoc.__init__ = _broken\n"
               "mod.signal = mod.import_scipy_signal()\n"
               "sys.modules['sensorpipe.captions._scipy_signal'] = mod\n")
    broken = _probe("fast", tmp_path, failing)
    assert broken["results"] == plain["results"] and broken["note"] and broken["restored"] == "FunctionDoc"


def test_numpy_f2py_and_testing_load_at_their_first_use_and_work_then(tmp_path):
    script = tmp_path / "lazy_numpy.py"
    script.write_text(
        "import sys\n"
        "from sensorpipe.captions._scipy_signal import signal\n"
        "import numpy\n"
        "kinds = [type(sys.modules[n]).__name__ for n in ('numpy.f2py', 'numpy.testing')]\n"
        "from numpy.testing import assert_array_equal     # the first use loads it, as numpy.testing\n"
        "assert_array_equal(signal.find_peaks(numpy.array([0.0, 2.0, 0.0, 3.0, 1.0]))[0], [1, 3])\n"
        "print(*kinds, type(numpy.testing).__name__, numpy.testing is sys.modules['numpy.testing'],\n"
        "      callable(numpy.f2py.run_main), type(sys.modules['numpy.f2py']).__name__)\n")
    assert _run(script).split() == ["_LazyModule", "_LazyModule", "module", "True", "True", "module"]


def test_a_numpy_submodule_that_is_not_there_is_left_to_numpy():
    import numpy

    from sensorpipe.captions import _scipy_signal as scipy_signal

    scipy_signal._lazy_numpy_submodules(("no_such_submodule",))
    assert "numpy.no_such_submodule" not in sys.modules and "no_such_submodule" not in vars(numpy)
