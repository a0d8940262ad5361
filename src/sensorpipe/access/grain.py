"""Grain access: a ``RandomAccessDataSource`` over one split, a ``MapDataset`` and a ``DataLoader`` recipe.

Examples are the numpy dicts ``sensorpipe.open(dir).splits[split][i]``
returns (text fields as ``str``, arrays keep their dtype), optionally cut to
some channels. The source is picklable and opens its ArrayRecord reader
lazily in the process that reads (re-opening after a fork), so it is safe in
Grain's worker processes.

Needs the ``grain`` extra: ``pip install sensorpipe[grain]`` (written against grain 0.2.x:
``grain.MapDataset``, ``grain.DataLoader``, ``grain.samplers.IndexSampler``,
``grain.sharding.ShardOptions``, ``grain.transforms.Batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sensorpipe.access._examples import SplitExamples

__all__ = ["SensorGrainSource", "make_grain_loader", "make_map_dataset"]


def _grain():
    try:
        import grain
    except ImportError as e:  # pragma: no cover - exercised only without grain
        raise ImportError("sensorpipe.access.grain needs Grain: pip install sensorpipe[grain]") from e
    return grain


class SensorGrainSource(SplitExamples):
    """Grain ``RandomAccessDataSource``-compatible source (``__len__``, ``__getitem__``) over one split."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.example(i)

    def __repr__(self) -> str:  # Grain uses it to check checkpoints against the source
        return (f"SensorGrainSource(dir={self._dir!r}, split={self.split!r}, channels={list(self.channels)}, "
                f"fields={None if self.fields is None else list(self.fields)})")


class _ShardSource:
    """Records ``[start, stop)`` of a source, as a source of their own (picklable; the reader stays lazy).

    Grain 0.2's ``DataLoader`` sizes a sharded epoch as ``len(sampler) //
    shard_count`` whatever ``drop_remainder`` says, so with 19 records and 3
    hosts one record was never read. Sharding the source itself into Grain's
    own contiguous ranges (``even_split``) reads every record exactly once.
    """

    def __init__(self, source: Any, start: int, stop: int) -> None:
        self.source, self.start, self.stop = source, int(start), int(stop)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} of a shard of {len(self)}")
        return self.source[self.start + i]

    def __repr__(self) -> str:
        return f"{self.source!r}[{self.start}:{self.stop}]"


def make_map_dataset(path: Any, split: str = "train", channels: Sequence[str] | None = None,
                     fields: Sequence[str] | None = None, shuffle: bool = False, seed: int = 0,
                     batch_size: int | None = None, drop_remainder: bool = False):
    """``grain.MapDataset.source(SensorGrainSource(...))``, optionally shuffled (seeded) and batched.

    For worker processes: ``make_map_dataset(...).to_iter_dataset().mp_prefetch(
    grain.MultiprocessingOptions(num_workers=2))``.
    """
    grain = _grain()
    src = path if isinstance(path, SensorGrainSource) else SensorGrainSource(path, split, channels, fields)
    ds = grain.MapDataset.source(src)
    if shuffle:
        ds = ds.shuffle(seed=int(seed))
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds


def make_grain_loader(path: Any, split: str = "train", batch_size: int | None = None, shuffle: bool = False,
                      seed: int = 0, worker_count: int = 0, channels: Sequence[str] | None = None,
                      fields: Sequence[str] | None = None, shard_index: int | None = None,
                      shard_count: int | None = None, num_epochs: int = 1, drop_remainder: bool = False,
                      worker_buffer_size: int = 1, read_threads: int | None = 0):
    """A ``grain.DataLoader`` recipe: ``IndexSampler`` (seeded shuffle, sharding) + optional ``Batch``.

    ``worker_count`` > 0 reads in that many worker processes (each opens its
    own reader); ``shard_index``/``shard_count`` split the records between
    hosts (Grain's ``ShardOptions``: contiguous ranges, no example read twice).
    ``batch_size=None`` yields single examples. ``read_threads`` (per process)
    defaults to 0, reading in the thread that consumes, not Grain's 16 reader
    threads: decoding a record is Python and holds the GIL, so reader threads
    only hand the GIL back and forth (day windows in process, 2 cores: 16
    threads 2,400 examples/s, 2 threads 5,500-7,000, none 7,700-8,500);
    ``None`` takes Grain's default. With workers, batches reach this process
    through shared-memory buffers each worker reuses once no array here uses
    them (:mod:`sensorpipe.access._grain_slots`), instead of a fresh segment
    per array per batch, which cost as much as reading the batch.
    """
    grain = _grain()
    src = path if isinstance(path, SensorGrainSource) else SensorGrainSource(path, split, channels, fields)
    if (shard_index is None) != (shard_count is None):
        raise ValueError("pass both shard_index and shard_count (or neither)")
    if shard_count is not None:
        from grain._src.core.sharding import even_split   # the ranges ShardOptions stands for

        start, stop = even_split(len(src), grain.sharding.ShardOptions(
            shard_index=int(shard_index), shard_count=int(shard_count), drop_remainder=False))
        src = _ShardSource(src, start, stop)
    shard = grain.sharding.NoSharding()
    sampler = grain.samplers.IndexSampler(num_records=len(src), shard_options=shard, shuffle=shuffle,
                                          num_epochs=num_epochs, seed=int(seed))
    batch_fn = None
    if worker_count > 0:
        from sensorpipe.access._grain_slots import SlotBatchFn

        # batches cross from the workers through reused shared memory (sensorpipe/access/_grain_slots.py):
        # a slot per batch a worker may have buffered, plus the batches the caller still holds
        batch_fn = SlotBatchFn(n_slots=worker_buffer_size + 6)
    ops = ([grain.transforms.Batch(batch_size=batch_size, drop_remainder=drop_remainder, batch_fn=batch_fn)]
           if batch_size else [])
    read_options = grain.ReadOptions(num_threads=read_threads) if read_threads is not None else None
    return grain.DataLoader(data_source=src, sampler=sampler, operations=ops, worker_count=worker_count,
                            worker_buffer_size=worker_buffer_size, shard_options=shard, read_options=read_options)
