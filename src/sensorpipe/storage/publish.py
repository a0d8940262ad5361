"""Staging and atomic publication of a dataset version (and the run's quarantine files and report).

A run writes everything into ``<output.dir>/.staging/<run_id>/`` and, once it
is complete and recorded, moves it into place with renames (same file
system, so each is atomic)::

    <output.dir>/.staging/<run_id>/
      TARGET                 the version folder it publishes to (relative to output.dir)
      version/               the new version: shards, dataset_info.json, features.json, sensorpipe.json, ...
      replaced/              the old version, moved aside while the new one moves in (--overwrite, where
                             the two folders cannot be swapped atomically; else the swap leaves it in version/)
      quarantine/            quarantine Parquet files, moved over <output.dir>/quarantine/ file by file
      report.html

Readers never see staging: ``open()`` and TFDS look for
``<out>/<name>/<version>/dataset_info.json`` (two levels), staging is four
levels down under a dot folder. The previous version stays in place until the
new one is complete; when it is replaced the two folders are swapped (or the
old one is moved aside first) and the old one is deleted only after the new one is in. :func:`recover` (run under the output lock, so
no writer is alive) puts back an old version a killed run had moved aside and
deletes every stale staging folder.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

STAGING = ".staging"
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
#: Files a complete version folder has (besides its shards).
VERSION_FILES = ("dataset_info.json", "features.json", "sensorpipe.json", "normalization.json")


class Staging:
    """The staging folder of one run."""

    def __init__(self, out_dir: str | Path, run_id: str) -> None:
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / STAGING / run_id
        self.version = self.root / "version"
        self.replaced = self.root / "replaced"
        self.quarantine = self.root / "quarantine"
        self.report = self.root / "report.html"

    def create(self, target: Path) -> "Staging":
        self.root.mkdir(parents=True, exist_ok=False)
        (self.root / "TARGET").write_text(os.path.relpath(target, self.out_dir))
        return self

    def swap_in(self, target: Path, checkpoint=lambda stage: None) -> None:
        """Move the staged version to ``target``; from its return the new version is the published one.

        A replacement swaps the two folders in one step where the kernel can
        (Linux ``renameat2(RENAME_EXCHANGE)``); elsewhere the old version is
        renamed aside first, so the label is absent for an instant, and
        :func:`recover` (or :meth:`discard`) puts the old version back if the
        process dies or fails right there.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.rename(self.version, target)
        elif exchange(self.version, target):     # one atomic swap: the old version is now in staging
            checkpoint("swap")
        else:
            os.rename(target, self.replaced)
            checkpoint("swap")
            os.rename(self.version, target)

    def move_side_files(self) -> None:
        """Put the run's quarantine files and report in place (each an atomic file rename)."""
        q_dir = self.out_dir / "quarantine"
        q_dir.mkdir(parents=True, exist_ok=True)
        for f in sorted(self.quarantine.glob("*.parquet")) if self.quarantine.exists() else []:
            os.replace(f, q_dir / f.name)
        if self.report.exists():
            os.replace(self.report, self.out_dir / "report.html")

    def discard(self) -> None:
        """Delete this run's staging folder (after publishing, or after a failure)."""
        _restore_replaced(self.out_dir, self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        _remove_if_empty(self.root.parent)


def _remove_if_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the OS or file system can't."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False        # not supported here: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


def _restore_replaced(out_dir: Path, root: Path) -> None:
    replaced = root / "replaced"
    if not replaced.exists():
        return
    try:
        target = out_dir / (root / "TARGET").read_text().strip()
    except OSError:
        return
    if not target.exists():     # died between moving the old version aside and moving the new one in
        os.rename(replaced, target)
        log.warning("put back %s, which an unfinished run had moved aside", target)


def recover(out_dir: str | Path, keep: str | None = None) -> list[str]:
    """Clean up after runs that died: restore versions they moved aside, delete their staging folders.

    Call only while holding the output folder's lock (no other writer alive). ``keep`` is the caller's own
    run id. Returns the run ids whose staging folders were removed.
    """
    base = Path(out_dir) / STAGING
    removed = []
    for root in sorted(base.iterdir()) if base.exists() else []:
        if root.name == keep or not root.is_dir():
            continue
        _restore_replaced(Path(out_dir), root)
        shutil.rmtree(root, ignore_errors=True)
        log.warning("removed the staging folder %s of run %s, which did not finish", root, root.name)
        removed.append(root.name)
    _remove_if_empty(base)
    return removed


def on_disk_fingerprint(version_dir: str | Path) -> str | None:
    """The fingerprint a published version folder holds (from its sensorpipe.json); None if absent or broken.

    A folder counts only when every version file is present: a half-written folder (from before atomic
    publish) holds nothing.
    """
    d = Path(version_dir)
    if not all((d / f).is_file() for f in VERSION_FILES):
        return None
    try:
        fp = json.loads((d / "sensorpipe.json").read_text()).get("fingerprint")
        json.loads((d / "dataset_info.json").read_text())
    except (OSError, ValueError, AttributeError):
        return None
    return fp if isinstance(fp, str) else None


def version_labels(dataset_dir: str | Path) -> list[str]:
    """The x.y.z version folders of a dataset folder, in version order."""
    d = Path(dataset_dir)
    found = [p.name for p in d.iterdir() if p.is_dir() and _VERSION.match(p.name)] if d.exists() else []
    return sorted(found, key=version_key)


def version_key(label: str) -> tuple[int, int, int]:
    m = _VERSION.match(label)
    return (int(m[1]), int(m[2]), int(m[3])) if m else (-1, -1, -1)


def next_patch(labels: list[str], first: str = "1.0.0") -> str:
    """The patch bump past the highest of ``labels`` (``first`` when there is none)."""
    valid = [version_key(v) for v in labels if _VERSION.match(v)]
    if not valid:
        return first
    major, minor, patch = max(valid)
    return f"{major}.{minor}.{patch + 1}"
