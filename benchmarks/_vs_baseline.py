"""``bench_pipeline.py --vs-baseline``: sensorpipe against the pandas LSM-style baseline, same input, whole processes.

The baseline (``../shared/benchmarks/lsm_baseline.py`` beside the repository)
generates its own input, ONE long-format Parquet (participant_id, channel,
t_utc as timestamp[ns, UTC], value) over 10 channels, and processes it with a
per-channel pandas resample, outer join, day windows, interpolation and a
z-score. sensorpipe reads the same rows through a ``long_table`` source
(``time_format: timestamp``), laid out as ``--layout`` asks, with day windows
at UTC midnight and the baseline's missingness bound (0.8). Each side runs as a
subprocess, so imports count, alternated ``--repeats`` times; the min of each
is compared. Peak RSS is the largest process of each run (``os.wait4`` in a small launcher:
``_measured.py`` says why).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from _inputs import LongColumns, derived
from _measured import run_measured

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = REPO.parent / "shared" / "benchmarks" / "lsm_baseline.py"
_COLUMNS = LongColumns(participant="participant_id", field="channel", time="t_utc", value="value")
#: the baseline's channels, in its units (lsm_baseline.REALISTIC): native field name = canonical channel
_UNITS = {"heart_rate": "bpm", "steps": "steps/min", "calories": "kcal/min", "hrv_rmssd": "ms", "eda_level": "uS",
          "skin_temperature": "degC", "spo2": "%", "respiratory_rate": "breaths/min", "sleep_stage": "stage code",
          "glucose": "mg/dL"}
_MAX_MISSING = 0.8   # lsm_baseline.run's default


class BaselineMissing(RuntimeError):
    """The baseline script is not where it was looked for."""


def baseline_script(given: str | None) -> Path:
    """The baseline script: ``given``, else ``../shared/benchmarks/lsm_baseline.py`` relative to the repository."""
    path = Path(given).resolve() if given else DEFAULT_BASELINE
    if not path.is_file():
        raise BaselineMissing(
            f"the peer baseline {path} does not exist: --vs-baseline needs lsm_baseline.py from the shared "
            f"checkout beside the repository ({DEFAULT_BASELINE}); copy it there or pass --baseline PATH")
    return path


def _generated(script: Path, root: Path, participants: int, days: int) -> tuple[Path, str]:
    """The baseline's own ``gen`` file for this size, made once per (size, baseline script) and reused."""
    key = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    path = root / f"lsm-{participants}x{days}-{key}.parquet"
    if not path.exists():
        for old in root.glob(f"lsm-{participants}x{days}-*.parquet"):
            old.unlink()
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.parquet")
        subprocess.run([sys.executable, str(script), "gen", str(tmp), str(participants), str(days)], check=True,
                       stdout=subprocess.DEVNULL)
        tmp.rename(path)
    return path, path.stem


def sensorpipe_config(files: Path, out: Path, key_file: Path, runner: str, workers: int, start_method: str) -> dict:
    """The pipeline config that reads the baseline's long file(s) in ``files``: a ``long_table`` source with
    ``field_column: channel`` and the 10 channels mapped, day windows at UTC midnight."""
    return {
        "sources": [{"name": "lsm", "adapter": "long_table", "path": str(files), "options": {
            "tz": "UTC",
            "files": [{"glob": "*.parquet", "participant_column": _COLUMNS.participant,
                       "field_column": _COLUMNS.field, "time_column": _COLUMNS.time, "time_format": "timestamp",
                       "value_column": _COLUMNS.value}],
            "fields": {ch: {"channel": ch, "unit": unit} for ch, unit in _UNITS.items()}}}],
        "channels": list(_UNITS),
        "window": {"size_min": 1440, "stride_min": 1440, "alignment": "local_midnight",
                   "max_missing_ratio": _MAX_MISSING},
        "output": {"dir": str(out), "name": "lsm", "target_shard_mb": 64.0},
        "runner": {"name": runner, "workers": workers, "start_method": start_method},
        "privacy": {"pseudonymize": True, "key_file": str(key_file)},
    }


def _timed(cmd: list[str], log: Path, env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, the largest process of the run) of one whole-process run."""
    wall, peak, returncode = run_measured(cmd, log, env)
    if returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({returncode}); its output: {log}\n" + log.read_text()[-2000:])
    return wall, peak


def compare_with_baseline(args, root: Path) -> int:
    """Run both sides alternated on the same input and print the min of each and the ratio."""
    try:
        script = baseline_script(args.baseline)
    except BaselineMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    work = root / "vs_baseline"
    t = time.perf_counter()
    src, key = _generated(script, work, args.participants, args.days)
    # the baseline always reads one file; invalid rows, when asked, go into both sides' input
    one, invalid = derived(work / "single-q", [src], "single-file", args.quarantine_share, args.seed, _COLUMNS, key)
    mine = one if args.layout == "single-file" else derived(
        work / "per-participant-q", [src], args.layout, args.quarantine_share, args.seed, _COLUMNS, key)[0]
    gen_s = time.perf_counter() - t
    baseline_input = one / "all.parquet"   # the gen file as written back in batches: the same rows, in order
    (work / "bench.key").write_text("bench-key-0123456789abcdef")
    out = work / "out"
    config = work / "lsm.yaml"
    config.write_text(yaml.safe_dump(sensorpipe_config(mine, out, work / "bench.key", args.runner, args.workers, args.start_method),
                                     sort_keys=False))
    import sensorpipe

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(sensorpipe.__file__).resolve().parents[1]),
                                         *filter(None, [env.get("PYTHONPATH")])])
    commands = {
        "pandas baseline": [sys.executable, str(script), "run", str(baseline_input), str(work / "baseline_out")],
        "sensorpipe run": [sys.executable, "-m", "sensorpipe.cli", "run", str(config)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():   # alternated: both sides see the same minutes of machine load
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(work / "baseline_out", ignore_errors=True)
            wall, peak = _timed(cmd, work / f"{name.split()[0]}.log", env)
            times[name].append(wall)
            rss[name].append(peak)
    base_windows = json.loads((work / "pandas.log").read_text().strip().splitlines()[-1])["windows"]
    ours = (work / "sensorpipe.log").read_text()
    best = {name: min(v) for name, v in times.items()}
    ratio = best["pandas baseline"] / best["sensorpipe run"]
    print(f"machine      {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"input        the baseline's own file, {args.participants} participants x {args.days} days "
          f"({src.stat().st_size / 2**20:.1f} MiB; made/reused in {gen_s:.1f} s, not timed)")
    print(f"sensorpipe   {args.layout} layout, runner {args.runner}"
          + (f" ({args.workers} workers)" if args.runner == "multiprocess" else "")
          + f"; {sum(invalid.values()):,} rows made invalid in both sides' input")
    for name, v in times.items():
        print(f"{name:16} min {best[name]:7.2f} s of {len(v)} whole-process runs "
              f"[{', '.join(f'{x:.2f}' for x in v)}], peak RSS {max(rss[name]):.0f} MiB")
    print(f"windows      baseline {base_windows}; sensorpipe {_summary_line(ours, 'windows')}")
    print(f"sensorpipe   {_summary_line(ours, 'rows')}")
    faster = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
    print(f"ratio        baseline / sensorpipe = {ratio:.2f}: sensorpipe is {faster}")
    return 0


def _summary_line(text: str, word: str) -> str:
    """The first line of ``sensorpipe run``'s summary that mentions ``word`` (what it kept)."""
    for line in text.splitlines():
        if line.startswith(word):
            return " ".join(line.split()[1:])
    return "(not reported)"
