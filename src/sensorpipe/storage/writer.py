"""Write serialized window records as a TFDS-loadable dataset directory.

Records arrive already serialized (``FeaturesDict.serialize_example``), in
their final order, as per-unit spill files (:class:`RecordSpill`). Each split
is cut into shards of about ``target_shard_mb``: the number of shards is
``ceil(split bytes / target)`` and records go to shards in order by their
cumulative byte offset, so the cut depends only on the records, never on the
runner. ArrayRecord shards are always written (``group_size:1`` for random
access); TFRecord shards too when asked, with identical shard boundaries.

TFDS 4.9 facts this follows: metadata is written with TFDS's own
``write_metadata`` while only the primary format's shards are present (it
globs the directory); when TFRecord is enabled it is the primary format (so
``as_dataset`` reads it) and ArrayRecord is declared as an alternative format
(``as_data_source`` switches to it).

Each shard is its own job (:class:`Shard`, :func:`write_shard`): the
multiprocess runner writes a split's shards on all its workers at once, then
the TFDS metadata (:func:`write_metadata`), then the alternative format's
shards. Any order of the shard jobs writes the same files.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from sensorpipe.config import OutputConfig

TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
_AR_OPTIONS = {"none": "uncompressed", "zstd": "zstd:3", "brotli": "brotli:6", "snappy": "snappy"}


@dataclass(frozen=True)
class RecordSpill:
    """Serialized records of one unit on disk: ``<stem>.bin`` (bytes) and ``<stem>.len`` (little-endian
    int64 record lengths, no header: read back with one ``fromfile``, not an ``.npy`` header parse per unit)."""

    stem: str

    @staticmethod
    def write(stem: str, records: list[bytes]) -> "RecordSpill":
        Path(stem).parent.mkdir(parents=True, exist_ok=True)
        with open(stem + ".bin.tmp", "wb") as fh:
            for r in records:
                fh.write(r)
        np.array([len(r) for r in records], "<i8").tofile(stem + ".len.tmp")
        os.replace(stem + ".bin.tmp", stem + ".bin")
        os.replace(stem + ".len.tmp", stem + ".len")
        return RecordSpill(stem)

    def lengths(self) -> np.ndarray:
        return np.fromfile(self.stem + ".len", "<i8").astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[bytes]:
        return self.records(0, None)

    def records(self, first: int, stop: int | None) -> Iterator[bytes]:
        """Records ``first`` to ``stop`` (exclusive; None: to the end), read from the first one's offset."""
        lengths = self.lengths()
        with open(self.stem + ".bin", "rb") as fh:
            fh.seek(int(lengths[:first].sum()))
            for n in lengths[first:stop]:
                yield fh.read(int(n))


def shard_assignment(lengths: np.ndarray, target_bytes: float) -> tuple[int, np.ndarray]:
    """(number of shards, shard index per record) from record sizes alone."""
    total = int(lengths.sum())
    n_shards = max(1, math.ceil(total / target_bytes)) if lengths.size else 1
    n_shards = min(n_shards, max(1, lengths.size))
    before = np.cumsum(lengths) - lengths
    shard = np.minimum((before * n_shards) // max(total, 1), n_shards - 1).astype(np.int64)
    return n_shards, shard


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _TFRecordWriter:
    """TFRecord framing (length, masked CRC32C, data, masked CRC32C) without TensorFlow."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "wb")

    def write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        self._fh.write(header + struct.pack("<I", _masked_crc(header)) + record + struct.pack("<I", _masked_crc(record)))

    def close(self) -> None:
        self._fh.close()


class _ArrayRecordWriter:
    def __init__(self, path: str, compression: str) -> None:
        from array_record.python import array_record_module

        self._w = array_record_module.ArrayRecordWriter(path, f"group_size:1,{_AR_OPTIONS[compression]}")

    def write(self, record: bytes) -> None:
        self._w.write(record)

    def close(self) -> None:
        self._w.close()


def _shard_path(version_dir: Path, name: str, split: str, fmt: str, i: int, n: int) -> Path:
    return version_dir / f"{name}-{split}.{fmt}-{i:05d}-of-{n:05d}"


@dataclass(frozen=True)
class Shard:
    """One shard file of a split: records ``start`` to ``stop`` (exclusive) of the split, in order."""

    split: str
    index: int
    count: int          # shards in the split
    start: int
    stop: int


@dataclass(frozen=True)
class SplitPlan:
    """A split's records (its spills, in order) cut into shards: from record sizes alone (:func:`shard_assignment`)."""

    name: str
    spills: list[RecordSpill]
    shards: list[Shard]
    num_bytes: int

    @property
    def shard_lengths(self) -> list[int]:
        return [s.stop - s.start for s in self.shards]


def plan_split(split: str, spills: list[RecordSpill], target_bytes: float) -> SplitPlan:
    lengths = np.concatenate([s.lengths() for s in spills]) if spills else np.zeros(0, np.int64)
    n_shards, shard_of = shard_assignment(lengths, target_bytes)
    # shard_of never decreases: shard i holds one contiguous run of records (an empty one in between, too)
    bounds = np.searchsorted(shard_of, np.arange(n_shards + 1), side="left")
    shards = [Shard(split, i, n_shards, int(bounds[i]), int(bounds[i + 1])) for i in range(n_shards)]
    return SplitPlan(split, list(spills), shards, int(lengths.sum()))


def write_shard(version_dir: Path, name: str, fmt: str, compression: str, plan: SplitPlan, shard: Shard) -> None:
    """Write one shard file: its records, read from the spills that hold them."""
    path = str(_shard_path(version_dir, name, plan.name, fmt, shard.index, shard.count))
    writer = _ArrayRecordWriter(path, compression) if fmt == "array_record" else _TFRecordWriter(path)
    first = 0                      # the split's index of the spill's first record
    for spill in plan.spills:
        n = int(spill.lengths().size)
        if first + n > shard.start and first < shard.stop:
            for record in spill.records(max(0, shard.start - first), min(n, shard.stop - first)):
                writer.write(record)
        first += n
        if first >= shard.stop:
            break
    writer.close()


def write_split(version_dir: Path, name: str, split: str, spills: list[RecordSpill], fmt: str,
                compression: str, target_bytes: float) -> tuple[list[int], int]:
    """Write one split in one format, shard after shard (one writer open at a time, so memory stays one
    shard's buffers as the split grows); returns (records per shard, total bytes)."""
    plan = plan_split(split, spills, target_bytes)
    for shard in plan.shards:
        write_shard(version_dir, name, fmt, compression, plan, shard)
    return plan.shard_lengths, plan.num_bytes


def primary_format(out: OutputConfig) -> str:
    """The format TFDS's metadata names: TFRecord when written (``as_dataset`` reads it), else ArrayRecord."""
    return "tfrecord" if "tfrecord" in out.formats else "array_record"


def _add_release_notes(version_dir: Path, out: OutputConfig) -> None:
    """``write_metadata`` has no release-notes argument; add them to the DatasetInfo JSON TFDS reads back."""
    import json

    path = version_dir / "dataset_info.json"
    info = json.loads(path.read_text())
    info["releaseNotes"] = {out.version: out.release_notes or f"sensorpipe dataset version {out.version}."}
    path.write_text(json.dumps(info, indent=2, sort_keys=True))


def plan_dataset(splits: dict[str, list[RecordSpill]], out: OutputConfig) -> list[SplitPlan]:
    return [plan_split(split, spills, out.target_shard_mb * 1024 * 1024) for split, spills in splits.items()]


def write_metadata(version_dir: Path, plans: list[SplitPlan], features, out: OutputConfig, description: str) -> None:
    """TFDS's metadata of the primary format's shards, which must all be written (``write_metadata`` globs them)."""
    import tensorflow_datasets as tfds

    primary = primary_format(out)
    split_infos = [tfds.core.SplitInfo(
        name=p.name, shard_lengths=p.shard_lengths, num_bytes=p.num_bytes,
        filename_template=tfds.core.ShardedFileTemplate(
            data_dir=version_dir, template=TEMPLATE, dataset_name=out.name, split=p.name, filetype_suffix=primary))
        for p in plans]
    tfds.folder_dataset.write_metadata(
        data_dir=version_dir, features=features, split_infos=split_infos, version=out.version,
        filename_template=TEMPLATE, check_data=False,
        description="\n\n".join(d for d in (out.description, description) if d), citation=out.citation or None,
        homepage=out.homepage or None, alternative_file_formats=["array_record"] if primary != "array_record" else None)
    _add_release_notes(version_dir, out)
