"""The collector pause around heavy imports restores the collector's state, also when nested or on errors."""

from __future__ import annotations

import gc
import sys
import types
import weakref

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


def test_the_outermost_pause_freezes_what_it_imported_and_the_collector_skips_it():
    gc.unfreeze()
    try:
        with collector_paused():
            with collector_paused():
                kept = [[i] for i in range(1000)]         # stands in for an import's objects ...
                sys.modules["_sensorpipe_test_import"] = types.ModuleType("_sensorpipe_test_import")  # ... and module
            assert gc.get_freeze_count() == 0            # the inner block does not freeze ...
        frozen = gc.get_freeze_count()
        assert frozen >= 1000                            # ... the outermost one does
        assert not any(o is kept for o in gc.get_objects())   # a collection walks none of them
        del kept                                         # reference counting still frees them
        assert gc.get_freeze_count() < frozen
    finally:
        sys.modules.pop("_sensorpipe_test_import", None)
        gc.unfreeze()


def test_a_pause_that_imported_nothing_freezes_nothing():
    """A notebook's second run imports nothing new: a garbage cycle made during it is still collected."""
    gc.unfreeze()
    try:
        with collector_paused():
            cell = _Cell()
            cell.itself = cell                           # a reference cycle: only the collector frees it
        assert gc.get_freeze_count() == 0
        ref = weakref.ref(cell)
        del cell
        gc.collect()
        assert ref() is None
    finally:
        gc.unfreeze()


class _Cell:
    """A weak-referenceable object."""
