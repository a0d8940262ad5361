"""Batches from torch ``DataLoader`` workers through shared memory that is reused, not allocated per batch.

Why: a worker hands a batch to the main process in shared memory. Allocating
that memory per batch (what ``default_collate`` does) costs a shared-memory
file and a page fault per 4 KiB page: collating day windows into fresh shared
memory cost several times what collating into memory already touched costs,
more than reading and decoding the example, so 2 workers lost to loading in
process on 2 cores (BENCHMARKS.md, "Loaders"). Here each worker keeps a few batch buffers ("slots") in
shared memory, writes each batch into a free one and sends the slot's handle;
the main process hands the slot's tensors to the caller as they are (no copy:
copying into fresh memory page-faults just the same).

A slot is free again only when nothing in the main process uses its memory
any more: the main process keeps each slot's storage mapped (so a slot's next
batch maps nothing new either) and, each time a batch of that worker arrives,
marks the slots it handed out whose storages only it still references (torch
counts every tensor and view on a storage) as free in a small shared flag
array. A batch the caller keeps, or any view of it, therefore never changes.
A worker whose slots are all in use collates that batch into fresh shared
memory as before, so nothing ever waits. The mappings are let go with the
loader.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from sensorpipe.access._nested import leaves, nest

#: main process, per pool (one per worker process and loader): each slot's storages, held so they stay mapped,
#: and the slots handed out to the caller and not yet marked free
_MAPPED: dict[str, dict[int, list]] = {}
_HANDED_OUT: dict[str, set[int]] = {}
_POOLS: dict[tuple[int, str], SlotPool] = {}


def _shared(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype).share_memory_()


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype != object


class SlotPool:
    """One worker's reusable shared-memory batch buffers and their flags (1 = sent, not yet released by the
    main process)."""

    def __init__(self, n_slots: int, pool_id: str) -> None:
        self.id = pool_id
        self.flags = _shared((n_slots,), torch.uint8)
        self.flags.zero_()
        self._flags = self.flags.numpy()
        self.slots: list[tuple[Any, dict[tuple, torch.Tensor]] | None] = [None] * n_slots

    def take(self, layout: tuple) -> int | None:
        """A free slot for a batch of ``layout`` ((path, shape, dtype) per array), allocating it if needed;
        None when every slot is in use."""
        free = np.flatnonzero(self._flags == 0)
        if not free.size:
            return None
        for i in free:
            if self.slots[i] is not None and self.slots[i][0] == layout:
                return int(i)
        i = int(next((i for i in free if self.slots[i] is None), free[0]))  # empty first, else re-shape one
        self.slots[i] = (layout, {p: _shared(shape, dtype) for p, shape, dtype in layout})
        return i


class SlotCollate:
    """``collate_fn`` of :func:`sensorpipe.access.torch.make_dataloader` with workers: in a worker, arrays are
    stacked into a reused shared-memory slot (module doc); in the main process, ``collate`` itself."""

    def __init__(self, collate: Callable[[Sequence[Any]], Any], n_slots: int) -> None:
        self.collate, self.n_slots = collate, int(n_slots)
        self.key = uuid.uuid4().hex   # one pool per loader in each worker process
        weakref.finalize(self, _forget, self.key)   # the main process's copy goes with the loader

    def __call__(self, batch: Sequence[Any]) -> Any:
        if torch.utils.data.get_worker_info() is None or not isinstance(batch[0], dict):
            return self.collate(batch)
        pool = _POOLS.get((os.getpid(), self.key))
        if pool is None:
            pool = _POOLS[(os.getpid(), self.key)] = SlotPool(self.n_slots, f"{self.key}-{os.getpid()}")
        flat = [dict(leaves(ex)) for ex in batch]
        arrays = [p for p, v in flat[0].items() if _is_array(v)]
        layout = tuple((p, (len(batch), *flat[0][p].shape), torch.from_numpy(np.empty(0, flat[0][p].dtype)).dtype)
                       for p in arrays)
        i = pool.take(layout) if arrays else None
        if i is None:
            return self.collate(batch)
        tensors = pool.slots[i][1]
        for p in arrays:
            np.stack([ex[p] for ex in flat], out=tensors[p].numpy())
        rest = {p: self.collate([ex[p] for ex in flat]) for p in flat[0] if p not in tensors}
        pool._flags[i] = 1
        return _SlotBatch(pool.id, pool.flags, i, tensors, rest, tuple(flat[0]))


class _SlotBatch:
    """A batch in a worker's slot, on its way to the main process; unpickling it there copies it out."""

    def __init__(self, pool_id: str, flags: torch.Tensor, slot: int, tensors: dict, rest: dict,
                 order: tuple) -> None:
        self.args = (pool_id, flags, slot, tensors, rest, order)

    def __reduce__(self):
        return _receive, self.args


def _forget(key: str) -> None:
    """Let go of the mappings of a loader's pools (its ``SlotCollate`` is gone)."""
    for pool_id in [p for p in _MAPPED if p.startswith(key)]:
        _MAPPED.pop(pool_id, None)
        _HANDED_OUT.pop(pool_id, None)


def _receive(pool_id: str, flags: torch.Tensor, slot: int, tensors: dict[tuple, torch.Tensor],
             rest: dict[tuple, Any], order: tuple) -> dict[str, Any]:
    """In the main process: the batch as the nested dict collate makes (keys in the examples' order), on its
    slot's memory; slots of this worker that nothing but this module uses any more are marked free."""
    mapped = _MAPPED.setdefault(pool_id, {})
    handed = _HANDED_OUT.setdefault(pool_id, set())
    free = flags.numpy()
    for s in list(handed):
        if all(torch._C._storage_Use_Count(st._cdata) == 1 for st in mapped[s]):   # only our own reference
            free[s] = 0
            handed.discard(s)
    mapped[slot] = [t.untyped_storage() for t in tensors.values()]
    handed.add(slot)
    return nest(order, {**tensors, **rest})
