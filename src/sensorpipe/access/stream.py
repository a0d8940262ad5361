"""Streaming iteration over a split's shards with a resumable checkpoint.

``split.stream(shuffle_shards=False, seed=0)`` yields the split's examples
shard by shard (shard order optionally shuffled by ``seed``; record order
inside a shard is kept), with at most one ArrayRecord reader open at a time and
at most ``chunk`` records buffered: memory stays bounded whatever the split's
size, and no random-access index is needed.

``stream.state()`` is a JSON-able checkpoint: the shard order and, per shard,
the number of records already consumed (``offsets[i]`` for shard ``i``), plus
the current ``shard``/``offset`` for convenience. ``split.stream(state=s)``
continues exactly after the last example yielded before ``state()`` was taken.
On a filtered view, records outside the filter are skipped (they still count
in the shard offsets, which are physical record positions).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

STATE_VERSION = 1


class ShardStream:
    """Iterator over one split (or view) in shard order; see the module docstring."""

    def __init__(self, split, shuffle_shards: bool = False, seed: int = 0, state: dict | None = None,
                 chunk: int = 32) -> None:
        self._split = split
        self._lengths = [int(x) for x in split._shard_lengths]
        n = len(self._lengths)
        if state is None:
            order = list(range(n))
            if shuffle_shards:
                order = [int(i) for i in np.random.default_rng(seed).permutation(n)]
            offsets = [0] * n
        else:
            order, offsets = self._check(state)
        self._order = order
        self._offsets = offsets
        self._chunk = max(1, int(chunk))
        self._allowed = split._allowed_mask()  # None = every record
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)]).astype(np.int64)
        self._reader = None
        self._reader_shard: int | None = None
        self._buffer: list[bytes] = []

    def _check(self, state: dict) -> tuple[list[int], list[int]]:
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"not a sensorpipe stream state (version {STATE_VERSION}): {state!r}")
        if state.get("split") != self._split.name or list(state.get("shard_lengths", [])) != self._lengths:
            raise ValueError(f"stream state is for split {state.get('split')!r} with shard lengths "
                             f"{state.get('shard_lengths')}, not split {self._split.name!r} with {self._lengths}")
        order = [int(i) for i in state["order"]]
        offsets = [int(x) for x in state["offsets"]]
        if sorted(order) != list(range(len(self._lengths))) or len(offsets) != len(self._lengths) \
                or any(not 0 <= o <= n for o, n in zip(offsets, self._lengths)):
            raise ValueError(f"corrupt stream state: order {order}, offsets {offsets}")
        return order, offsets

    def _current(self) -> int | None:
        for s in self._order:
            if self._offsets[s] < self._lengths[s]:
                return s
        return None

    def state(self) -> dict[str, Any]:
        cur = self._current()
        return {"version": STATE_VERSION, "split": self._split.name, "shard_lengths": list(self._lengths),
                "order": list(self._order), "offsets": list(self._offsets),
                "shard": cur, "offset": None if cur is None else self._offsets[cur]}

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader, self._reader_shard, self._buffer = None, None, []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            s = self._current()
            if s is None:
                self.close()
                raise StopIteration
            if self._reader_shard != s:
                from array_record.python.array_record_module import ArrayRecordReader

                self.close()  # one reader open at a time
                self._reader = ArrayRecordReader(self._split._shard_path(s),
                                                 "readahead_buffer_size:4M,max_parallelism:1")
                self._reader_shard = s
            if not self._buffer:
                lo = self._offsets[s]
                hi = min(lo + self._chunk, self._lengths[s])
                try:
                    self._buffer = list(self._reader.read(lo, hi))
                except RuntimeError as e:   # Riegeli "Corrupted ...": one error naming the shard
                    from sensorpipe.integrity import corrupt_shard

                    raise corrupt_shard(self._split._shard_path(s), e) from None
            rec = self._buffer.pop(0)
            g = int(self._starts[s]) + self._offsets[s]
            self._offsets[s] += 1
            if self._allowed is not None and not self._allowed[g]:
                continue
            return self._split._decode(rec)

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
