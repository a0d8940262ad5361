"""The per-unit cache under ``<output>/.work``: what a run took from it, what it used, and cleaning it.

Layout (every entry is named by a fingerprint of everything that shapes it, so
a changed input, config, key, code or plugin gives a new name, never a stale hit)::

    .work/units/<study>__<unit fp>.*                 pass 1 (summary JSON, arrays, sketch, quarantine spills)
    .work/records/<study>__<unit fp>__<norm>.*       pass 2 (record spill, lengths, clip counts)
    .work/partitions/<source>/<file sha>/            shared files split per participant (planning)
    .work/manifests/<name>__<version>.json           what the last successful run of a version used

"Unused" means: not listed in the manifest of a version whose folder still
exists. Each successful run rewrites its version's manifest, so an entry is
kept exactly while the last successful run of a published version needs it;
a manifest whose version folder is gone no longer protects anything and is
removed with the entries. Half-written files (``*.tmp``) are never used.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

MANIFESTS = "manifests"


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
