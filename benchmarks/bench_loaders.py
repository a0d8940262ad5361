"""Examples per second through each reader, against raw ArrayRecord reads (the limit).

The dataset is the benchmark cohort of ``bench_pipeline.py`` (day windows of
1440 x 9 channels) at a size where one epoch takes seconds, not a fraction of
one, so that worker start-up does not decide the comparison: it is generated
and written once under ``.bench/loaders`` (about a minute) and reused. Pass
``--dataset`` to measure another written dataset instead.

Every reader visits every example of the split once per epoch in a seeded
random order. Each measurement runs one warm-up epoch (page cache, reader
opening, worker start-up: persistent workers keep their readers), then
``--repeats`` timed epochs, and reports the median rate with the range.
Loaders deliver batches of ``--batch`` with only ``input`` and ``mask``.

    python benchmarks/bench_loaders.py [--participants 200 --days 30] [--repeats 5] [--only raw,open,torch]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

_FIELDS = ("input", "mask")


def _dataset(root: Path, participants: int, days: int, seed: int) -> Path:
    """The loader benchmark dataset: written once per (participants, days, seed), then reused."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_pipeline import _cohort, _config

    out = root / "out"
    marker = root / f".written-{participants}x{days}-s{seed}"
    if not marker.exists():
        import shutil

        from sensorpipe.runners.driver import run_pipeline

        for p in root.glob(".written-*"):
            p.unlink()
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        _cohort(root / "cohort", participants, days, seed)
        run_pipeline(str(_config(root / "cohort", out, "multiprocess", os.cpu_count() or 1, "auto")))
        print(f"wrote the loader benchmark dataset ({participants} x {days} days) in "
              f"{time.perf_counter() - t:.0f} s: {out}")
        marker.touch()
    return out


def _epochs(n: int, epoch, repeats: int) -> list[float]:
    """Examples/s of ``repeats`` epochs after one warm-up epoch."""
    got = epoch()
    if got != n:
        raise RuntimeError(f"an epoch gave {got} examples, expected {n}")
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        epoch()
        rates.append(n / (time.perf_counter() - t))
    return rates


def _stream_epochs(n: int, batches, repeats: int) -> list[float]:
    """Examples/s of epochs 2.. of one stream of ``1 + repeats`` epochs (Grain starts its workers per
    iterator, so its epochs are measured inside one iterator; the first epoch is the warm-up)."""
    count, marks = 0, []
    for b in batches:
        count += len(b["input"])
        while count >= (len(marks) + 1) * n:
            marks.append(time.perf_counter())
    if len(marks) != 1 + repeats:
        raise RuntimeError(f"the stream gave {count} examples, expected {(1 + repeats) * n}")
    return [n / (b - a) for a, b in zip(marks, marks[1:])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", help="a written dataset (default: generate the benchmark one under --dir)")
    ap.add_argument("--dir", default=".bench/loaders")
    ap.add_argument("--participants", type=int, default=200)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--split", default="train")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="raw,open,torch,grain,tf",
                    help="comma-separated subset of raw,open,torch,grain,tf")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    path = Path(args.dataset) if args.dataset else _dataset(Path(args.dir).resolve(), args.participants, args.days,
                                                              args.seed)
    if not path.exists():
        print(f"{path} does not exist", file=sys.stderr)
        return 2

    import sensorpipe
    from array_record.python.array_record_data_source import ArrayRecordDataSource

    ds = sensorpipe.open(path)
    split = ds[args.split]
    n = len(split)
    order = [int(i) for i in np.random.default_rng(0).permutation(n)]
    load_before = os.getloadavg()
    rates: dict[str, list[float]] = {}

    def measure(name, epoch):
        got = _epochs(n, epoch, args.repeats)
        rates.setdefault(name, []).extend(got)
        print(f"  {name:40} {np.median(got):9,.0f} examples/s", flush=True)

    if "raw" in only or "open" in only:
        raw = ArrayRecordDataSource(split._paths)

        def raw_epoch():
            for i in order:
                raw[i]
            return n

        def open_epoch():
            for i in order:
                split[i]
            return n

        for _ in range(2):  # interleaved: both see the same machine load
            measure("raw ArrayRecord bytes (limit)", raw_epoch)
            measure("sensorpipe.open() random access", open_epoch)
    if "torch" in only:
        try:
            from sensorpipe.access.torch import make_dataloader

            for workers in (0, 1, 2):
                loader = make_dataloader(path, args.split, batch_size=args.batch, seed=0, num_workers=workers,
                                         fields=_FIELDS)
                measure(f"torch DataLoader, {workers} workers", lambda: sum(len(b["input"]) for b in loader))
                del loader
        except ImportError as e:
            print(f"torch skipped: {e}")
    if "grain" in only:
        try:
            from sensorpipe.access.grain import make_grain_loader

            for workers in (0, 2):
                loader = make_grain_loader(path, args.split, batch_size=args.batch, worker_count=workers,
                                           shuffle=True, seed=0, fields=_FIELDS, num_epochs=1 + args.repeats)
                name = f"grain DataLoader, {workers} workers"
                rates[name] = _stream_epochs(n, loader, args.repeats)
                print(f"  {name:40} {np.median(rates[name]):9,.0f} examples/s", flush=True)
        except ImportError as e:
            print(f"grain skipped: {e}")
    if "tf" in only:
        try:
            from sensorpipe.access.tfdata import to_tf_dataset

            tf_ds = to_tf_dataset(path, args.split, fields=_FIELDS, shuffle_seed=0, batch_size=args.batch)
            measure("tf.data from ArrayRecord", lambda: sum(int(b["input"].shape[0]) for b in tf_ds))
        except ImportError as e:
            print(f"tf.data skipped: {e}")

    decode_us: dict[str, float] = {}
    if "open" in only:  # where open()'s time goes, per record: 100 records already read, median of 7 loops
        from sensorpipe.access.decode import parse_example

        split[0]
        decoder = split._cache["decoder"]
        records = [split.raw(i) for i in order[:100]]

        def per_record_us(fn, loops=7):
            times = []
            for _ in range(loops):
                t = time.perf_counter()
                for r in records:
                    fn(r)
                times.append((time.perf_counter() - t) / len(records) * 1e6)
            return float(np.median(times))

        decode_us[f"{decoder.path} decode (open)"] = per_record_us(decoder)
        decode_us["protobuf-wrapper decode"] = per_record_us(
            lambda r: decoder._decode(parse_example(r).features.feature))
        decode_us["TFDS deserialize_example_np"] = per_record_us(ds.features.deserialize_example_np, loops=2)
        decode_us["mean record bytes"] = float(np.mean([len(r) for r in records]))

    load_after = os.getloadavg()
    print(f"\nmachine {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"dataset {ds.version_dir} split {args.split}: {n} examples of {split[0]['input'].shape}; "
          f"median of the timed epochs after a warm-up epoch [min-max]")
    med = {name: float(np.median(r)) for name, r in rates.items()}
    limit = med.get("raw ArrayRecord bytes (limit)", 0.0)
    for name, r in rates.items():
        share = f"({med[name] / limit:6.1%} of raw)" if limit else ""
        print(f"{name:40} {med[name]:9,.0f} examples/s  [{min(r):,.0f}-{max(r):,.0f}] {share}")
    if decode_us:
        size = decode_us.pop("mean record bytes")
        print(f"per record ({size:,.0f} bytes): " + ", ".join(f"{k} {v:,.1f} us" for k, v in decode_us.items()))
    if "torch DataLoader, 1 workers" in med:
        t = {w: med[f"torch DataLoader, {w} workers"] for w in (0, 1, 2)}
        print(f"torch 2 workers / 1 worker: {t[2] / t[1]:.2f}x; 2 workers / in-process: {t[2] / t[0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
