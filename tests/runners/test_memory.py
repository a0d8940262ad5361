"""Tuning ``fast``: a run keeps freed heap memory (glibc) and gives it back afterwards; the user's own malloc
settings win."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from sensorpipe.runners import _memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the heap settings are glibc's")
def test_glibc_takes_the_run_settings(monkeypatch):
    for k in _memory._USER_TUNABLES:
        monkeypatch.delenv(k, raising=False)
    with _memory.freed_memory_retained() as applied:
        assert applied is True
        a = np.ones(4 << 20)
        assert float(a.sum()) == 4 << 20


def test_user_malloc_tunables_are_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
    assert _memory._libc() is None
    with _memory.freed_memory_retained() as applied:
        assert applied is False
