"""The beam runner against the local and multiprocess runners on one cohort (issue 16 item 4, docs/scale.md).

Runs ``bench_pipeline.py``'s cohort (Fitbit-style minute data, generated once,
never timed) on the local runner, the multiprocess runner and the beam
runner on DirectRunner (``multi_processing``, ``--workers`` worker processes; then
``in_memory``, in the launcher's process, which shows Beam's own cost without
worker start-up),
alternated ``--repeats`` times, each from an empty output folder, and prints
per run: wall seconds, observations per second per worker, the peak RSS of
the launcher and of the largest worker (each unit records its process's
peak), and for beam the bytes each pipeline moves (the items Create
reshuffles, the side input, the CombineGlobally input and the results read
back: ``BeamRunner.volumes``) and Beam's counters. It also checks that the
three runners' shards are byte-identical.

    python benchmarks/bench_beam.py --participants 24 --days 14 --workers 2 --repeats 1
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import _config, _laid_out  # noqa: E402


RUNNERS = ("local", "multiprocess", "beam", "beam-in-memory")


def _shards_digest(version_dir: str) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(version_dir).iterdir()):
        if ".array_record-" in p.name or ".tfrecord-" in p.name:
            h.update(p.name.encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def _run(folder: Path, out: Path, runner: str, workers: int) -> dict:
    from sensorpipe.runners.driver import run_pipeline

    shutil.rmtree(out, ignore_errors=True)
    config = _config(folder, out, "local" if runner.startswith("beam") else runner, workers, "auto")
    if runner.startswith("beam"):
        cfg = yaml.safe_load(config.read_text())
        mode = "in_memory" if runner == "beam-in-memory" else "multi_processing"
        cfg["runner"] = {"name": "beam", "beam_options": {"direct_running_mode": mode, "direct_num_workers": workers}}
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    t = time.perf_counter()
    r = run_pipeline(str(config))
    wall = time.perf_counter() - t
    return {"result": r, "wall": wall, "workers": 1 if runner in ("local", "beam-in-memory") else workers,
            "rss_worker": max((u.stats.peaks.get("rss_mib", 0.0) for u in r.units), default=0.0),
            "digest": _shards_digest(r.version_dir)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=24)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS),
                    help="which runners to alternate (default: all four)")
    ap.add_argument("--dir", default=".bench-beam")
    args = ap.parse_args(argv)
    root = Path(args.dir).resolve()
    folder, _ = _laid_out(root, args.participants, args.days, args.seed, "per-participant", 0.0)
    digests = set()
    for rep in range(args.repeats):
        for runner in args.runners:
            m = _run(folder, root / f"out-{runner}", runner, args.workers)
            r, wall = m["result"], m["wall"]
            obs = r.observations_in
            digests.add(m["digest"])
            print(f"[{rep}] {r.runner:55s} wall {wall:6.2f} s  {obs / wall / 1e6:5.2f} M obs/s  "
                  f"{obs / wall / m['workers'] / 1e6:5.2f} M obs/s per worker  peak RSS launcher "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, worker "
                  f"{m['rss_worker']:.0f} MiB  shards {m['digest']}")
            print("    driver time " + ", ".join(f"{k} {v:.2f}s" for k, v in r.seconds.items()))
            print(f"    unit work {sum(r.stage_seconds.values()):.2f} s summed over units (pass 1 + pass 2 stages)")
            if runner.startswith("beam"):
                for desc, v in r.runner_volumes.items():
                    print(f"    {desc:20s} " + ", ".join(f"{k} {n:,}" for k, n in v.items()))
                print("    counters " + ", ".join(f"{k} {v}" for k, v in sorted(r.runner_metrics.items())))
    print(f"cohort {args.participants} x {args.days} days, {obs:,} observations, {r.windows_kept} windows; "
          f"shards identical across runners: {len(digests) == 1}")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
