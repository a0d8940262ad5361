"""Start-up cost: whole-process time of ``sensorpipe run`` on one participant-day, and what its imports cost.

A tiny run is almost all start-up: the pipeline's own work on one day takes
about 0.1 s, the rest is the interpreter loading libraries. This times the
whole process (``python -m sensorpipe.cli run cfg.yaml``, a fresh output
folder each time) ``--repeat`` times and prints the minimum and the median,
then runs it once more under ``python -X importtime`` and prints the
cumulative import time of the heavy libraries with the sensorpipe module that
first imported each (which says which stage needs it).

``--compare SRC`` alternates every timed run with the same run on another
source tree (e.g. a worktree of the base commit: ``--compare /tmp/base/src``),
so both sets of numbers come from the same minutes on a shared machine.

Python caches compiled modules (``__pycache__``) as an installed package has
them; an untimed first run per tree writes them. Where the environment sets
``PYTHONDONTWRITEBYTECODE`` every run would compile the package's ~100
modules again (about 0.15 s): ``--no-bytecode-cache`` keeps that setting.

    python benchmarks/bench_start.py [--repeat 7] [--compare OTHER/src] [--dir .bench/start] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: libraries worth naming in the breakdown (each costs tens to hundreds of milliseconds to import)
HEAVY = ("numpy", "pyarrow", "pandas", "scipy.signal", "scipy.ndimage", "sqlalchemy", "tensorflow_datasets",
         "array_record", "yaml", "tqdm", "matplotlib", "neurokit2")


def _bench_pipeline():
    """``bench_pipeline.py`` (cohort generator and config), loaded by path: benchmarks/ is not a package."""
    spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "benchmarks" / "bench_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _env(src: Path, bytecode_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    return env


#: the traced run: ``sensorpipe run`` with a finder that notes which sensorpipe function first imports each library
_TRACED = """
import json, os, sys, traceback
heavy, first = {heavy!r}, {{}}

class _FirstImporter:
    def find_spec(self, name, path=None, target=None):
        if name in heavy and name not in first:
            frames = [f for f in traceback.extract_stack()[:-1] if "sensorpipe" + os.sep in f.filename]
            calls = [f for f in frames if f.name != "<module>"]    # the function behind a chain of module imports
            where = [f"{{f.filename.rsplit('sensorpipe' + os.sep, 1)[-1]}}:{{f.name}}" for f in frames]
            first[name] = where[frames.index(calls[-1])] if calls else (where[-1] if where else "?")
            if frames and frames[-1].name == "<module>" and calls:      # and the module whose import line it is
                first[name] += " via " + where[-1].rsplit(":", 1)[0]
        return None

sys.meta_path.insert(0, _FirstImporter())
import atexit
atexit.register(lambda: sys.stderr.write("\\nFIRST-IMPORTERS " + json.dumps(first) + "\\n"))
from sensorpipe.cli import main
sys.exit(main(["run", sys.argv[1]]))
"""


def _run_once(src: Path, config: Path, out: Path, bytecode_cache: bool,
              extra: tuple[str, ...] = ()) -> tuple[float, str]:
    """Seconds of one whole ``sensorpipe run`` process on ``src`` (fresh output folder), and its stderr.

    ``extra`` are interpreter options; with them the run is the traced one (:data:`_TRACED`).
    """
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["-c", _TRACED.format(heavy=HEAVY)] if extra else ["-m", "sensorpipe.cli", "run"]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, *extra, *cmd, str(config)], env=_env(src, bytecode_cache),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"sensorpipe run failed on {src} (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds, proc.stderr


def import_breakdown(stderr: str) -> list[tuple[str, float, str]]:
    """``(library, cumulative ms, first importer)`` of each :data:`HEAVY` library the traced run imported.

    Milliseconds come from the ``-X importtime`` lines (the first, cumulative import of the library); the
    importer is the innermost sensorpipe function on the stack at that import (``file:function``, which
    names the stage that needs it), followed by ``via file`` when a module-level import line in that file
    did the importing. A library that another library imported first is counted there, not here.
    """
    first = json.loads(stderr.rsplit("FIRST-IMPORTERS ", 1)[1].splitlines()[0])
    out = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if m and m.group(2) in HEAVY:
            out.append((m.group(2), int(m.group(1)) / 1e3, first.get(m.group(2), "?")))
    return sorted(out, key=lambda r: -r[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="timed runs (per tree with --compare)")
    ap.add_argument("--compare", type=Path, default=None, help="another source tree to alternate with")
    ap.add_argument("--dir", default=".bench/start")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE from the environment (modules compiled on every run)")
    args = ap.parse_args(argv)

    bench = _bench_pipeline()
    root = Path(args.dir).resolve()
    bench._cohort(root / "cohort", 1, 1, 0)
    out = root / "out"
    config = bench._config(root / "cohort", out, "local", 1, "auto")
    trees = {"this tree": ROOT / "src"}
    if args.compare is not None:
        trees["compare"] = args.compare.resolve()
    cache = not args.no_bytecode_cache
    for src in trees.values():                   # untimed: writes __pycache__, warms the page cache
        _run_once(src, config, out, cache)
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.repeat):
        for name, src in trees.items():          # alternated: both trees see the same machine load
            times[name].append(_run_once(src, config, out, cache)[0])

    print(f"machine      {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"run          sensorpipe run on 1 participant x 1 day (runner local), whole process, {args.repeat} runs, "
          f"{'compiled modules cached' if cache else 'modules compiled on every run (no bytecode cache)'}")
    for name, src in trees.items():
        ts = times[name]
        print(f"{name:12s} min {min(ts):.2f} s, median {statistics.median(ts):.2f} s  ({src})")
    _, stderr = _run_once(ROOT / "src", config, out, cache, ("-X", "importtime"))
    print("imports      cumulative ms under -X importtime (inflated by the tracing), and the sensorpipe function "
          "that first imported it:")
    for name, ms, importer in import_breakdown(stderr):
        print(f"  {name:22s} {ms:7.1f} ms  {importer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
