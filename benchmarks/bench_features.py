"""Raw-to-minute feature extraction throughput: one participant-day of 64 Hz PPG + 32 Hz accelerometer.

The day is an Empatica-E4-style session from the synthetic signal models
(:func:`sensorpipe.demo._synth_signals.e4_session`: PPG pulse waves at a
varying heart rate with respiration and walking motion, tri-axial
acceleration in 1/64 g with walks), generated first and not timed. Then:

* ours: :func:`sensorpipe.processing.raw_features.extract` on the PPG (heart
  rate, 1- and 5-minute HRV, quality index) and on the accelerometer (ENMO,
  MAD, steps, intensity, zero-crossing rate);
* baseline: ``neurokit2.ppg_process`` on the same PPG plus a plain numpy
  accelerometer pass (vector magnitude, ENMO, per-minute means).

Both run on one core (BLAS/OpenMP threads are pinned to 1 before numpy is
imported). Prints wall and CPU seconds, samples per second per core (a
sample is one instant: a PPG value or one x/y/z triple), the multiple of
real time, the peak memory our extraction allocates (tracemalloc, numpy
arrays included) and the peak RSS of the whole process (generation and,
unless skipped, the baseline included).

    python benchmarks/bench_features.py                 # 24 h
    python benchmarks/bench_features.py --hours 6 --skip-baseline
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import platform
import resource
import sys
import time
import tracemalloc
import warnings

import numpy as np

from sensorpipe.core.inputs import RawSignal
from sensorpipe.processing import raw_features
from sensorpipe.demo import _synth_signals as synth

START_S = 1_700_000_040  # a UTC minute boundary


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _ours(ppg: RawSignal, acc: RawSignal) -> tuple[dict[str, int], float, float]:
    def run():
        a, b = raw_features.extract(ppg), raw_features.extract(acc)
        return {"ppg_minute_values": len(a.observations), "acc_minute_values": len(b.observations)}
    return _timed(run)


def _baseline(bvp: np.ndarray, acc_64: np.ndarray) -> tuple[dict[str, int], float, float]:
    import neurokit2 as nk

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, info = nk.ppg_process(bvp, sampling_rate=64)
        g = acc_64 / 64.0
        enmo = np.maximum(np.sqrt((g * g).sum(axis=1)) - 1.0, 0.0) * 1000.0
        n_min = enmo.size // (32 * 60)
        per_minute = enmo[: n_min * 32 * 60].reshape(n_min, -1).mean(axis=1)
        return {"ppg_peaks": len(info["PPG_Peaks"]), "acc_minutes": int(per_minute.size)}
    return _timed(run)


def _report(name: str, samples: int, seconds: float, wall: float, cpu: float, extra: dict) -> None:
    print(f"{name:9s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  {samples / cpu / 1e6:6.2f} M samples/s per core  "
          f"{seconds / wall:7.0f}x real time  {extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-baseline", action="store_true", help="time only sensorpipe's extraction")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    session = synth.e4_session(np.random.default_rng(args.seed), START_S, args.hours)
    ppg = RawSignal("ppg", START_S * 10**9, 64.0, session.bvp, "a.u.", "bench/BVP.csv")
    acc = RawSignal("acc", START_S * 10**9, 32.0, session.acc, "1/64 g", "bench/ACC.csv")
    samples = session.bvp.shape[0] + session.acc.shape[0]
    seconds = args.hours * 3600.0
    print(f"{platform.machine()} {platform.processor() or ''} python {sys.version.split()[0]} numpy {np.__version__}; "
          f"{args.hours:g} h: {session.bvp.shape[0]:,} PPG + {session.acc.shape[0]:,} ACC samples = {samples:,} "
          f"(generated in {time.perf_counter() - t0:.1f} s, not timed)")
    extra, wall, cpu = _ours(ppg, acc)
    _report("sensorpipe", samples, seconds, wall, cpu, extra)
    tracemalloc.start()
    _ours(ppg, acc)
    print(f"sensorpipe peak memory allocated during extraction (tracemalloc, second run): "
          f"{tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB")
    tracemalloc.stop()
    if not args.skip_baseline:
        extra_b, wall_b, cpu_b = _baseline(session.bvp, session.acc)
        _report("neurokit2", samples, seconds, wall_b, cpu_b, extra_b)
        print(f"sensorpipe / baseline wall time: {wall / wall_b:.2f}")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
