"""Batches from Grain worker processes through shared memory that is reused, not allocated per batch.

Why: with workers, Grain stacks every batch into a fresh ``SharedMemory``
segment per array (create, size, map, then a page fault per 4 KiB page, and
an unlink in the main process), which cost about as much as reading and
decoding the batch: 2 workers were no faster than loading in process on 2
cores. :class:`SlotBatchFn` is the ``batch_fn`` of
:func:`sensorpipe.access.grain.make_grain_loader`. In process it is Grain's
own ``make_batch``. Grain calls its ``enable_shared_memory_output`` when the
loader has workers; then each worker stacks batches into a few segments it
keeps ("slots") and sends the slot's name and layout. The main process maps
each slot once (and unlinks its name at once: the memory lives while either
process maps it) and returns numpy arrays on that memory.

A slot is free again only when no array in the main process uses it: every
array of a slot's batches is a view of one uint8 array per slot, which numpy
makes the ``base`` of every further view, so its reference count says whether
any array (or view of one) is alive. Each time a
batch of that worker arrives, slots handed out whose memoryview only this
module references are marked free in a shared flag segment. A batch the
caller keeps never changes; a worker whose slots are all in use stacks that
batch the ordinary way, so nothing waits.
"""

from __future__ import annotations

import os
import sys
import uuid
import weakref
from collections.abc import Sequence
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from sensorpipe.access._nested import leaves, nest

_ALIGN = 64


class _Segment(SharedMemory):
    """A ``SharedMemory`` that does not close its mapping when collected: arrays may still use it, and the
    mapping goes with the last of them (``SharedMemory.close`` would raise ``BufferError`` then)."""

    def __del__(self) -> None:
        pass

_POOLS: dict[tuple[int, str], _WorkerPool] = {}
#: main process, per pool: the flag segment, each slot's (segment, memoryview, baseline refcount), and the slots
#: handed out and not yet marked free
_MAIN: dict[str, dict[str, Any]] = {}


class _WorkerPool:
    """One worker's slots: shared segments each laid out for one batch, and the in-flight flags (1 = sent
    and not yet released by the main process)."""

    def __init__(self, n_slots: int, pool_id: str) -> None:
        self.id = pool_id
        self.flags = _Segment(create=True, size=n_slots)
        self.flags.buf[:n_slots] = bytes(n_slots)
        self.free = np.ndarray((n_slots,), np.uint8, buffer=self.flags.buf)
        self.slots: list[tuple[tuple, SharedMemory, dict[tuple, np.ndarray]] | None] = [None] * n_slots

    def take(self, layout: tuple) -> int | None:
        """A free slot laid out for ``layout``, made in an unused place if none is; None when there is neither
        (a slot is never re-shaped: the last, shorter batch of an epoch is stacked the ordinary way)."""
        free = np.flatnonzero(self.free == 0)
        for i in free:
            if self.slots[i] is not None and self.slots[i][0] == layout:
                return int(i)
        empty = [i for i in free if self.slots[i] is None]
        if not empty:
            return None
        i = int(empty[0])
        size = max(1, layout[-1][3] + int(np.prod(layout[-1][1])) * np.dtype(layout[-1][2]).itemsize)
        shm = _Segment(create=True, size=size)
        views = {p: np.ndarray(shape, np.dtype(dt), buffer=shm.buf, offset=off) for p, shape, dt, off in layout}
        self.slots[i] = (layout, shm, views)
        return i


class SlotBatchFn:
    """``grain.transforms.Batch(batch_fn=...)``: Grain's ``make_batch`` in process; in workers (after Grain
    calls :meth:`enable_shared_memory_output`) arrays are stacked into reused slots (module doc)."""

    def __init__(self, n_slots: int = 8) -> None:
        self.n_slots = int(n_slots)
        self.key = uuid.uuid4().hex
        self.shared = False
        weakref.finalize(self, _forget, self.key)

    def enable_shared_memory_output(self) -> None:
        self.shared = True

    def __call__(self, values: Sequence[Any]) -> Any:
        from grain._src.python.dataset.transformations import batch as batch_ds

        if not self.shared or not isinstance(values[0], dict):
            return batch_ds.make_batch(values)
        pool = _POOLS.get((os.getpid(), self.key))
        if pool is None:
            pool = _POOLS[(os.getpid(), self.key)] = _WorkerPool(self.n_slots, f"{self.key}-{os.getpid()}")
        flat = [dict(leaves(v)) for v in values]
        arrays = [p for p, v in flat[0].items() if isinstance(v, np.ndarray) and not v.dtype.hasobject]
        layout, offset = [], 0
        for p in arrays:
            shape = (len(values), *flat[0][p].shape)
            layout.append((p, shape, flat[0][p].dtype.str, offset))
            offset += -(-int(np.prod(shape)) * flat[0][p].dtype.itemsize // _ALIGN) * _ALIGN
        i = pool.take(tuple(layout)) if arrays else None
        if i is None:
            return batch_ds.make_batch(values)
        _, shm, views = pool.slots[i]
        for p in arrays:
            np.stack([v[p] for v in flat], out=views[p])
        rest = {p: batch_ds.make_batch([v[p] for v in flat]) for p in flat[0] if p not in views}
        pool.free[i] = 1
        return _SlotBatch((pool.id, pool.flags.name, i, shm.name, tuple(layout), rest, tuple(flat[0])))


class _SlotBatch:
    """A batch in a worker's slot, on its way to the main process; unpickling it there maps it."""

    def __init__(self, args: tuple) -> None:
        self.args = args

    def __reduce__(self):
        return _receive, self.args


def _attach(name: str) -> SharedMemory:
    """Map a worker's segment and unlink its name (the mapping keeps the memory): nothing is left behind."""
    shm = _Segment(name=name)
    shm.unlink()   # also tells the resource tracker the segment is taken care of
    return shm


def _forget(key: str) -> None:
    for pool_id in [p for p in _MAIN if p.startswith(key)]:
        _MAIN.pop(pool_id, None)


def _references(entry: list) -> int:
    holder = entry[1]
    return sys.getrefcount(holder)


def _receive(pool_id: str, flags_name: str, slot: int, shm_name: str, layout: tuple, rest: dict,
             order: tuple) -> dict[str, Any]:
    """In the main process: the batch as numpy arrays on its slot's memory; this worker's slots that no array
    uses any more are marked free."""
    state = _MAIN.get(pool_id)
    if state is None:
        state = _MAIN[pool_id] = {"flags": _attach(flags_name), "slots": {}, "handed": set()}
    free = state["flags"].buf
    for s in list(state["handed"]):
        entry = state["slots"][s]
        if _references(entry) <= entry[2]:   # only this module's own references: no array uses the slot
            free[s] = 0
            state["handed"].discard(s)
    entry = state["slots"].get(slot)
    if entry is None:   # a slot's first batch (slots keep their segment for good)
        shm = _attach(shm_name)
        entry = state["slots"][slot] = [shm, np.frombuffer(shm.buf, np.uint8), 0]
        entry[2] = _references(entry)
    values = {p: np.ndarray(shape, np.dtype(dt), buffer=entry[1], offset=off) for p, shape, dt, off in layout}
    values.update(rest)
    state["handed"].add(slot)
    return nest(order, values)
