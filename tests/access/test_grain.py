"""Grain access: a RandomAccessDataSource, MapDataset and DataLoader giving the same examples as open()."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

grain = pytest.importorskip("grain", reason="Grain not installed: pip install sensorpipe[grain]")

from sensorpipe.access.grain import (
    SensorGrainSource,
    make_grain_loader,
    make_map_dataset,
)


def _same(a, b):
    if isinstance(b, dict):
        assert set(a) == set(b)
        for k in b:
            _same(a[k], b[k])
    elif isinstance(b, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    else:
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _key(ex):
    return np.asarray(ex["key"]).item()


def test_source_same_as_open(out, ref):
    for split in ref.splits:
        src = SensorGrainSource(out, split)
        assert len(src) == len(ref[split])
        for i in range(len(src)):
            _same(src[i], ref[split][i])
        src2 = pickle.loads(pickle.dumps(src))
        _same(src2[0], ref[split][0])
        assert "SensorGrainSource(" in repr(src)


def test_channels(out, ref):
    src = SensorGrainSource(out, "train", channels=[ref.channels[2]])
    np.testing.assert_array_equal(src[0]["input"], ref["train"][0]["input"][:, [2]])


def test_map_dataset(out, ref):
    n = len(ref["train"])
    ds = make_map_dataset(out, "train")
    assert isinstance(ds, grain.MapDataset) and len(ds) == n
    for i in range(n):
        _same(ds[i], ref["train"][i])
    a = [_key(make_map_dataset(out, "train", shuffle=True, seed=1)[i]) for i in range(n)]
    b = [_key(make_map_dataset(out, "train", shuffle=True, seed=1)[i]) for i in range(n)]
    assert a == b and sorted(a) == sorted(ref["train"][i]["key"] for i in range(n))
    batch = make_map_dataset(out, "train", batch_size=2)[0]
    assert batch["input"].shape[0] == 2


def test_text_fields_are_str_in_examples_and_batches(out, ref):
    ex = SensorGrainSource(out, "train")[0]
    assert type(ex["key"]) is str and ex["key"] == ref["train"][0]["key"]
    batch = make_map_dataset(out, "train", batch_size=2)[0]
    assert batch["key"].dtype.kind == "U" and list(batch["key"]) == [ref["train"][i]["key"] for i in range(2)]


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_same_examples(out, ref, workers):
    n = len(ref["train"])
    src = SensorGrainSource(out, "train")
    src[0]  # the parent has an open reader before the workers start
    got = {_key(ex): ex for ex in make_grain_loader(src, shuffle=True, seed=3, worker_count=workers)}
    assert len(got) == n
    for i in range(n):
        want = ref["train"][i]
        _same(got[want["key"]], want)


@pytest.mark.parametrize("shard_count", [2, 3, 4])
def test_loader_shards_cover_once(out, ref, shard_count):
    """Every record once across the shards, also when they do not divide the split evenly (Grain 0.2's
    DataLoader alone drops that remainder)."""
    n = len(ref["train"])
    keys = []
    for s in range(shard_count):
        keys += [_key(ex) for ex in make_grain_loader(out, "train", shuffle=True, seed=0, shard_index=s,
                                                      shard_count=shard_count)]
    assert sorted(keys) == sorted(ref["train"][i]["key"] for i in range(n))


def test_uneven_shards_read_every_record_once():
    from grain._src.core.sharding import even_split

    from sensorpipe.access.grain import _ShardSource

    got, sizes = [], []
    for s in range(3):
        lo, hi = even_split(19, grain.sharding.ShardOptions(shard_index=s, shard_count=3, drop_remainder=False))
        shard = _ShardSource(list(range(19)), lo, hi)
        got += [shard[i] for i in range(len(shard))]
        sizes.append(len(shard))
        with pytest.raises(IndexError):
            shard[len(shard)]
    assert sorted(got) == list(range(19)) and sizes == [7, 6, 6]


def test_missing_grain_names_the_extra(out, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "grain", None)
    with pytest.raises(ImportError, match=r"sensorpipe\[grain\]"):
        make_map_dataset(out, "train")


def test_workers_reuse_shared_memory_and_kept_batches_never_change(out):
    """With workers, batches cross through a few reused shared-memory slots per worker (worker_buffer_size +
    6), each freed only once no array here uses it: batches (and views) kept while the loader goes on keep
    their values, and the batches dropped at once let the workers reuse the same slots."""
    from sensorpipe.access import _grain_slots

    src = SensorGrainSource(out, "train", fields=("input", "key"))
    index_of = {_key(src[i]): i for i in range(len(src))}
    loader = make_grain_loader(out, "train", batch_size=1, worker_count=2, fields=("input", "key"), num_epochs=3)
    kept, seen = [], 0
    for batch in loader:
        seen += 1
        if seen % 9 == 0:
            kept.append((str(batch["key"][0]), batch["input"]))
        elif seen % 9 == 1:
            kept.append((str(batch["key"][0]), batch["input"][:, :5]))   # a view alone holds its slot too
    assert seen == 3 * len(src) and len(kept) > 2
    for key, arr in kept:
        want = src[index_of[key]]["input"]
        assert arr.tobytes() == want[None, : arr.shape[1]].tobytes()
    pools = [p for p in _grain_slots._MAIN.values() if p["slots"]]
    assert len(pools) == 2 and all(len(p["slots"]) <= 7 for p in pools)     # 2 workers, 7 slots at most each
    assert sum(len(p["slots"]) for p in pools) < seen
