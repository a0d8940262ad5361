"""Errors about where a run writes, turned into one-line messages with the fix.

``output.dir`` must be a folder (or creatable as one), and a full disk must say
so and where, rather than end in ``OSError: [Errno 28]`` from deep inside a
writer.
"""

from __future__ import annotations

import errno
from pathlib import Path

from sensorpipe.config import ConfigError


class DiskFullError(OSError):
    """The file system ran out of space (ENOSPC or EDQUOT) while the run wrote ``path``."""


def check_output_dir(out: Path) -> None:
    """Refuse an ``output.dir`` that is a file, or lies below one, before anything is read or written."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == out else f"lies inside {p}, which is a file"
                raise ConfigError(f"output.dir {out} {what}, not a folder: set output.dir to a folder "
                                  f"(it is created when missing)")
            return


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full(e: OSError, out_dir: str | Path) -> DiskFullError:
    """The one-line error for a full disk: the file being written (or the output folder when the writer did
    not say) and what to do."""
    path = e.filename or out_dir
    return DiskFullError(e.errno, f"disk full writing {path}: free space or set output.dir elsewhere")


DiskFullError.__str__ = lambda self: self.strerror or OSError.__str__(self)   # the message alone, no "[Errno 28]"
