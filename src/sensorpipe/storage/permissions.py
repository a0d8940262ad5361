"""Restrictive access to an output folder: files 0640, folders 0750 and an optional group, set explicitly.

Health-sensor outputs (shards, quarantine rows with raw values, the metadata
DB, the private ``.work`` cache) must not be world-readable. The process
umask is not ours to trust (a login shell's 022 gives 0644/0755), so the run
sets every mode itself with ``chmod``:

- at the start, :func:`restrict_root` closes the output folder itself (0750),
  so nothing created inside during the run is reachable by other users, even
  before its own mode is set;
- at the end (success or failure), :func:`restrict_tree` walks the folder and
  gives every file and folder the configured mode and group, including the
  metadata DB and its ``-wal``/``-shm`` files, staging leftovers and ``.work``.

Entries owned by another user cannot be changed by us; they are skipped and
counted (logged), never a reason to fail a run that otherwise succeeded.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessPolicy:
    """Modes for files and folders under an output folder, and the group that may read them (None: keep)."""

    file_mode: int = 0o640
    dir_mode: int = 0o750
    gid: int | None = None

    @classmethod
    def from_output(cls, output) -> "AccessPolicy":
        """From ``output.file_mode``/``dir_mode`` (octal text) and ``output.group`` (a name or a numeric gid)."""
        return cls(int(str(output.file_mode), 8), int(str(output.dir_mode), 8), group_id(output.group))


def group_id(group: str | int | None) -> int | None:
    """The gid of a group name or number; a name this machine does not know is an error naming the fix."""
    if group is None or group == "":
        return None
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    import grp

    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        from sensorpipe.config import ConfigError

        raise ConfigError(f"output.group: no group named {group!r} on this machine; create it (groupadd) or "
                          f"set output.group to an existing group (see `getent group`)") from None


def _apply(path: str, mode: int, gid: int | None, st: os.stat_result) -> None:
    if gid is not None and st.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def restrict_root(root: str | Path, policy: AccessPolicy) -> None:
    """Create ``root`` if needed and give it the folder mode and group (before anything is written in it)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        _apply(str(root), policy.dir_mode, policy.gid, root.stat())
    except PermissionError:     # a shared folder owned by someone else: its owner decides who may enter
        log.warning("%s belongs to another user: its mode was left as it is", root)


def restrict_tree(root: str | Path, policy: AccessPolicy) -> int:
    """Give every file and folder under ``root`` (``root`` included) the policy's mode and group.

    Symbolic links are neither followed nor changed. Returns how many entries were skipped because this
    user may not change them (owned by someone else); a vanished entry (a concurrent reader's temp file)
    is ignored.
    """
    skipped = 0
    root = str(root)
    for folder, dirs, files in os.walk(root):
        for name, is_dir in [(folder, True)] + [(os.path.join(folder, f), False) for f in files]:
            try:
                st = os.lstat(name)
                if stat.S_ISLNK(st.st_mode):
                    continue
                _apply(name, policy.dir_mode if is_dir else policy.file_mode, policy.gid, st)
            except FileNotFoundError:
                continue
            except PermissionError:
                skipped += 1
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    if skipped:
        log.warning("%d entries under %s belong to another user: their modes were left as they are", skipped, root)
    return skipped
