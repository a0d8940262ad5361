"""Examples per second through each reader, against raw ArrayRecord reads (the limit).

Uses the dataset written by ``benchmarks/bench_pipeline.py`` (run it first, or pass
``--dataset``): 700 day windows of 1440 x 9 channels. Each reader visits every
train example once in a seeded random order.

    python benchmarks/bench_loaders.py [--dataset .bench/out] [--batch 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _rate(n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=".bench/out")
    ap.add_argument("--split", default="train")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)
    if not Path(args.dataset).exists():
        print(f"{args.dataset} does not exist: run `python benchmarks/bench_pipeline.py` first", file=sys.stderr)
        return 2

    import sensorpipe
    from array_record.python.array_record_data_source import ArrayRecordDataSource

    ds = sensorpipe.open(args.dataset)
    split = ds[args.split]
    n = len(split)
    order = np.random.default_rng(0).permutation(n)
    raw = ArrayRecordDataSource(split._paths)
    rates = {"raw ArrayRecord bytes (limit)": _rate(n, lambda: [raw[int(i)] for i in order])}
    rates["sensorpipe.open() random access"] = _rate(n, lambda: [split[int(i)] for i in order])
    try:
        from sensorpipe.access.torch import make_dataloader

        for workers in (0, 2):
            loader = make_dataloader(args.dataset, args.split, batch_size=args.batch, seed=0, num_workers=workers,
                                     fields=("input", "mask"))
            rates[f"torch DataLoader, {workers} workers"] = _rate(n, lambda: [b for b in loader])
    except ImportError as e:
        print(f"torch skipped: {e}")
    try:
        from sensorpipe.access.grain import make_grain_loader

        loader = make_grain_loader(args.dataset, args.split, worker_count=0, shuffle=True, seed=0,
                                   fields=("input", "mask"))
        rates["grain DataLoader, 0 workers"] = _rate(n, lambda: [b for b in loader])
    except ImportError as e:
        print(f"grain skipped: {e}")
    limit = rates["raw ArrayRecord bytes (limit)"]
    print(f"dataset {ds.version_dir} split {args.split}: {n} examples of {split[0]['input'].shape}")
    for name, r in rates.items():
        print(f"{name:38} {r:10.0f} examples/s  ({r / limit:6.1%} of raw)")
    if "torch DataLoader, 0 workers" in rates:
        print(f"2 workers / 1 worker: {rates['torch DataLoader, 2 workers'] / rates['torch DataLoader, 0 workers']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
