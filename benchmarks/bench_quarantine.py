"""The quarantine path's cost: wall time and the driver's peak RSS against cohort size and quarantined share.

Each participant is one typed long-format Parquet file (a warehouse export: ``pid``, ``t``
timestamp[ms, UTC], ``signal``, ``value`` float64; heart rate every 5 s and steps every minute), and
``--shares`` of its rows are out of range, so they are quarantined. Every run is a fresh process
(``sensorpipe`` run locally, from an empty output folder) that reports its wall time and its peak RSS
(``resource.getrusage``: with the local runner the driver is the only process). ``--baseline-src`` runs
another source tree (say a worktree of the commit before a change) alternated with this one, in the
same minutes, so a noisy machine hits both alike; the table shows the min wall (and the validate and
unit-write stage seconds of that run) and the range of peak RSS over ``--repeat`` runs each.

    python benchmarks/bench_quarantine.py --participants 10 40 --days 7 --shares 0 0.35 --repeat 3 \
        [--baseline-src /tmp/base/src]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"
T0_MS = 1_709_251_200_000   # 2024-03-01 00:00 UTC


def write_cohort(root: Path, participants: int, days: int, share: float, seed: int = 7) -> Path:
    """One Parquet per participant, ``share`` of the rows out of range; reused when already there."""
    d = root / f"cohort-{participants}x{days}-q{share:g}"
    marker = d / ".complete"
    if marker.exists():
        return d
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    n_hr, n_steps = days * 1440 * 12, days * 1440
    t = np.r_[T0_MS + np.arange(n_hr, dtype=np.int64) * 5_000, T0_MS + np.arange(n_steps, dtype=np.int64) * 60_000]
    signal = pa.DictionaryArray.from_arrays(pa.array(np.r_[np.zeros(n_hr, np.int8), np.ones(n_steps, np.int8)]),
                                            pa.array(["hr", "steps"]))
    for i in range(participants):
        value = np.r_[70 + rng.normal(0, 8, n_hr).round(1), rng.integers(0, 120, n_steps).astype(np.float64)]
        value[rng.random(value.size) < share] = 100_000.0          # out_of_range on either channel
        pq.write_table(pa.table({"pid": pa.array(np.full(t.size, f"p{i:04d}")), "signal": signal,
                                 "t": pa.array(t, pa.timestamp("ms", "UTC")), "value": value}),
                       d / f"p{i:04d}.parquet")
    marker.touch()
    return d


def write_config(cohort: Path, out: Path) -> Path:
    cfg = {
        "sources": [{"name": "warehouse", "adapter": "long_table", "path": str(cohort), "options": {
            "tz": "UTC",
            "files": [{"glob": "*.parquet", "participant_column": "pid", "field_column": "signal",
                       "time_column": "t", "time_format": "iso", "value_column": "value"}],
            "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"},
                       "steps": {"channel": "steps", "unit": "steps/min"}}}}],
        "channels": ["heart_rate", "steps"],
        "window": {"size_min": 1440, "stride_min": 1440, "alignment": "none", "max_missing_ratio": 1.0},
        "output": {"dir": str(out), "name": "bench"}, "privacy": {"pseudonymize": False},
        "runner": {"name": "local"},
    }
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _child(config: str) -> int:
    """One measured run in this process: prints its numbers as one JSON line."""
    from sensorpipe.runners.driver import run_pipeline

    t = time.perf_counter()
    r = run_pipeline(config)
    wall = time.perf_counter() - t
    print(json.dumps({"wall_s": wall, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rows_in": r.rows_in, "quarantined": r.rows_quarantined,
                      "validate_s": r.stage_seconds.get("validate", 0.0),
                      "cache_write_s": r.stage_seconds.get("cache_write", 0.0)}))
    return 0


def _measure(src: Path, config: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, str(HERE), "--child", str(config)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, nargs="+", default=[10, 40])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.35])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-src", help="another tree's src/ to run alternated with this one")
    ap.add_argument("--dir", default=".bench-quarantine")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child)
    root = Path(args.dir).resolve()
    trees = {"this": SRC} | ({"baseline": Path(args.baseline_src).resolve()} if args.baseline_src else {})
    runs: dict[tuple, list[dict]] = {}
    for _ in range(args.repeat):
        for p in args.participants:
            for share in args.shares:
                cohort = write_cohort(root, p, args.days, share)
                for name, src in trees.items():   # alternated: the trees see the same machine state
                    out = root / f"out-{name}"
                    runs.setdefault((name, p, share), []).append(_measure(src, write_config(cohort, out), out))
    print(f"machine   {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.repeat} runs each, alternated")
    print("tree      cohort   quarantined         rows in   wall min   validate   unit writes   peak RSS (min-max)")
    for (name, p, share), rs in runs.items():
        r0 = min(rs, key=lambda r: r["wall_s"])
        print(f"{name:9} {p:3}x{args.days:<3}  {share:5.0%} {r0['quarantined']:>10,} {r0['rows_in']:>12,} "
              f"{r0['wall_s']:8.2f} s {r0['validate_s']:8.2f} s {r0['cache_write_s']:9.2f} s "
              f"{min(r['peak_rss_mib'] for r in rs):6.0f}-{max(r['peak_rss_mib'] for r in rs):.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
