"""Keep freed heap memory in the process while a run is going (glibc only; every run).

Every unit allocates and frees arrays of a few MiB (Arrow columns, the grid,
windows, channel-major copies, records). With glibc's defaults the top of the
heap goes back to the kernel as soon as more than 128 KiB of it is free, and
the next unit's arrays fault the same pages in again, zero-filled: CPU time
that is neither reading nor computing (BENCHMARKS.md has the measurements).
During a run the freed memory stays in the heap (trim threshold 512 MiB) and
arrays up to 256 MiB come from it instead of fresh mappings. Peak RSS does not change (it is
the largest unit's working set either way). Afterwards the retained memory is
returned (``malloc_trim``) and the thresholds are set to where glibc's own
adaptive rule ends up once a program has freed large arrays (mmap threshold
32 MiB, its 64-bit maximum; trim threshold twice that): any ``mallopt`` call
turns that adaptation off for good, and the initial 128 KiB would leave the
caller's later array code faulting on every allocation.

Nothing happens on other C libraries, or when the environment already sets
glibc's own ``MALLOC_*_`` tunables (the user's settings win).
"""

from __future__ import annotations

import ctypes
import os
import platform
from contextlib import contextmanager
from typing import Iterator

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
RUN_TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024
RUN_MMAP_THRESHOLD_BYTES = 256 * 1024 * 1024
AFTER_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024    # glibc's adaptive mmap threshold maximum (64-bit)
AFTER_TRIM_THRESHOLD_BYTES = 2 * AFTER_MMAP_THRESHOLD_BYTES   # what its adaptive rule pairs with it
_USER_TUNABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                  "GLIBC_TUNABLES")


def _libc():
    """glibc's handle, or None (another C library, or the user tunes malloc through the environment)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    if any(k in os.environ for k in _USER_TUNABLES):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None


def retain_freed_memory() -> bool:
    """Keep freed memory in this process's heap from now on; True when glibc took the settings."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_TRIM_THRESHOLD, RUN_TRIM_THRESHOLD_BYTES)
                and libc.mallopt(M_MMAP_THRESHOLD, RUN_MMAP_THRESHOLD_BYTES))


def release_freed_memory() -> None:
    """The retained free memory back to the kernel, and the thresholds glibc's adaptive rule would reach."""
    libc = _libc()
    if libc is None:
        return
    libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM_THRESHOLD_BYTES)
    libc.mallopt(M_MMAP_THRESHOLD, AFTER_MMAP_THRESHOLD_BYTES)
    libc.malloc_trim(0)


@contextmanager
def freed_memory_retained() -> Iterator[bool]:
    """:func:`retain_freed_memory` for the ``with`` block, :func:`release_freed_memory` after it."""
    applied = retain_freed_memory()
    try:
        yield applied
    finally:
        if applied:
            release_freed_memory()
