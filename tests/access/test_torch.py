"""PyTorch access: same bytes as sensorpipe.open(), seeded shuffle, channels, fork workers, rank sharding."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install sensorpipe[torch]")

import sensorpipe
from sensorpipe.access.torch import (
    SensorTorchDataset,
    ShardSampler,
    collate,
    make_dataloader,
)


def _same(t, v):
    if isinstance(v, dict):
        assert set(t) == set(v)
        for k in v:
            _same(t[k], v[k])
    elif isinstance(v, str):   # text: str from open() and from the loader
        assert isinstance(t, str) and t == v
    else:
        assert isinstance(t, torch.Tensor)
        got = t.numpy()
        if isinstance(v, np.ndarray):  # arrays: same dtype, shape and bytes
            assert got.dtype == v.dtype and got.shape == v.shape and got.tobytes() == v.tobytes()
        else:  # python scalars: a 0-d tensor of the feature's dtype holding exactly that value
            assert got.shape == () and got.tobytes() == np.asarray(v, dtype=got.dtype).tobytes()


def test_same_examples_as_open(out, ref):
    for split in ref.splits:
        tds = SensorTorchDataset(out, split)
        assert len(tds) == len(ref[split])
        for i in range(len(tds)):
            ex, want = tds[i], ref[split][i]
            assert set(ex) == set(want)
            for k in want:
                _same(ex[k], want[k])
            assert ex["input"].dtype == torch.float32 and ex["mask"].dtype == torch.bool


def test_channel_selection(out, ref):
    names = [ref.channels[3], ref.channels[0]]
    tds = SensorTorchDataset(ref, "train", channels=names, fields=("input", "mask"))
    assert tds.channels == tuple(names)
    ex, want = tds[1], ref["train"][1]
    assert set(ex) == {"input", "mask"}
    assert ex["input"].shape[-1] == 2
    np.testing.assert_array_equal(ex["input"].numpy(), want["input"][:, [3, 0]])
    np.testing.assert_array_equal(ex["mask"].numpy(), want["mask"][:, [3, 0]])
    with pytest.raises(ValueError, match="unknown channel"):
        SensorTorchDataset(ref, "train", channels=["nope"])


def _keys(loader):
    return [k for b in loader for k in b["key"]]


def test_seeded_shuffle(out, ref):
    n = len(ref["train"])
    a = _keys(make_dataloader(out, "train", batch_size=4, seed=1, fields=("key", "input")))
    b = _keys(make_dataloader(out, "train", batch_size=4, seed=1, fields=("key", "input")))
    c = _keys(make_dataloader(out, "train", batch_size=4, seed=2, fields=("key", "input")))
    plain = [ref["train"][i]["key"] for i in range(n)]
    assert a == b and a != c
    assert sorted(a) == sorted(plain) and len(a) == n
    assert _keys(make_dataloader(out, "train", batch_size=4, shuffle=False, fields=("key",))) == plain


def test_collate_batches(out, ref):
    loader = make_dataloader(out, "train", batch_size=3, shuffle=False, channels=[ref.channels[1]])
    batch = next(iter(loader))
    w = ref["train"][0]["input"].shape[0]
    assert batch["input"].shape == (3, w, 1) and batch["input"].dtype == torch.float32
    assert batch["mask"].shape == (3, w, 1) and batch["mask"].dtype == torch.bool
    assert isinstance(batch["caption"], list) and isinstance(batch["caption"][0], str)
    assert all(isinstance(v, torch.Tensor) and v.shape[0] == 3 for v in batch["labels"].values())
    assert batch["labels"]["sleep_stage_sequence"].shape == (3, w)
    np.testing.assert_array_equal(batch["input"][2].numpy(), ref["train"][2]["input"][:, [1]])
    assert collate([{"a": "x"}, {"a": "y"}]) == {"a": ["x", "y"]}


def test_fork_workers_after_parent_read(out, ref):
    tds = SensorTorchDataset(out, "train")
    assert len(tds) > 0
    tds[0]  # the parent opens a reader before the fork: workers must not reuse it
    loader = make_dataloader(tds, batch_size=2, shuffle=True, seed=0, num_workers=2,
                             multiprocessing_context="fork", timeout=120)
    keys = _keys(loader)
    assert sorted(keys) == sorted(ref["train"][i]["key"] for i in range(len(ref["train"])))


class _ReaderProbe(SensorTorchDataset):
    """Returns which reader object served each read, and in which process."""

    def __getitem__(self, i):
        self.example(i)
        return {"pid": torch.tensor(os.getpid()), "parents": torch.tensor(self._split._source is self.parent_reader)}


def test_workers_never_reuse_parent_reader(out):
    # A reader inherited over fork does not always crash on a small dataset, so check directly that each
    # worker reads through its own reader, not the one the parent opened (inherited as the same object).
    probe = _ReaderProbe(out, "train")
    probe.example(0)
    probe.parent_reader = probe._split._source
    assert probe.parent_reader is not None
    loader = make_dataloader(probe, batch_size=2, shuffle=False, num_workers=2, multiprocessing_context="fork",
                             timeout=120)
    batches = list(loader)
    pids = {int(p) for b in batches for p in b["pid"]}
    assert os.getpid() not in pids and len(pids) == 2
    assert not any(bool(x) for b in batches for x in b["parents"])


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("shuffle", [True, False])
def test_rank_sharding_covers_once(out, ref, world_size, shuffle):
    split = "train" if len(ref["train"]) % world_size else "validation"
    n = len(ref[split])
    for epoch in (0, 1):
        seen = []
        for rank in range(world_size):
            loader = make_dataloader(out, split, batch_size=2, shuffle=shuffle, seed=5, rank=rank,
                                     world_size=world_size, fields=("key",))
            loader.sampler.set_epoch(epoch)
            assert len(loader.sampler) in (n // world_size, -(-n // world_size))
            seen += _keys(loader)
        assert len(seen) == n and sorted(seen) == sorted(ref[split][i]["key"] for i in range(n))


def test_shard_sampler_uneven_and_even():
    for n in range(12):
        for ws in (1, 2, 3, 5):
            parts = [list(ShardSampler(n, r, ws, shuffle=True, seed=3)) for r in range(ws)]
            flat = sorted(i for p in parts for i in p)
            assert flat == list(range(n))
            assert [len(p) for p in parts] == [len(ShardSampler(n, r, ws)) for r in range(ws)]
            even = [list(ShardSampler(n, r, ws, seed=3, even=True)) for r in range(ws)]
            assert len({len(p) for p in even}) <= 1
            assert len({i for p in even for i in p}) == ws * (n // ws)
    with pytest.raises(ValueError):
        ShardSampler(10, 2, 2)


def test_open_alias_gives_same(out):
    ds = sensorpipe.open(out)
    tds = SensorTorchDataset(ds, "validation")
    assert len(tds) == len(ds.splits["validation"])


def test_missing_torch_names_the_extra(out, monkeypatch):
    import sensorpipe.access.torch as m

    monkeypatch.setattr(m, "torch", None)
    with pytest.raises(ImportError, match=r"sensorpipe\[torch\]"):
        m.SensorTorchDataset(out, "train")


def _equal_batches(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _equal_batches(a[k], b[k])
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.nan_to_num(), b.nan_to_num())
        assert torch.isnan(a).equal(torch.isnan(b)) if a.is_floating_point() else True
    else:
        assert a == b


@pytest.mark.parametrize("workers", [0, 2])
def test_batched_fetch_equals_per_example_collate(out, workers):
    """The DataLoader's batched fetch (numpy examples stacked once, in shared memory in workers) gives the
    batches that collating the per-example tensors gives."""
    tds = SensorTorchDataset(out, "train")
    loader = make_dataloader(out, "train", batch_size=3, shuffle=False, num_workers=workers,
                             multiprocessing_context="fork" if workers else None, timeout=120 if workers else 0)
    assert loader.dataset._numpy_batches and not tds._numpy_batches  # only the loader's own dataset
    if workers:
        assert loader.persistent_workers and loader.prefetch_factor == 4
    batches = list(loader)
    assert sum(len(b["key"]) for b in batches) == len(tds)
    for j, batch in enumerate(batches):
        idx = range(3 * j, min(3 * j + 3, len(tds)))
        _equal_batches(batch, collate([tds[i] for i in idx]))


def test_custom_collate_gets_per_example_tensors(out):
    loader = make_dataloader(out, "train", batch_size=2, shuffle=False, fields=("input", "key"),
                             collate_fn=lambda batch: batch)
    assert not loader.dataset._numpy_batches
    first = next(iter(loader))
    assert len(first) == 2 and isinstance(first[0]["input"], torch.Tensor) and isinstance(first[0]["key"], str)


class _StrategyProbe(SensorTorchDataset):
    """Reports the tensor sharing strategy of the process that read each example."""

    def __getitem__(self, i):
        return {"file_system": torch.tensor(torch.multiprocessing.get_sharing_strategy() == "file_system")}


def _record_init(worker_id):
    os.environ["SENSORPIPE_TEST_INIT_RAN"] = "1"   # the user's init ran in the worker (checked through the batch)


class _InitProbe(SensorTorchDataset):
    def __getitem__(self, i):
        return {"user_init": torch.tensor(os.environ.get("SENSORPIPE_TEST_INIT_RAN") == "1")}


def test_workers_share_tensors_by_file_name_and_keep_the_users_init(out):
    """Workers hand batches over by shared-memory file name (not one fd round trip per tensor); the main
    process's own strategy is not changed, and a worker_init_fn passed by the user still runs."""
    before = torch.multiprocessing.get_sharing_strategy()
    loader = make_dataloader(_StrategyProbe(out, "train"), batch_size=2, shuffle=False, num_workers=2,
                             multiprocessing_context="fork", timeout=120)
    assert all(bool(x) for b in loader for x in b["file_system"])
    assert torch.multiprocessing.get_sharing_strategy() == before
    loader = make_dataloader(_InitProbe(out, "train"), batch_size=2, shuffle=False, num_workers=2,
                             multiprocessing_context="fork", timeout=120, worker_init_fn=_record_init)
    assert all(bool(x) for b in loader for x in b["user_init"])
    with pytest.raises(ValueError, match="sharing_strategy 'shm'"):
        make_dataloader(out, "train", num_workers=1, sharing_strategy="shm")


def _shm_name(t):
    return t.untyped_storage()._share_filename_cpu_()[1]


def test_workers_reuse_their_shared_memory_for_later_batches(out):
    """Batches cross from a worker through a few reused shared-memory slots (prefetch_factor + 4), not a fresh
    segment per batch, once the caller has let go of them."""
    loader = make_dataloader(out, "train", batch_size=1, shuffle=False, num_workers=1, prefetch_factor=1,
                             multiprocessing_context="fork", fields=("input", "mask"), timeout=120)
    names, n = set(), 0
    for batch in loader:
        names.add(_shm_name(batch["input"]))
        n += 1
    assert n == len(SensorTorchDataset(out, "train")) and n > 8
    assert len(names) <= 5


def test_batches_kept_by_the_caller_never_change_while_workers_reuse_slots(out):
    tds = SensorTorchDataset(out, "train")
    loader = make_dataloader(out, "train", batch_size=1, shuffle=False, num_workers=2, prefetch_factor=1,
                             multiprocessing_context="fork", timeout=120)
    kept = {}
    for i, batch in enumerate(loader):
        if i % 3 == 0:
            kept[i] = batch
        elif i % 3 == 1:
            kept[i] = {"input": batch["input"][0, :5]}   # a view alone keeps its slot in use too
    for i, batch in kept.items():
        want = collate([tds[i]])
        if "key" in batch:
            _equal_batches(batch, want)
        else:
            assert torch.equal(batch["input"].nan_to_num(), want["input"][0, :5].nan_to_num())
    # more kept than the two workers' 10 slots: the slots fill up and later batches take fresh memory
    assert len(kept) > 10
