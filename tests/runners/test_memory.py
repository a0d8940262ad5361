"""A run keeps freed heap memory (glibc) and gives it back afterwards (thresholds where glibc's adaptive rule
ends up); the user's own malloc settings win."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from sensorpipe.runners import _memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the heap settings are glibc's")
def test_freed_memory_retained_on_glibc_and_released_after(monkeypatch):
    for k in _memory._USER_TUNABLES:
        monkeypatch.delenv(k, raising=False)
    calls = []
    real = _memory._libc()
    assert real is not None

    class Spy:  # records what the run asks glibc for, and still asks it
        def mallopt(self, param, value):
            calls.append(("mallopt", param, value))
            return real.mallopt(param, value)

        def malloc_trim(self, pad):
            calls.append(("malloc_trim", pad))
            return real.malloc_trim(pad)

    monkeypatch.setattr(_memory, "_libc", lambda: Spy())
    with _memory.freed_memory_retained() as applied:
        assert applied is True
        a = np.ones(4 << 20)   # 32 MiB: below the run's mmap threshold, from the heap
        assert float(a.sum()) == 4 << 20
        del a
    assert calls == [("mallopt", _memory.M_TRIM_THRESHOLD, 512 << 20), ("mallopt", _memory.M_MMAP_THRESHOLD, 256 << 20),
                     ("mallopt", _memory.M_TRIM_THRESHOLD, 64 << 20), ("mallopt", _memory.M_MMAP_THRESHOLD, 32 << 20),
                     ("malloc_trim", 0)]


def test_user_malloc_tunables_are_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
    assert _memory._libc() is None
    with _memory.freed_memory_retained() as applied:
        assert applied is False
