"""End-to-end pipeline throughput on a sized synthetic cohort (``make bench``).

The cohort (Fitbit-style minute data: 5-s heart rate, steps, calories, sleep
stages, HRV, SpO2, skin temperature, EDA scans) is generated to disk first and
reused, so generation is never timed. Each measured run starts from an empty
output folder (no cache). Prints input observations per second (total and per
core; without and with the per-process library imports, which are timed on
their own line: ``--cold`` times them inside the run instead), windows per
second, peak RSS of the driver and of the largest worker, and the share of
time per stage.

``--layout single-file`` puts every participant's rows in ONE long-format
Parquet (as Fitabase merges and warehouse dumps do; default
``per-participant``: one file each), and ``--quarantine-share F`` makes that
fraction of the rows invalid in the ways exports are (a -999 sentinel, an
unmapped field, a missing time; ``benchmarks/_inputs.py``), so they go to
quarantine. Both layouts of a cohort hold the same rows.

``--vs-baseline`` instead times the peer baseline, the pandas pipeline of
``../shared/benchmarks/lsm_baseline.py`` (beside the repository; ``--baseline``
to point elsewhere), against ``sensorpipe run`` on the SAME input: the
baseline's own ``gen`` file (participant_id, channel, t_utc as
timestamp[ns, UTC], value; 10 channels), laid out and invalidated as asked for
sensorpipe (the baseline always reads one file). Each side runs as a whole
process (imports count), alternated ``--repeats`` times; it prints the min of
each, the peak RSS of each and the ratio.

    python benchmarks/bench_pipeline.py --participants 50 --days 14 --runner multiprocess --workers 2 \
        [--start-method fork|forkserver] [--tuning fast] [--cold] [--layout single-file] [--quarantine-share 0.35]
    python benchmarks/bench_pipeline.py --vs-baseline --participants 50 --days 14 --runner local --layout single-file
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _inputs import LAYOUTS, LongColumns, derived  # noqa: E402
from _vs_baseline import compare_with_baseline  # noqa: E402

from sensorpipe.demo import synthetic  # noqa: E402

_COHORT_COLUMNS = LongColumns(participant="user_id", field="metric", time="timestamp_ms", value="value")


def _cohort(root: Path, participants: int, days: int, seed: int) -> Path:
    # the generator's source is part of the key: a changed generator (new files, e.g. an activity log) regenerates
    gen = hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:12]
    marker = root / f".cohort-{participants}x{days}-s{seed}-{gen}"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        synthetic.write_minute_cohort(root / "fitbit_cohort", participants, days, seed=seed)
        marker.touch()
    return root


def _laid_out(root: Path, participants: int, days: int, seed: int, layout: str, share: float) -> tuple[Path, dict]:
    """The folder holding ``fitbit_cohort`` in ``layout`` with ``share`` of its rows invalid (the generated
    cohort itself when that is one file per participant, all valid), and the invalid rows per kind."""
    base = _cohort(root / "cohort", participants, days, seed)
    if layout == "per-participant" and not share:
        return base, {}
    src = base / "fitbit_cohort"
    key = next(base.glob(".cohort-*")).name
    folder = root / "laid_out"
    _, counts = derived(folder / "fitbit_cohort", sorted((src / "minute").glob("*.parquet")), layout, share, seed,
                        _COHORT_COLUMNS, key, files_dir="minute")
    for name in ("participants.csv", "activities.csv"):
        shutil.copyfile(src / name, folder / "fitbit_cohort" / name)
    return folder, counts


def _laid_out_elsewhere(root: Path, participants: int, days: int, seed: int, layout: str,
                        share: float) -> tuple[Path, dict]:
    """:func:`_laid_out` in a forked child process. Generating a cohort peaks far above the run it feeds
    (BENCHMARKS.md, session 11), and this process's peak RSS is what the benchmark reports as the run's
    driver: made here, a first run would report the generator's peak. Without fork (Windows) it is made here."""
    args = (root, participants, days, seed, layout, share)
    if "fork" not in mp.get_all_start_methods():
        return _laid_out(*args)
    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_send_laid_out, args=(send, *args), name="bench-input")
    child.start()
    send.close()
    try:
        ok, value = receive.recv()
    except EOFError:
        child.join()
        raise RuntimeError(f"making the benchmark input under {root} died (exit code {child.exitcode})") from None
    child.join()
    if not ok:
        raise value
    return value


def _send_laid_out(send, *args) -> None:
    try:
        send.send((True, _laid_out(*args)))
    except BaseException as e:  # noqa: BLE001 - raised again in the parent
        send.send((False, e))


def _import_libraries(cold: bool) -> float:
    """Import what a run loads before the timer starts, and return the seconds it took.

    A throughput is a rate over the data, and library imports are paid once per process whatever the
    cohort size, so by default they are timed on their own line (``imports``) and the throughput is
    printed without and with them. The pipeline itself (numpy, pyarrow, pandas, the stages) is always
    imported first; the rest (``sensorpipe.runners._warm``: TFDS's writer, the caption levels with
    scipy.signal, the report, SQLAlchemy; about 1 s) is what a run would otherwise import on the way.
    ``cold`` leaves that rest to the run, as a fresh ``sensorpipe run`` does: a forked multiprocess
    run then imports it in the driver while the workers run pass 1.
    """
    t = time.perf_counter()
    import sensorpipe.runners.driver  # noqa: F401
    if not cold:
        import sensorpipe.runners._warm  # noqa: F401
    return time.perf_counter() - t


def _config(root: Path, out: Path, runner: str, workers: int, start_method: str, tuning: str = "none") -> Path:
    demo = synthetic.pipeline_config()
    cfg = {
        "sources": [demo["sources"][0]],
        "channels": ["heart_rate", "resting_heart_rate", "hrv_rmssd", "spo2", "steps", "calories", "sleep_stage",
                     "eda_level", "skin_temperature"],
        "window": {"size_min": 1440, "stride_min": 1440, "alignment": "local_midnight", "max_missing_ratio": 0.9},
        "output": {"dir": str(out), "name": "bench", "target_shard_mb": 64.0},
        "runner": {"name": runner, "workers": workers, "start_method": start_method, "tuning": tuning},
        "privacy": {"pseudonymize": True, "key_file": str(root / "bench.key")},
    }
    (root / "bench.key").write_text("bench-key-0123456789abcdef")
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=50)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runner", choices=("local", "multiprocess"), default="multiprocess")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--start-method", choices=("auto", "fork", "forkserver", "spawn"), default="auto",
                    help="how multiprocess workers start (runner.start_method)")
    ap.add_argument("--tuning", choices=("none", "fast"), default="none",
                    help="runner.tuning: fast adds the fork warm-up and re-fork")
    ap.add_argument("--cold", action="store_true",
                    help="time the run's own imports (TFDS, scipy.signal, SQLAlchemy) inside the run")
    ap.add_argument("--layout", choices=LAYOUTS, default="per-participant",
                    help="single-file: all participants in one long Parquet; per-participant: one file each")
    ap.add_argument("--quarantine-share", type=float, default=0.0, metavar="F",
                    help="fraction of rows made invalid (sentinel value, unmapped field, missing time)")
    ap.add_argument("--vs-baseline", action="store_true",
                    help="time ../shared/benchmarks/lsm_baseline.py against `sensorpipe run` on its own input, "
                         "whole processes, alternated")
    ap.add_argument("--baseline", default=None, help="path of lsm_baseline.py (default: ../shared/benchmarks/ "
                                                     "beside the repository)")
    ap.add_argument("--repeats", type=int, default=3, help="--vs-baseline: alternated runs of each (min is kept)")
    ap.add_argument("--dir", default=".bench")
    args = ap.parse_args(argv)
    if not 0.0 <= args.quarantine_share < 1.0:
        ap.error(f"--quarantine-share {args.quarantine_share}: give a fraction in [0, 1)")
    root = Path(args.dir).resolve()
    if args.vs_baseline:
        return compare_with_baseline(args, root)

    imports_s = _import_libraries(args.cold)
    from sensorpipe.runners.driver import run_pipeline

    t = time.perf_counter()
    folder, invalid = _laid_out_elsewhere(root, args.participants, args.days, args.seed, args.layout,
                                          args.quarantine_share)
    gen_s = time.perf_counter() - t
    out = root / "out"
    shutil.rmtree(out, ignore_errors=True)
    config = _config(folder, out, args.runner, args.workers, args.start_method, args.tuning)
    t = time.perf_counter()
    r = run_pipeline(str(config))
    wall = time.perf_counter() - t
    cores = args.workers if args.runner == "multiprocess" else 1
    obs = r.observations_in
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_child = max((u.stats.peaks.get("rss_mib", 0.0) for u in r.units), default=0.0)  # workers report their own peak
    print(f"machine      {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"cohort       {args.participants} participants x {args.days} days (generated/reused in {gen_s:.1f} s, not timed)")
    print(f"runner       {r.runner}")
    print(f"input        {obs:,} observations ({r.rows_in:,} rows, {r.raw_samples_in:,} raw samples)")
    print(f"layout       {args.layout}; {sum(invalid.values()):,} rows made invalid ("
          + ", ".join(f"{k} {v:,}" for k, v in invalid.items()) + f"); {r.rows_quarantined:,} quarantined "
          f"({r.rows_quarantined / max(r.rows_in, 1):.1%} of rows): "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantine_by_reason.items())))
    if args.cold:
        print("imports      TFDS, scipy.signal, SQLAlchemy imported inside the timed run (--cold)")
    else:
        print(f"imports      {imports_s:.2f} s of library imports before the timed run (once per process)")
    print(f"wall         {wall:.2f} s end to end")
    print(f"throughput   {obs / wall / 1e6:.2f} M observations/s total, {obs / wall / cores / 1e6:.2f} M/s per core")
    if not args.cold:
        counted = wall + imports_s
        print(f"with imports {obs / counted / 1e6:.2f} M observations/s total, {obs / counted / cores / 1e6:.2f} M/s per "
              f"core ({counted:.2f} s: the imports added to the run, not overlapped with it)")
    print(f"windows      {r.windows_kept} kept, {r.windows_kept / wall:.1f} windows/s")
    print(f"peak RSS     driver {rss_self:.0f} MiB, largest unit process {rss_child:.0f} MiB")
    print("driver time  " + ", ".join(f"{k} {v:.2f}s" for k, v in r.seconds.items()))
    total = sum(r.stage_seconds.values()) or 1.0
    print(f"unit work    {total:.2f} s summed over units (pass 1 + pass 2 stages)")
    print("stage share  " + ", ".join(f"{k} {v / total:.0%} ({v:.2f}s)" for k, v in
                                      sorted(r.stage_seconds.items(), key=lambda kv: -kv[1])))
    cap_s = r.stage_seconds.get("captions", 0.0)
    print(f"captions     {r.windows_kept / cap_s if cap_s else float('inf'):,.0f} windows captioned/s "
          f"({cap_s:.2f} s, {cap_s / total:.0%} of unit work, {cap_s / cores / wall:.0%} of wall time; "
          f"goal < 20%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
