"""Time MetadataStore.record_run with 100k lineage rows on a SQLite file.

Usage: PYTHONPATH=src python benchmarks/bench_metadata.py [n_lineage]
The target is under 2 s for 100k rows (one transaction, executemany batches).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sensorpipe.metadata import LineageRecord, MetadataStore, RunRecord


def lineage_rows(n: int) -> list[LineageRecord]:
    stages = json.dumps({"ingest": "a" * 16, "harmonize": "b" * 16, "window": "c" * 16, "normalize": "d" * 16})
    out = []
    for i in range(n):
        p = f"p{i % 500:04d}"
        f = f"raw/cohort_a/{p}/heart_rate.csv"
        out.append(LineageRecord(
            window_key=f"cohort_a/{p}/{i:07d}", split="train" if i % 10 < 8 else "test",
            source="cohort_a", participant=p, source_files_json=json.dumps([f]),
            row_ranges_json=json.dumps({f: [i * 1440, i * 1440 + 1439]}), stage_hashes_json=stages,
        ))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 100_000
    lineage = lineage_rows(n)
    base = RunRecord(
        run_id="bench-0", started_at="2024-01-01T00:00:00+00:00", finished_at="2024-01-01T01:00:00+00:00",
        runner="multiprocess", workers=8, status="succeeded", dataset_name="bench", dataset_version="1.0.0",
        fingerprint="f" * 64, code_version="bench", config_json="{}", output_dir="/tmp/bench", lineage=lineage,
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = MetadataStore(f"sqlite:///{Path(tmp) / 'metadata.db'}")
        for i in range(3):  # first run creates the version; later ones add runs to it
            t0 = time.perf_counter()
            store.record_run(replace(base, run_id=f"bench-{i}"))
            print(f"record_run #{i + 1} with {n} lineage rows: {time.perf_counter() - t0:.3f} s")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
