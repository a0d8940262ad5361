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
        lengths = self.lengths()
        with open(self.stem + ".bin", "rb") as fh:
            for n in lengths:
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


def write_split(version_dir: Path, name: str, split: str, spills: list[RecordSpill], fmt: str,
                compression: str, target_bytes: float) -> tuple[list[int], int]:
    """Write one split in one format; returns (records per shard, total bytes)."""
    lengths = np.concatenate([s.lengths() for s in spills]) if spills else np.zeros(0, np.int64)
    n_shards, shard_of = shard_assignment(lengths, target_bytes)

    def open_shard(i: int):
        path = str(_shard_path(version_dir, name, split, fmt, i, n_shards))
        return _ArrayRecordWriter(path, compression) if fmt == "array_record" else _TFRecordWriter(path)

    # records go to shards in order (shard_of never decreases): one writer open at a time, so a writer's
    # buffers are held for one shard, not for all of them at once (memory stays flat as the split grows)
    current, writer = 0, open_shard(0)
    k = 0
    for spill in spills:
        for record in spill:
            while shard_of[k] > current:    # the next shard (an empty one in between, too, is created)
                writer.close()
                current += 1
                writer = open_shard(current)
            writer.write(record)
            k += 1
    writer.close()
    for i in range(current + 1, n_shards):  # shards after the last record (none with records): empty files
        open_shard(i).close()
    return np.bincount(shard_of, minlength=n_shards).tolist(), int(lengths.sum())


def _add_release_notes(version_dir: Path, out: OutputConfig) -> None:
    """``write_metadata`` has no release-notes argument; add them to the DatasetInfo JSON TFDS reads back."""
    import json

    path = version_dir / "dataset_info.json"
    info = json.loads(path.read_text())
    info["releaseNotes"] = {out.version: out.release_notes or f"sensorpipe dataset version {out.version}."}
    path.write_text(json.dumps(info, indent=2, sort_keys=True))


def write_dataset(version_dir: Path, splits: dict[str, list[RecordSpill]], features, out: OutputConfig,
                  description: str) -> dict[str, list[int]]:
    """Write every split's shards and the TFDS metadata; returns shard lengths per split."""
    import tensorflow_datasets as tfds

    version_dir.mkdir(parents=True, exist_ok=True)
    target = out.target_shard_mb * 1024 * 1024
    primary = "tfrecord" if "tfrecord" in out.formats else "array_record"
    shard_lengths: dict[str, list[int]] = {}
    split_infos = []
    for split, spills in splits.items():
        lengths, nbytes = write_split(version_dir, out.name, split, spills, primary, out.compression, target)
        shard_lengths[split] = lengths
        split_infos.append(tfds.core.SplitInfo(
            name=split, shard_lengths=lengths, num_bytes=nbytes,
            filename_template=tfds.core.ShardedFileTemplate(
                data_dir=version_dir, template=TEMPLATE, dataset_name=out.name, split=split,
                filetype_suffix=primary)))
    tfds.folder_dataset.write_metadata(
        data_dir=version_dir, features=features, split_infos=split_infos, version=out.version,
        filename_template=TEMPLATE, check_data=False,
        description="\n\n".join(d for d in (out.description, description) if d), citation=out.citation or None,
        homepage=out.homepage or None, alternative_file_formats=["array_record"] if primary != "array_record" else None)
    _add_release_notes(version_dir, out)
    if primary != "array_record":
        for split, spills in splits.items():
            write_split(version_dir, out.name, split, spills, "array_record", out.compression, target)
    return shard_lengths
