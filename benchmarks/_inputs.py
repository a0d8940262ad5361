"""Benchmark inputs laid out as real exports are: one shared file or one per participant, some rows invalid.

The benchmark cohorts are generated one Parquet per participant (the synthetic
Fitbit cohort) or as one long file (the LSM baseline's ``gen``). Real exports
come both ways, and rarely clean, so :func:`write_layout` streams any of them,
one record batch at a time (memory bounded by a batch, never the cohort), into

* ``single-file``: every participant's rows in ONE Parquet (``all.parquet``),
  as Fitabase's merged CSVs, multi-subject CGM files and warehouse dumps hold them;
* ``per-participant``: one Parquet per participant (``<id>.parquet``),

with a share of the rows made invalid in the ways exports are (:data:`INVALID_KINDS`):
a ``-999`` sentinel value (out of range for every channel the benchmarks map,
except ``glucose``, whose registry policy clips instead of quarantining), a
device field nobody mapped (``altitude``: ``unknown_field``) and a missing
timestamp (``unparseable_time``). Which rows turn invalid depends only on the
seed and the source batch, so both layouts of one cohort hold the same rows.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

LAYOUTS = ("per-participant", "single-file")
#: how an invalid row is made, in turn: a sentinel value, an unmapped field, a missing time
INVALID_KINDS = ("sentinel_value", "unknown_field", "missing_time")
SENTINEL_VALUE = -999.0
UNKNOWN_FIELD = "altitude"
_BATCH_ROWS = 1 << 20


@dataclass(frozen=True)
class LongColumns:
    """The column names of a long-format file: who, what, when, how much."""

    participant: str
    field: str
    time: str
    value: str


def invalidate(table: pa.Table, share: float, rng: np.random.Generator, cols: LongColumns) -> tuple[pa.Table, dict]:
    """``table`` with ``round(share * rows)`` rows made invalid (kinds in turn), and the count per kind."""
    n = table.num_rows
    picked = rng.permutation(n)[: int(round(share * n))]
    counts = {}
    for k, kind in enumerate(INVALID_KINDS):
        mask = np.zeros(n, bool)
        mask[picked[k::len(INVALID_KINDS)]] = True
        counts[kind] = int(mask.sum())
        if not counts[kind]:
            continue
        sel = pa.array(mask)
        name = {"sentinel_value": cols.value, "unknown_field": cols.field, "missing_time": cols.time}[kind]
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, pa.string())
        new = pa.scalar({"sentinel_value": SENTINEL_VALUE, "unknown_field": UNKNOWN_FIELD,
                         "missing_time": None}[kind], col.type)
        table = table.set_column(table.schema.get_field_index(name), name, pc.if_else(sel, new, col))
    return table, counts


def write_layout(sources: list[Path], dst: Path, layout: str, share: float, seed: int,
                 cols: LongColumns) -> dict[str, int]:
    """Stream the long-format Parquet ``sources`` into ``dst`` laid out as ``layout``, ``share`` of rows
    invalid; returns the count of invalid rows per kind. ``dst`` is replaced."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if not 0.0 <= share < 1.0:
        raise ValueError(f"quarantine share {share}: give a fraction in [0, 1)")
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    writers: dict[str, pq.ParquetWriter] = {}
    totals = dict.fromkeys(INVALID_KINDS, 0)

    def write(key: str, part: pa.Table) -> None:
        if key not in writers:
            writers[key] = pq.ParquetWriter(dst / f"{key}.parquet", part.schema)
        writers[key].write_table(part)

    try:
        for fi, src in enumerate(sources):
            for bi, batch in enumerate(pq.ParquetFile(src).iter_batches(batch_size=_BATCH_ROWS)):
                part = pa.Table.from_batches([batch])
                if share:
                    part, counts = invalidate(part, share, np.random.default_rng([seed, fi, bi]), cols)
                    totals = {k: totals[k] + counts[k] for k in totals}
                if layout == "single-file":
                    write("all", part)
                    continue
                ids = pc.cast(part.column(cols.participant), pa.string())
                for pid in pc.unique(ids).to_pylist():
                    write(pid, part.filter(pc.equal(ids, pid)))
    finally:
        for w in writers.values():
            w.close()
    return totals


def derived(root: Path, sources: list[Path], layout: str, share: float, seed: int, cols: LongColumns,
            key: str, files_dir: str = "files") -> tuple[Path, dict[str, int]]:
    """:func:`write_layout` into ``root / files_dir``, reused while ``key`` (what the sources were made from),
    the layout, share and seed are unchanged; returns that folder and the invalid rows per kind."""
    tag = hashlib.sha256(f"{key}|{layout}|{share!r}|{seed}".encode()).hexdigest()[:12]
    marker = root / f".layout-{tag}"
    counts_file = root / ".invalid-counts"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        counts = write_layout(sources, root / files_dir, layout, share, seed, cols)
        counts_file.write_text(",".join(f"{k}={v}" for k, v in counts.items()))
        marker.touch()
    counts = dict((k, int(v)) for k, v in (kv.split("=") for kv in counts_file.read_text().split(",")))
    return root / files_dir, counts
