"""The per-unit cache under ``<output>/.work``: what a run took from it, what it used, and cleaning it.

Layout (every entry is named by a fingerprint of everything that shapes it, so
a changed input, config, key, code or plugin gives a new name, never a stale hit)::

    .work/units/<study>__<unit fp>.*                 pass 1 (summary JSON, arrays, sketch, quarantine spills)
    .work/records/<study>__<unit fp>__<norm>.*       pass 2 (record spill, lengths, clip counts)
    .work/partitions/<source>/<file sha>/            shared files split per participant (planning)
    .work/manifests/<name>__<version>.json           what the last successful run of a version used

Pass 1's unit cache is keyed by :func:`unit_fingerprint` (the person's
inputs, hashed by :func:`fingerprint_inputs`, their sources' options, the
config, the code and the key) and written by :func:`write_unit_arrays` and
:func:`write_unit_summary`; pass 2's record spills are keyed by the unit's
fingerprint and the normalization (:func:`record_stem`).

"Unused" means: not listed in the manifest of a version whose folder still
exists. Each successful run rewrites its version's manifest, so an entry is
kept exactly while the last successful run of a published version needs it;
a manifest whose version folder is gone no longer protects anything and is
removed with the entries. Half-written files (``*.tmp``) are never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from sensorpipe._version import code_version
from sensorpipe.config import stable_hash
from sensorpipe.core.arrays import save_arrays
from sensorpipe.sources.partition import file_fingerprint

MANIFESTS = "manifests"

#: ``.pull``, per thread: set around a unit on a Beam worker whose work area is a URL
#: (:mod:`sensorpipe.runners.beam_worker`), it copies a cache entry's files from the work area before the entry
#: is looked up; unset elsewhere (local runs pay one attribute look-up per unit). Per thread: an in-process
#: DirectRunner runs several bundles at once.
remote_hook = threading.local()


def _pulled(stem: str) -> bool:
    """Whether the work area is remote (the entry ``stem`` then pulled from it into the local mirror)."""
    pull: Callable[[str], None] | None = getattr(remote_hook, "pull", None)
    if pull is not None:
        pull(stem)
    return pull is not None

#: inputs up to this size that the adapter decodes from memory are read once, whole (hashed, then decoded)
PRELOAD_MAX_BYTES = 256 * 1024 * 1024


def fingerprint_inputs(paths: list[str], adapter, known: dict[str, str] | None = None, preload: bool = True
                       ) -> tuple[dict[str, str], dict[str, bytes]]:
    """(fingerprint per input file, the bytes of those the adapter decodes from memory).

    ``known``: files planning already hashed (a shared file it partitioned): neither hashed nor read here,
    since the unit reads its own partition of them.

    Hashing reads every file whole anyway: for a file the adapter can decode from a buffer (Parquet), the
    bytes are kept and handed to its read (:func:`~sensorpipe.sources.base.preloaded_inputs`), which then
    neither reads the file nor its footer again. Same digests as :func:`file_fingerprint`; larger files and
    the rest are hashed streaming, so memory stays one unit's (size-capped) inputs.
    """
    fps, blobs = dict(known or {}), {}
    for f in paths:
        if f in fps:
            continue
        if preload and adapter.decodes_from_memory(f) and os.path.getsize(f) <= PRELOAD_MAX_BYTES:
            with open(f, "rb") as fh:
                blob = fh.read()
            fps[f], blobs[f] = hashlib.sha256(blob).hexdigest()[:16], blob
        else:
            fps[f] = file_fingerprint(f)
    return fps, blobs


def unit_fingerprint(person, input_fps: dict[str, str], config_fingerprint: str, key_id: str) -> str:
    """Pass 1's cache key of a person's unit: every input's digest, the sources' options and participant
    records, the config, the code version and the key's digest (pseudonyms depend on the key)."""
    return stable_hash([person.key, [[u.key, u.participant.__dict__, u.source.options] for u in person.parts],
                        input_fps, config_fingerprint, code_version(), key_id])


def unit_stem(cache_dir: str, study: str, fingerprint: str) -> Path:
    """``.work/units/<study>__<fp>``: every pass-1 file of the unit is this stem plus a suffix."""
    return Path(cache_dir) / "units" / f"{study}__{fingerprint}"


def read_unit_summary(stem: Path) -> dict | None:
    """A finished unit's summary (its JSON form), or None when pass 1 has not completed it."""
    if _pulled(str(stem)):     # a remote work area: its summary, uploaded after the arrays, says both are there
        summary = Path(f"{stem}.json")
        return json.loads(summary.read_text()) if summary.exists() else None
    summary, arrays = Path(f"{stem}.json"), Path(f"{stem}.arrays")
    if summary.exists() and arrays.exists():
        return json.loads(summary.read_text())
    return None


def write_unit_arrays(stem: Path, arrays: dict) -> str:
    """The windows pass 2 encodes (values, masks, labels, events...); returns the file's path."""
    path = f"{stem}.arrays"
    save_arrays(path, arrays)
    return path


def write_unit_summary(stem: Path, summary_json: str) -> None:
    """The unit's summary, last and atomically: its presence marks the unit finished."""
    os.makedirs(Path(stem).parent, exist_ok=True)
    Path(f"{stem}.json.tmp").write_text(summary_json)
    os.replace(f"{stem}.json.tmp", f"{stem}.json")


def record_stem(cache_dir: str, study: str, unit_fingerprint: str, norm_json: dict) -> str:
    """``.work/records/<study>__<unit fp>__<normalization hash>``: pass 2's spill of one unit."""
    return str(Path(cache_dir) / "records" / f"{study}__{unit_fingerprint}__{stable_hash(norm_json)}")


def read_records(stem: str, clips: bool) -> dict[str, int] | None:
    """A finished spill's clipped-cell counts per channel, or None when pass 2 has not completed it.
    Clip counts are written (before the spill) only where normalization clips."""
    counts = Path(stem + ".clipped.json")
    # a remote work area: the .len, uploaded after the .bin, says both are there
    spilled = _pulled(stem) or Path(stem + ".bin").exists()
    if spilled and Path(stem + ".len").exists() and (not clips or counts.exists()):
        return json.loads(counts.read_text()) if clips else {}
    return None


def write_clip_counts(stem: str, clipped_cells: dict[str, int]) -> None:
    """Before the spill: a cached re-run needs both."""
    counts = Path(stem + ".clipped.json")
    counts.parent.mkdir(parents=True, exist_ok=True)
    counts.write_text(json.dumps(clipped_cells))


def cache_counts(summaries: Iterable, encoded: Iterable) -> dict[str, int]:
    """How many units each pass read from the cache instead of computing (``pass1``, ``pass2``)."""
    return {"pass1": sum(bool(s.from_cache) for s in summaries), "pass2": sum(bool(e.from_cache) for e in encoded)}


def manifest_path(work_dir: Path, name: str, version: str) -> Path:
    return Path(work_dir) / MANIFESTS / f"{name}__{version}.json"


def write_manifest(work_dir: Path, name: str, version: str, version_dir: Path, run_id: str,
                   summaries: list, stems: list[str]) -> Path:
    """Record the cache entries a successful run of ``name``/``version`` used (written atomically)."""
    work = Path(work_dir)
    units = sorted({Path(s.cache).name.rsplit(".arrays", 1)[0] for s in summaries if s.cache})
    body = {"run_id": run_id, "version_dir": str(version_dir), "units": units,
            "records": sorted({Path(stem).name for stem in stems}),
            "inputs": sorted({fp for s in summaries for fp in s.input_fingerprints.values()})}
    path = manifest_path(work, name, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, path)
    return path


@dataclass
class CleanResult:
    """What :func:`clean_cache` removed (or would remove, on a dry run), as paths relative to ``.work``."""

    removed: list[tuple[str, int]] = field(default_factory=list)   # (entry, bytes)
    kept: int = 0                                                   # entries in use
    dry_run: bool = False

    @property
    def bytes_freed(self) -> int:
        return sum(n for _, n in self.removed)

    def text(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"{verb} {entry} ({_size(n)})" for entry, n in self.removed]
        lines.append(f"{verb} {len(self.removed)} cache entr{'y' if len(self.removed) == 1 else 'ies'}, "
                     f"{_size(self.bytes_freed)} ({self.bytes_freed:,} bytes) "
                     f"{'would be ' if self.dry_run else ''}freed; {self.kept} in use kept")
        return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n} B"


def _tree_bytes(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())
    return p.stat().st_size


def _in_use(work: Path, out_dir: Path) -> tuple[set[str], set[str], set[str], list[Path]]:
    """(unit stems, record stems, input fingerprints) that the manifests of existing versions list, and the
    manifests of versions that are gone."""
    units, records, inputs, stale = set(), set(), set(), []
    for m in sorted((work / MANIFESTS).glob("*.json")):
        try:
            body = json.loads(m.read_text())
            version_dir = Path(body["version_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            stale.append(m)        # unreadable: protects nothing
            continue
        if not version_dir.is_absolute():
            version_dir = out_dir / version_dir
        if not version_dir.is_dir():
            stale.append(m)
            continue
        units.update(body.get("units", ()))
        records.update(body.get("records", ()))
        inputs.update(body.get("inputs", ()))
    return units, records, inputs, stale


def _stem_used(name: str, stems: set[str]) -> bool:
    """Whether a cache file ``<stem>.<suffix...>`` belongs to one of ``stems`` (a stem may contain dots)."""
    if name.endswith(".tmp"):
        return False
    i = name.find(".")
    while i != -1:
        if name[:i] in stems:
            return True
        i = name.find(".", i + 1)
    return False


def clean_cache(out_dir: str | Path, dry_run: bool = False) -> CleanResult:
    """Remove every cache entry under ``<out_dir>/.work`` that no published version's last successful run
    used (see the module docstring); with ``dry_run`` only list them."""
    out = Path(out_dir)
    work = out / ".work"
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder; pass the output directory of a run (output.dir)")
    if not work.is_dir():
        return CleanResult(dry_run=dry_run)
    units, records, inputs, stale = _in_use(work, out.resolve())
    result = CleanResult(dry_run=dry_run)
    doomed: list[Path] = []
    for kind, stems in (("units", units), ("records", records)):
        for f in sorted((work / kind).glob("*")) if (work / kind).is_dir() else ():
            if _stem_used(f.name, stems):
                result.kept += 1
            else:
                doomed.append(f)
    part_root = work / "partitions"
    for src in sorted(part_root.iterdir()) if part_root.is_dir() else ():
        for entry in sorted(src.iterdir()) if src.is_dir() else [src]:
            if entry.is_dir() and entry.name in inputs:
                result.kept += 1
            else:
                doomed.append(entry)     # a file no version uses any more, or an interrupted partition (.tmp)
    doomed += stale
    for p in doomed:
        result.removed.append((p.relative_to(work).as_posix(), _tree_bytes(p)))
        if not dry_run:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if not dry_run and part_root.is_dir():
        for src in part_root.iterdir():    # a source's folder left empty
            if src.is_dir() and not any(src.iterdir()):
                src.rmdir()
    return result
