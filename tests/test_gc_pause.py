"""The collector pause around heavy imports restores the collector's state, also when nested or on errors."""

from __future__ import annotations

import gc

import pytest

from sensorpipe._gc import collector_paused


def test_the_collector_is_paused_inside_and_restored_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():          # nested: the inner block leaves it paused for the outer one
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ImportError):
        with collector_paused():
            import sensorpipe_no_such_module  # noqa: F401
    assert gc.isenabled()                 # an import that fails still restores it


def test_a_collector_the_caller_disabled_stays_disabled():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
