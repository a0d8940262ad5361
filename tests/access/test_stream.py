"""Streaming iteration over shards with a resumable per-shard checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sensorpipe


@pytest.fixture(scope="module")
def ds(local_run):
    return sensorpipe.open(local_run.output_dir)


def _keys(examples):
    return [ex["key"] for ex in examples]


def _eq(a, b):
    for k in a:
        if isinstance(a[k], dict):
            _eq(a[k], b[k])
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_stream_in_shard_order_equals_random_access(ds):
    tr = ds["train"]
    assert len(tr._shard_lengths) > 1
    got = list(tr.stream(chunk=2))
    assert len(got) == len(tr)
    for a, b in zip(got, tr):
        _eq(a, b)


@pytest.mark.parametrize("shuffle", [False, True])
def test_stop_and_resume_equals_one_pass(ds, shuffle):
    tr = ds["train"]
    full = _keys(tr.stream(shuffle_shards=shuffle, seed=3, chunk=2))
    assert sorted(full) == sorted(_keys(tr))
    if shuffle:
        assert full != _keys(tr)  # seed 3 moves the shards (4 shards)
        assert full == _keys(tr.stream(shuffle_shards=True, seed=3))
    first = tr._shard_lengths[0]
    for k in (0, 1, first, first + 1, len(tr) - 1, len(tr)):
        st = tr.stream(shuffle_shards=shuffle, seed=3, chunk=2)
        head = [next(st)["key"] for _ in range(k)]
        state = json.loads(json.dumps(st.state()))  # JSON-able
        assert sum(state["offsets"]) == k
        st.close()
        tail = _keys(tr.stream(state=state))
        assert head + tail == full, k


def test_state_names_shard_and_offset(ds):
    tr = ds["train"]
    st = tr.stream()
    assert st.state()["shard"] == 0 and st.state()["offset"] == 0
    for _ in range(tr._shard_lengths[0] + 1):
        next(st)
    s = st.state()
    assert (s["shard"], s["offset"]) == (1, 1)
    assert s["offsets"][:2] == [tr._shard_lengths[0], 1]
    list(st)
    assert st.state()["shard"] is None and st.state()["offsets"] == tr._shard_lengths


def test_stream_one_reader_at_a_time(ds, monkeypatch):
    from array_record.python import array_record_module

    live, peak = [0], [0]
    real = array_record_module.ArrayRecordReader

    class Counting:
        def __init__(self, *a, **kw):
            self._r = real(*a, **kw)
            live[0] += 1
            peak[0] = max(peak[0], live[0])

        def read(self, *a):
            return self._r.read(*a)

        def close(self):
            live[0] -= 1
            self._r.close()

    monkeypatch.setattr(array_record_module, "ArrayRecordReader", Counting)
    n = sum(1 for _ in ds["train"].stream())
    assert n == len(ds["train"]) and peak[0] == 1 and live[0] == 0


def test_stream_on_filtered_selected_view(ds):
    tr = ds["train"]
    thr = float(np.median([ex["missingness_ratio"] for ex in tr]))
    view = tr.filter(max_missing=thr).select([ds.channels[4], ds.channels[1]])
    got = list(view.stream())
    assert 0 < len(got) == len(view) < len(tr)
    for a, b in zip(got, view):
        _eq(a, b)
    assert got[0]["input"].shape[-1] == 2
    st = view.stream()
    head = [next(st)["key"]]
    tail = _keys(view.stream(state=st.state()))
    assert head + tail == _keys(got)


def test_bad_state_is_refused(ds):
    st = ds["train"].stream().state()
    with pytest.raises(ValueError, match="split"):
        ds["validation"].stream(state=st)
    with pytest.raises(ValueError):
        ds["train"].stream(state={"version": 99})
    bad = dict(st, offsets=[10**6] * len(st["offsets"]))
    with pytest.raises(ValueError, match="corrupt"):
        ds["train"].stream(state=bad)
