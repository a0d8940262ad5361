"""PyTorch access: a map-style ``Dataset`` over one split and a ``make_dataloader`` helper.

Every example is the one ``sensorpipe.open(dir).splits[split][i]`` returns,
converted to tensors without changing a byte: arrays keep their stored dtype
(``input`` float32 ``[W, C]``, ``mask`` bool ``[W, C]`` with True = missing,
``time`` int16 ``[W, 4]``), scalars and labels become 0-d tensors of the
feature's own dtype, and string features (``caption``, ``key``, ...) become
python ``str`` (UTF-8 decoded).

ArrayRecord readers open lazily, in the process that reads: the split re-opens
its reader whenever it finds itself in another process (a forked or spawned
DataLoader worker), so a reader opened in the parent before the fork is never
used by a worker.

Needs the ``torch`` extra: ``pip install sensorpipe[torch]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sensorpipe.access._examples import SplitExamples

try:  # absolute import: the top-level torch package, not this module
    import torch
    from torch.utils.data import Dataset as _Base
    from torch.utils.data import Sampler as _SamplerBase
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None
    _Base = object
    _SamplerBase = object

__all__ = ["SensorTorchDataset", "ShardSampler", "collate", "make_dataloader", "to_tensors"]


def _require_torch() -> None:
    if torch is None:
        raise ImportError("sensorpipe.access.torch needs PyTorch: pip install sensorpipe[torch]")


def to_tensors(value: Any, np_dtype: Any = None) -> Any:
    """One decoded example (or part of one) as tensors; bytes become ``str``; dtypes are kept."""
    if isinstance(value, dict):
        dt = np_dtype if isinstance(np_dtype, dict) else {}
        return {k: to_tensors(v, dt.get(k)) for k, v in value.items()}
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:  # a sequence of strings
            return [to_tensors(v) for v in value.tolist()]
        arr = value if value.flags.writeable else value.copy()
        return torch.from_numpy(np.ascontiguousarray(arr))
    dtype = np_dtype if np_dtype is not None and np.dtype(np_dtype) != object else None
    return torch.from_numpy(np.asarray(value, dtype=dtype))


class SensorTorchDataset(SplitExamples, _Base):
    """Map-style ``torch.utils.data.Dataset`` over one split of a written dataset.

    ``path_or_dataset``: the output directory (or a version dir, or an opened
    ``SensorDataset``); ``split``: a split name; ``channels``: channel names to
    keep (``input`` and ``mask`` columns, in the order given; names as in
    ``ds.channels``); ``fields``: the example keys to return (None = all).
    """

    def __init__(self, path_or_dataset: Any, split: str = "train", channels: Sequence[str] | None = None,
                 fields: Sequence[str] | None = None) -> None:
        _require_torch()
        SplitExamples.__init__(self, path_or_dataset, split, channels, fields)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: to_tensors(v, self._np_dtype.get(k)) for k, v in self.example(i).items()}

    _numpy_batches = False  # set by make_dataloader on the datasets it builds, whose batches go to collate()

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A batch for the ``DataLoader`` (which calls this when it exists). For loaders built by
        :func:`make_dataloader` from a path: examples with numpy values (scalars as 0-d arrays of the
        feature's dtype), so :func:`collate` stacks each array once, straight into the batch tensor, instead
        of copying every read-only array into a tensor first (7-10 % faster in process). Otherwise, and for
        subclasses that override ``__getitem__``: ``__getitem__`` per index, as without this method."""
        if not self._numpy_batches or type(self).__getitem__ is not SensorTorchDataset.__getitem__:
            return [self[i] for i in indices]
        return [{k: _numpy(v, self._np_dtype.get(k)) for k, v in self.example(i).items()} for i in indices]

    def __repr__(self) -> str:
        return f"SensorTorchDataset(split={self.split!r}, n={len(self)}, channels={list(self.channels)})"


def _numpy(value: Any, np_dtype: Any = None) -> Any:
    """One decoded value for :func:`collate`: scalars become 0-d arrays of the feature's dtype."""
    if isinstance(value, dict):
        dt = np_dtype if isinstance(np_dtype, dict) else {}
        return {k: _numpy(v, dt.get(k)) for k, v in value.items()}
    if isinstance(value, (bytes, np.bytes_, str, np.ndarray)):
        return value
    dtype = np_dtype if np_dtype is not None and np.dtype(np_dtype) != object else None
    return np.asarray(value, dtype=dtype)


def _batch_tensor(shape: tuple[int, ...], dtype: Any) -> "torch.Tensor":
    """An empty batch tensor; inside a DataLoader worker in shared memory, as ``default_collate`` does, so
    handing the batch to the main process copies nothing."""
    if torch.utils.data.get_worker_info() is not None:
        numel = int(np.prod(shape))
        storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(numel)
        return torch.empty(0, dtype=dtype).new(storage).view(shape)
    return torch.empty(shape, dtype=dtype)


def collate(batch: Sequence[Any]) -> Any:
    """Stack tensors and arrays along a new first axis; strings (``str`` or UTF-8 ``bytes``) as a list; recurse
    into dicts. Arrays are copied once, into the batch tensor (shared memory inside a worker)."""
    first = batch[0]
    if isinstance(first, dict):
        return {k: collate([b[k] for b in batch]) for k in first}
    if torch is not None and isinstance(first, torch.Tensor):
        return torch.stack(list(batch), out=_batch_tensor((len(batch), *first.shape), first.dtype))
    if isinstance(first, np.ndarray) and first.dtype != object:
        out = _batch_tensor((len(batch), *first.shape), torch.from_numpy(np.empty(0, first.dtype)).dtype)
        np.stack(batch, out=out.numpy())
        return out
    if isinstance(first, (np.ndarray, bytes, np.bytes_)):
        return [to_tensors(b) for b in batch]
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, (list, tuple)):
        return [list(b) for b in batch]
    return torch.as_tensor(batch)


class ShardSampler(_SamplerBase):
    """Deterministic per-rank sampler: each index of an epoch goes to exactly one rank.

    The epoch's order is ``range(n)`` (``shuffle=False``) or a permutation
    drawn from ``torch.Generator().manual_seed(seed + epoch)``, identical on
    every rank; rank ``r`` reads positions ``r, r + world_size, ...``. There is
    **no padding**: when ``n % world_size != 0`` the first ``n % world_size``
    ranks get one example more than the others (``torch``'s
    ``DistributedSampler`` would instead repeat examples to even the ranks).
    With ``even=True`` the order is cut to ``world_size * (n // world_size)``
    first, so every rank gets the same count and up to ``world_size - 1``
    examples are skipped that epoch (different ones each epoch when shuffled).
    Call ``set_epoch(e)`` each epoch for a new order.
    """

    def __init__(self, n: int, rank: int = 0, world_size: int = 1, shuffle: bool = True, seed: int = 0,
                 even: bool = False) -> None:
        _require_torch()
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.n, self.rank, self.world_size = int(n), int(rank), int(world_size)
        self.shuffle, self.seed, self.even = shuffle, int(seed), even
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if self.even:
            order = order[: self.world_size * (self.n // self.world_size)]
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.rank:: self.world_size])

    def __len__(self) -> int:
        total = self.world_size * (self.n // self.world_size) if self.even else self.n
        return max(0, math.ceil((total - self.rank) / self.world_size))


def _dist_defaults(rank, world_size):
    if rank is None and world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return None, None
    if rank is None or world_size is None:
        raise ValueError("pass both rank and world_size (or neither)")
    return int(rank), int(world_size)


class WorkerInit:
    """``worker_init_fn`` of :func:`make_dataloader`: the worker's tensor sharing strategy, then the user's own
    init (picklable, for ``spawn``/``forkserver`` worker contexts)."""

    def __init__(self, sharing_strategy: str, then: Any = None) -> None:
        if sharing_strategy not in torch.multiprocessing.get_all_sharing_strategies():
            raise ValueError(f"sharing_strategy {sharing_strategy!r}: use one of "
                             f"{', '.join(sorted(torch.multiprocessing.get_all_sharing_strategies()))}")
        self.sharing_strategy, self.then = sharing_strategy, then

    def __call__(self, worker_id: int) -> None:
        torch.multiprocessing.set_sharing_strategy(self.sharing_strategy)
        if self.then is not None:
            self.then(worker_id)


def make_dataloader(path: Any, split: str = "train", batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                    num_workers: int = 0, channels: Sequence[str] | None = None, rank: int | None = None,
                    world_size: int | None = None, drop_last: bool = False,
                    multiprocessing_context: Any = None, fields: Sequence[str] | None = None,
                    even_shards: bool = False, sharing_strategy: str = "file_system", **loader_kwargs: Any):
    """A ``torch.utils.data.DataLoader`` over one split, batches collated by :func:`collate`.

    - ``shuffle`` + ``seed``: the order comes from a ``torch.Generator`` seeded
      with ``seed``: the same seed gives the same sequence of epochs.
    - ``channels``: names to keep, e.g. ``["heart_rate", "steps"]``.
    - ``rank``/``world_size`` (default: taken from ``torch.distributed`` when it
      is initialized): a :class:`ShardSampler`, so no example is read twice
      per epoch across ranks; no padding, ranks differ by at most one example
      unless ``even_shards=True`` (see :class:`ShardSampler`). Call
      ``loader.sampler.set_epoch(e)`` each epoch for a new shuffled order.
    - ``drop_last``: drop the last incomplete batch (per rank).
    - ``num_workers``/``multiprocessing_context`` (e.g. ``"fork"``): readers
      open lazily in each worker; workers persist across epochs
      (``persistent_workers=True``) with ``prefetch_factor=4`` (override
      either through the keyword arguments). Workers stack each batch into
      shared-memory buffers they reuse once nothing in the main process uses
      them (:mod:`sensorpipe.access._torch_slots`): allocating fresh shared
      memory per batch cost more than reading and decoding it.
    - ``sharing_strategy``: how workers hand batch tensors to the main process (set in the workers only;
      the main process's own setting is left alone). ``file_system`` (default) passes shared-memory file
      names; torch's default ``file_descriptor`` passes each tensor's descriptor through a socket round
      trip, which on day windows cost the main process a third of a core and kept 2 workers at 1.5x one
      worker (1.76x with ``file_system``, BENCHMARKS.md). A ``worker_init_fn`` you pass still runs, after it.
    - other keyword arguments go to ``DataLoader`` (``pin_memory``, ``timeout``, ...).
    """
    _require_torch()
    from torch.utils.data import DataLoader

    if isinstance(path, SensorTorchDataset):
        ds = path
    else:
        ds = SensorTorchDataset(path, split, channels=channels, fields=fields)
        ds._numpy_batches = loader_kwargs.get("collate_fn", collate) is collate  # nobody else sees this dataset
    rank, world_size = _dist_defaults(rank, world_size)
    kwargs: dict[str, Any] = {"batch_size": batch_size, "num_workers": num_workers, "collate_fn": collate,
                              "drop_last": drop_last}
    if num_workers > 0:
        # workers keep their readers and decoders across epochs (start-up is paid once), and each keeps a few
        # batches ready: one batch of day windows is about 3 MB
        kwargs.update(persistent_workers=True, prefetch_factor=4)
        kwargs["worker_init_fn"] = WorkerInit(sharing_strategy, loader_kwargs.pop("worker_init_fn", None))
        if multiprocessing_context is not None:
            kwargs["multiprocessing_context"] = multiprocessing_context
        if loader_kwargs.get("collate_fn", collate) is collate:
            from sensorpipe.access._torch_slots import SlotCollate

            # batches cross to the main process through reused shared memory: one slot per batch a worker
            # may have queued, plus the batches the caller still holds (sensorpipe/access/_torch_slots.py)
            loader_kwargs.pop("collate_fn", None)
            kwargs["collate_fn"] = SlotCollate(collate, loader_kwargs.get("prefetch_factor", 4) + 4)
    if world_size is not None:
        kwargs["sampler"] = ShardSampler(len(ds), rank, world_size, shuffle=shuffle, seed=seed, even=even_shards)
    elif shuffle:
        kwargs["shuffle"] = True
        kwargs["generator"] = torch.Generator().manual_seed(int(seed))
    kwargs.update(loader_kwargs)
    return DataLoader(ds, **kwargs)
