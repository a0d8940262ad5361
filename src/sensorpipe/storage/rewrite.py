"""A published version with one person's records taken out: new shard files, then one atomic swap.

Erasure (``sensorpipe wipeout``) must not patch shards in place: an ArrayRecord
or TFRecord file whose records were blanked still holds the bytes in its
chunks, and a reader holding the old file open would see a half-edited one.
:func:`drop_participant` therefore builds the whole version again beside it,
under ``<output.dir>/.staging/<id>/version``:

- a shard holding a record of the person is written anew with every other
  record's serialized bytes copied as they were (same order, same writer
  options, so the remaining records are byte-identical);
- every other file is hard-linked (copied where links are not possible);
- ``dataset_info.json`` gets the new shard lengths and split sizes, and the
  manifest in ``sensorpipe.json`` is rebuilt (sizes, sha256, record counts),
  so ``sensorpipe verify`` passes;

then the staged folder and the published one are swapped in one rename
(:func:`~sensorpipe.storage.publish.exchange`; two renames where the kernel
cannot), and the old folder, now in staging, is deleted. The shard count of a
split stays as it was: shard names (``-of-0000N``) are in the manifest and in
TFDS's metadata, and an emptied shard is a valid file with no records.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sensorpipe.storage.manifest import SHARD_RE, SIDECAR, build_manifest, read_json
from sensorpipe.storage.publish import exchange


@dataclass
class VersionErasure:
    """What :func:`drop_participant` took (or, on a dry run, would take) out of one version folder."""

    version_dir: str
    fingerprint: str = ""
    windows_by_split: dict[str, int] = field(default_factory=dict)
    window_keys: list[str] = field(default_factory=list)
    shards_rewritten: list[str] = field(default_factory=list)     # the shard files holding their records

    @property
    def windows(self) -> int:
        return sum(self.windows_by_split.values())


def read_records(path: Path, fmt: str) -> Iterator[bytes]:
    """Every serialized record of one shard file, in order."""
    if fmt == "array_record":
        from array_record.python.array_record_module import ArrayRecordReader

        reader = ArrayRecordReader(str(path), "readahead_buffer_size:0,max_parallelism:0")
        try:
            n = int(reader.num_records())
            step = 256
            for first in range(0, n, step):
                yield from reader.read(list(range(first, min(n, first + step))))
        finally:
            reader.close()
        return
    with open(path, "rb") as fh:
        while head := fh.read(12):
            n = int.from_bytes(head[:8], "little")
            yield fh.read(n)
            fh.read(4)


def _text_field(record: bytes, name: str) -> str:
    from tensorflow_datasets.proto import tf_example_pb2

    return tf_example_pb2.Example.FromString(record).features.feature[name].bytes_list.value[0].decode()


def _theirs(record: bytes, pseudonym: str, needle: bytes) -> bool:
    """Whether a record is the person's: a substring test first (almost every record fails it), then the
    parsed ``participant_id`` field, so a pseudonym that happens to appear elsewhere in a record is no match."""
    return needle in record and _text_field(record, "participant_id") == pseudonym


def _writer(path: Path, fmt: str, compression: str):
    from sensorpipe.storage.writer import _ArrayRecordWriter, _TFRecordWriter

    return _ArrayRecordWriter(str(path), compression) if fmt == "array_record" else _TFRecordWriter(str(path))


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def find_participant(version_dir: Path, pseudonym: str) -> VersionErasure:
    """The person's records in a version: windows per split and keys (from the primary-format shards; the
    ArrayRecord copies beside TFRecord hold the same records), and the shard files of either format holding any."""
    found = VersionErasure(str(version_dir), str(read_json(version_dir / SIDECAR).get("fingerprint", "")))
    needle = pseudonym.encode()
    fmt = read_json(version_dir / "dataset_info.json").get("fileFormat", "array_record")
    for name in sorted(os.listdir(version_dir)):
        m = SHARD_RE.match(name)
        if not m:
            continue
        hits = [r for r in read_records(version_dir / name, m["format"]) if _theirs(r, pseudonym, needle)]
        if hits:
            found.shards_rewritten.append(name)
        if hits and m["format"] == fmt:
            found.windows_by_split[m["split"]] = found.windows_by_split.get(m["split"], 0) + len(hits)
            found.window_keys += [_text_field(r, "key") for r in hits]
    return found


def drop_participant(version_dir: str | Path, staging_root: str | Path, pseudonym: str) -> VersionErasure:
    """Rewrite ``version_dir`` without ``pseudonym``'s records (see the module docstring); a version without
    them is left untouched. ``staging_root`` is a fresh folder on the same file system, removed afterwards."""
    version_dir, staging_root = Path(version_dir), Path(staging_root)
    done = find_participant(version_dir, pseudonym)
    if not done.windows:
        return done
    side = read_json(version_dir / SIDECAR)
    compression = side.get("config", {}).get("output", {}).get("compression", "none")
    info = read_json(version_dir / "dataset_info.json")
    staged = staging_root / "version"
    staged.mkdir(parents=True)
    needle = pseudonym.encode()
    lengths: dict[tuple[str, str], dict[int, int]] = {}    # (format, split) -> shard -> records kept
    dropped_bytes: dict[tuple[str, str], int] = {}
    for name in sorted(os.listdir(version_dir)):
        src, dst = version_dir / name, staged / name
        m = SHARD_RE.match(name)
        if name in (SIDECAR, "dataset_info.json") or not src.is_file():
            continue
        if not m:
            _link_or_copy(src, dst)
            continue
        if name not in done.shards_rewritten:
            _link_or_copy(src, dst)
            continue
        fmt, split = m["format"], m["split"]
        kept = dropped = 0
        w = _writer(dst, fmt, compression)        # record by record: memory is one record, not a shard
        for r in read_records(src, fmt):
            if _theirs(r, pseudonym, needle):
                dropped += len(r)
            else:
                w.write(r)
                kept += 1
        w.close()
        shutil.copymode(src, dst)
        lengths.setdefault((fmt, split), {})[int(m["shard"])] = kept
        dropped_bytes[(fmt, split)] = dropped_bytes.get((fmt, split), 0) + dropped
    fmt = info.get("fileFormat", "array_record")
    for s in info["splits"]:
        per_shard = lengths.get((fmt, s["name"]), {})
        s["shardLengths"] = [str(per_shard.get(i, int(n))) for i, n in enumerate(s["shardLengths"])]
        s["numBytes"] = str(int(s.get("numBytes", 0)) - dropped_bytes.get((fmt, s["name"]), 0))
    _write_like(version_dir / "dataset_info.json", staged / "dataset_info.json",
                json.dumps(info, indent=2, sort_keys=True))
    side.pop("manifest", None)
    side["manifest"] = build_manifest(staged, side["normalization"], side)
    _write_like(version_dir / SIDECAR, staged / SIDECAR, json.dumps(side, indent=1, sort_keys=True, default=str))
    _swap(staged, version_dir, staging_root)
    return done


def _write_like(old: Path, new: Path, text: str) -> None:
    new.write_text(text)
    shutil.copymode(old, new)


def _swap(staged: Path, target: Path, staging_root: Path) -> None:
    """Put ``staged`` where ``target`` is, atomically where the kernel can; delete the old folder."""
    shutil.copymode(target, staged)
    if not exchange(staged, target):
        aside = staging_root / "replaced"
        os.rename(target, aside)
        os.rename(staged, target)
    shutil.rmtree(staging_root)


def keys_digest(keys: list[str]) -> str:
    """sha256 of the sorted, newline-joined window keys: the audit row proves which windows went without
    naming the person (each key holds the pseudonym)."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
