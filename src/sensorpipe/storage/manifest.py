"""The manifest of a written dataset version: every file's size, record count and hashes.

Stored under ``"manifest"`` in the version's ``sensorpipe.json`` (written last,
by the driver's ``_write_sidecars``), so readers can tell a complete, untouched
version from one whose files were cut, corrupted, swapped or edited:

- ``files``: for every file of the version folder but ``sensorpipe.json``
  itself (shards of both formats, ``dataset_info.json``, ``features.json``,
  ``normalization.json``, the class-label lists): ``bytes``, ``sha256``; shards
  also ``split``, ``format``, ``shard``, ``records`` (the split's shard lengths
  as the writer counted them) and ``edge_sha256``, a hash of the first and last
  :data:`EDGE_BYTES` bytes. Two shards that happen to have the same size (or the
  test shard copied over a validation shard) still differ there, since each
  starts with its own first record, so ``open()`` detects a swap by reading
  8 KiB per shard instead of hashing whole shards.
- ``normalization_sha256``: hash of the normalization parameters (canonical
  JSON), so an edit of them in ``sensorpipe.json`` or ``normalization.json``
  is caught before ``denormalize`` could return other numbers.
- ``sidecar_sha256``: hash of the rest of ``sensorpipe.json`` (channels,
  fingerprint, config; not the normalization nor the manifest), for the same
  reason.

Hashes are sha256 (``hashlib.file_digest``; files are hashed on a few threads,
hashlib releases the GIL while it hashes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sensorpipe.integrity import DatasetIntegrityError, corrupt_json

MANIFEST_VERSION = 1
EDGE_BYTES = 4096
SIDECAR = "sensorpipe.json"
SHARD_RE = re.compile(r"^(?P<name>.+)-(?P<split>[^-.]+)\.(?P<format>array_record|tfrecord)-(?P<shard>\d{5})-of-"
                      r"(?P<of>\d{5})$")


def canonical_sha256(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys, no spaces; NaN as ``NaN``), stable across round trips."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def edge_sha256_of(head: bytes, tail: bytes) -> str:
    return hashlib.sha256(head + b"\0" + tail).hexdigest()


def edge_sha256(path: str | Path, size: int | None = None) -> str:
    """Hash of the first and last :data:`EDGE_BYTES` bytes of a file (both the whole file when smaller)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size if size is None else size
        head = fh.read(EDGE_BYTES)
        fh.seek(max(0, size - EDGE_BYTES))
        tail = fh.read(EDGE_BYTES)
    return edge_sha256_of(head, tail)


def read_json(path: str | Path) -> Any:
    """A sidecar JSON file, or a :class:`DatasetIntegrityError` naming it when it does not parse."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise corrupt_json(path, e) from None


def shard_lengths(dataset_info: dict) -> dict[str, list[int]]:
    """Records per shard of each split, as ``dataset_info.json`` states them."""
    try:
        return {s["name"]: [int(x) for x in s.get("shardLengths", [])] for s in dataset_info["splits"]}
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetIntegrityError(f"dataset_info.json: no usable split list ({e!r}); the file is edited or cut") \
            from None


def build_manifest(version_dir: Path, normalization: dict, sidecar: dict,
                   shards: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The manifest of every file now in ``version_dir`` but ``sensorpipe.json`` (see the module docstring).

    ``version_dir`` may be a staging folder: names are relative, so the manifest
    stays valid when the folder is renamed into place. ``sidecar`` is the rest
    of ``sensorpipe.json`` (without the manifest). ``shards``: shard files
    already hashed by :func:`shard_digests` (the others are hashed here).
    """
    lengths = shard_lengths(read_json(version_dir / "dataset_info.json"))
    names = sorted(p.name for p in version_dir.iterdir() if p.is_file() and p.name != SIDECAR
                   and not p.name.startswith("."))
    known = shards or {}

    def entry(name: str) -> tuple[str, dict[str, Any]]:
        path = version_dir / name
        m = SHARD_RE.match(name)
        e = dict(known[name]) if name in known else _digest(path, shard=m is not None)
        if m:
            split, shard = m["split"], int(m["shard"])
            per_shard = lengths.get(split, [])
            if len(per_shard) != int(m["of"]) or shard >= len(per_shard):
                raise DatasetIntegrityError(f"{path}: shard {shard} of {m['of']} but dataset_info.json lists "
                                            f"{len(per_shard)} shards for split {split!r}")
            e.update(split=split, format=m["format"], shard=shard, records=per_shard[shard])
        return name, e

    with ThreadPoolExecutor(max_workers=_HASH_THREADS) as pool:
        files = dict(pool.map(entry, names))
    return {"manifest_version": MANIFEST_VERSION, "algorithm": "sha256", "edge_bytes": EDGE_BYTES,
            "normalization_sha256": canonical_sha256(normalization), "sidecar_sha256": sidecar_sha256(sidecar),
            "files": files}


def shard_digests(version_dir: Path) -> dict[str, dict[str, Any]]:
    """Size, sha256 and edge hash of every shard file now in ``version_dir``, for :func:`build_manifest`.

    Why apart: hashing the shards is most of the manifest's time (hundreds of MB), and the shards are
    complete before TFDS's metadata is written; the driver hashes them while that is written (a worker
    importing TFDS, or this process) instead of after it. Call it only once every shard is closed.
    """
    names = sorted(p.name for p in version_dir.iterdir() if p.is_file() and SHARD_RE.match(p.name))
    with ThreadPoolExecutor(max_workers=_HASH_THREADS) as pool:
        return dict(zip(names, pool.map(lambda n: _digest(version_dir / n, shard=True), names)))


def _digest(path: Path, shard: bool) -> dict[str, Any]:
    """A file's manifest entry less its shard fields: size and sha256, and for a shard its edge hash."""
    e: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    if shard:
        e["edge_sha256"] = edge_sha256(path, e["bytes"])
    return e


#: threads that hash files (hashlib releases the GIL while it hashes)
_HASH_THREADS = max(1, min(4, os.cpu_count() or 1))


def sidecar_sha256(side: dict[str, Any]) -> str:
    """Checksum of ``sensorpipe.json`` less its normalization (checked on its own) and its manifest."""
    return canonical_sha256({k: v for k, v in side.items() if k not in ("manifest", "normalization")})


def count_records(path: str | Path, fmt: str) -> int:
    """Records actually in a shard, read from the file: the ArrayRecord footer index, or the TFRecord frames.

    Raises :class:`DatasetIntegrityError` naming the file when it does not parse.
    """
    from sensorpipe.integrity import corrupt_shard

    if fmt == "array_record":
        from array_record.python.array_record_module import ArrayRecordReader

        try:
            reader = ArrayRecordReader(str(path), "readahead_buffer_size:0,max_parallelism:0")
            try:
                n, ok = int(reader.num_records()), reader.ok()
            finally:
                reader.close()
        except RuntimeError as e:
            raise corrupt_shard(path, e) from None
        if not ok:   # a cut or damaged footer: the reader reports 0 records and a failed status
            raise corrupt_shard(path, ValueError("the ArrayRecord reader cannot read its footer index"))
        return n
    return _count_tfrecord_frames(Path(path))


def _count_tfrecord_frames(path: Path) -> int:
    """TFRecord frames (8-byte length, 4-byte CRC, data, 4-byte CRC) walked by their lengths."""
    from sensorpipe.integrity import corrupt_shard

    size = path.stat().st_size
    n, pos = 0, 0
    with open(path, "rb") as fh:
        while pos < size:
            head = fh.read(8)
            if len(head) < 8:
                raise corrupt_shard(path, ValueError(f"cut TFRecord frame header at byte {pos}"))
            pos += 16 + int.from_bytes(head, "little")
            if pos > size:
                raise corrupt_shard(path, ValueError(f"TFRecord frame {n} runs past the end of the file"))
            fh.seek(pos)
            n += 1
    return n
