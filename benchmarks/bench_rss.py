"""Peak RSS against cohort size: issue 13's memory goal as one command.

The goal: peak RSS at 200 x 14 within 10 % of peak RSS at 50 x 14, in both
layouts (one file per participant, one shared file), with 0 % and with 35 %
of the rows quarantined. Each cell is ``bench_pipeline.py`` with that
``--participants``, ``--layout`` and ``--quarantine-share`` (the bench
cohort, ``--days`` days), run as a fresh process: once untimed to generate
and lay out the input (generation runs in the bench's own process and would
count), then ``--repeat`` times, keeping the largest peak of the run (the
driver's ``ru_maxrss``, or the largest unit process's own peak under
``--runner multiprocess``). Each size keeps its cohort under ``DIR/rss<P>``,
so a rerun skips generation.

    python benchmarks/bench_rss.py [--participants 50 200] [--days 14] [--runner local] [--repeat 2]
        [--layouts per-participant single-file] [--shares 0 0.35]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ("per-participant", "single-file")
SHARES = (0.0, 0.35)
GOAL = 0.10   # the largest cohort's peak at most 10 % above the smallest's


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def peak_mib(out: str) -> float:
    """The run's peak RSS from ``bench_pipeline.py``'s output: the driver or the largest unit process."""
    m = re.search(r"peak RSS\s+driver ([\d.]+) MiB, largest unit process ([\d.]+) MiB", out)
    if m is None:
        raise RuntimeError(f"bench_pipeline.py printed no peak RSS line:\n{out[-2000:]}")
    return max(float(m.group(1)), float(m.group(2)))


def run_cell(participants: int, days: int, layout: str, share: float, runner: str, workers: int,
             root: Path) -> float:
    """One whole ``bench_pipeline.py`` process for the cell; its peak RSS in MiB."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_pipeline.py"), "--participants", str(participants),
           "--days", str(days), "--runner", runner, "--workers", str(workers), "--layout", layout,
           "--quarantine-share", str(share), "--dir", str(root / f"rss{participants}")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return peak_mib(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--runner", choices=("local", "multiprocess"), default="local")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="measured runs per cell (the largest peak is kept)")
    ap.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    ap.add_argument("--shares", type=float, nargs="+", default=list(SHARES), help="quarantined fractions")
    ap.add_argument("--dir", default=".bench")
    args = ap.parse_args(argv)
    root = Path(args.dir).resolve()
    sizes = sorted(set(args.participants))
    peaks: dict[tuple[str, float, int], float] = {}
    for layout, share, p in itertools.product(args.layouts, args.shares, sizes):
        run_cell(p, args.days, layout, share, args.runner, args.workers, root)     # untimed: makes the input
        peaks[layout, share, p] = max(run_cell(p, args.days, layout, share, args.runner, args.workers, root)
                                      for _ in range(args.repeat))
    print(f"machine      {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"runs         bench_pipeline.py, {args.days} days, runner {args.runner}"
          + (f" ({args.workers} workers)" if args.runner == "multiprocess" else "")
          + f", largest peak of {args.repeat} fresh processes per cell")
    head = "".join(f"{f'{p} x {args.days}':>12}" for p in sizes)
    print(f"{'layout':18}{'quarantined':>12}{head}{'largest / smallest':>20}  goal <= +{GOAL:.0%}")
    met = True
    for layout, share in itertools.product(args.layouts, args.shares):
        row = [peaks[layout, share, p] for p in sizes]
        growth = row[-1] / row[0] - 1
        met &= growth <= GOAL
        print(f"{layout:18}{share:>11.0%} " + "".join(f"{v:>8.0f} MiB" for v in row)
              + f"{growth:>+19.1%}  {'met' if growth <= GOAL else 'NOT met'}")
    print(f"goal         {'met' if met else 'NOT met'} in every layout and share")
    return 0


if __name__ == "__main__":
    sys.exit(main())
