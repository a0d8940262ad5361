"""sensorpipe.open(): channel selection, denormalize on views, metadata filters, fsspec URLs."""

from __future__ import annotations

import numpy as np
import pytest

import sensorpipe


@pytest.fixture(scope="module")
def ds(local_run):
    return sensorpipe.open(local_run.output_dir)


def _eq(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _eq(a[k], b[k])
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_split_len_index_slice_iter(ds):
    tr = ds["train"]
    assert len(list(tr)) == len(tr) > 2
    _eq(tr[-1], tr[len(tr) - 1])
    for a, b in zip(tr[1:3], [tr[1], tr[2]]):
        _eq(a, b)
    with pytest.raises(IndexError):
        tr[len(tr)]


def test_select_channels_in_asked_order(ds):
    want = [ds.channels[3], ds.channels[0], ds.channels[-1]]
    cols = [3, 0, len(ds.channels) - 1]
    view = ds["train"].select(channels=want)
    assert view.channels == tuple(want) and len(view) == len(ds["train"])
    for i in (0, len(view) - 1):
        full, sel = ds["train"][i], view[i]
        for k in ("input", "mask", "missing_ratio_per_channel", "longest_gap_min"):
            np.testing.assert_array_equal(sel[k], full[k][..., cols], err_msg=k)
        np.testing.assert_array_equal(sel["time"], full["time"])
        assert sel["key"] == full["key"]
    # a view of a view maps through
    sub = view.select([want[2], want[0]])
    np.testing.assert_array_equal(sub[0]["input"], ds["train"][0]["input"][:, [cols[2], cols[0]]])
    # the dataset-level view
    dv = ds.select(want)
    assert dv.channels == tuple(want) and dv.norm.channels == tuple(want)
    np.testing.assert_array_equal(dv["validation"][0]["mask"], ds["validation"][0]["mask"][:, cols])


def test_select_unknown_channel_names_it_and_the_available_ones(ds):
    with pytest.raises(ValueError, match=r"'nope'.*heart_rate"):
        ds["train"].select(channels=["heart_rate", "nope"])
    with pytest.raises(ValueError, match="nope"):
        ds.select(["nope"])
    with pytest.raises(ValueError, match="distinct"):
        ds["train"].select(["heart_rate", "heart_rate"])


def test_denormalize_on_selected_view(ds):
    want = [ds.channels[5], ds.channels[0]]
    cols = [5, 0]
    full = ds["train"][0]
    ref = ds.denormalize(full["input"], full["mask"])[:, cols]
    view = ds["train"].select(want)
    ex = view[0]
    np.testing.assert_array_equal(view.denormalize(ex["input"], ex["mask"]), ref)
    dv = ds.select(want)
    np.testing.assert_array_equal(dv.denormalize(ex["input"], ex["mask"]), ref)
    np.testing.assert_array_equal(dv.denormalize(ex["input"]), ds.denormalize(full["input"])[:, cols])
    with pytest.raises(ValueError):
        view.denormalize(full["input"])  # 12 channels into a 2-channel view


def _all_meta(split):
    return [(ex["dataset"], ex["participant_id"], float(ex["missingness_ratio"]))
            for ex in split]


def test_filters_match_full_decode(ds):
    tr = ds["train"]
    meta = _all_meta(tr)
    names = sorted({m[0] for m in meta})
    pids = sorted({m[1] for m in meta})
    miss = np.array([m[2] for m in meta], np.float32)
    thr = float(np.median(miss))
    cases = [
        (dict(dataset=names[0]), [m[0] == names[0] for m in meta]),
        (dict(dataset=names[:2]), [m[0] in names[:2] for m in meta]),
        (dict(participant=pids[0].encode()), [m[1] == pids[0] for m in meta]),
        (dict(max_missing=thr), list(miss <= np.float32(thr))),
        (dict(min_missing=thr), list(miss >= np.float32(thr))),
        (dict(dataset=names[0], max_missing=thr), [m[0] == names[0] and mi <= np.float32(thr)
                                                   for m, mi in zip(meta, miss)]),
    ]
    for kw, ok in cases:
        view = tr.filter(**kw)
        want = [i for i, o in enumerate(ok) if o]
        assert list(view.indices) == want, kw
        assert len(view) == len(want)
        for j, i in enumerate(want):
            _eq(view[j], tr[i])
        for a, i in zip(view, want):
            _eq(a, tr[i])
        if want:
            _eq(view[-1], tr[want[-1]])
            assert view.raw(0) == tr.raw(want[0])
    assert len(tr.filter(dataset=names)) == len(tr)
    assert len(tr.filter(participant="no-such-participant")) == 0
    # filters compose, and with select
    both = tr.filter(dataset=names[0]).filter(max_missing=thr).select([ds.channels[1]])
    want = [i for i, (m, mi) in enumerate(zip(meta, miss)) if m[0] == names[0] and mi <= np.float32(thr)]
    assert list(both.indices) == want
    for j, i in enumerate(want):
        np.testing.assert_array_equal(both[j]["input"], tr[i]["input"][:, [1]])
    with pytest.raises(ValueError):
        tr.filter(max_missing=1.5)


def test_filter_scans_once(ds, monkeypatch):
    from sensorpipe.access import filters

    tr = sensorpipe.open(ds.version_dir)["train"]
    calls = []
    real = filters.scan
    monkeypatch.setattr(filters, "scan", lambda recs: calls.append(1) or real(recs))
    tr.filter(max_missing=0.5)
    tr.filter(min_missing=0.1)
    tr.filter(max_missing=0.5).filter(dataset="x")
    assert len(calls) == 1


def test_file_url(ds, local_run):
    from pathlib import Path

    url = Path(local_run.output_dir).resolve().as_uri()
    assert url.startswith("file://")
    other = sensorpipe.open(url)
    assert other.version_dir == ds.version_dir.resolve() or other.version_dir == ds.version_dir
    for s in ds.splits:
        assert len(other[s]) == len(ds[s])
        _eq(other[s][0], ds[s][0])


def test_memory_url_copies_shards_into_a_local_cache(ds, tmp_path, monkeypatch):
    import fsspec

    mem = fsspec.filesystem("memory")
    root = "/sp_test_copy"
    if mem.exists(root):
        mem.rm(root, recursive=True)
    for f in sorted(Path_(ds.version_dir).iterdir()):
        mem.pipe_file(f"{root}/out/{ds.name}/{ds.version}/{f.name}", f.read_bytes())
    cache = tmp_path / "cache"
    monkeypatch.setenv("SENSORPIPE_CACHE_DIR", str(cache))
    remote = sensorpipe.open(f"memory://{root}/out")
    assert remote.url.startswith("memory://") and remote.channels == ds.channels
    assert not list(cache.rglob("*.array_record-*"))  # shards come on demand
    # streaming fetches one shard at a time
    st = remote["validation"].stream()
    _eq(next(st), ds["validation"][0])
    assert len(list(cache.rglob("*validation.array_record-*"))) == 1
    for s in ds.splits:
        assert len(remote[s]) == len(ds[s])
        for a, b in zip(remote[s], ds[s]):
            _eq(a, b)
    view = remote["train"].select([ds.channels[2]]).filter(max_missing=0.9)
    want = ds["train"].filter(max_missing=0.9)
    assert list(view.indices) == list(want.indices)
    for a, b in zip(view, want):
        np.testing.assert_array_equal(a["input"], b["input"][:, [2]])
    # a second open reuses the cache (no download: remove the remote shards)
    for p in mem.glob(f"{root}/out/*/*/*.array_record-*"):
        mem.rm(p)
    again = sensorpipe.open(f"memory://{root}/out/{ds.name}/{ds.version}")
    _eq(again["train"][0], ds["train"][0])
    mem.rm(root, recursive=True)


def Path_(p):
    from pathlib import Path

    return Path(p)


TEXT_FIELDS = ("key", "dataset", "participant_id", "sources", "caption", "caption_claims", "events")


def test_text_fields_are_str_from_indexing_iteration_views_and_stream(ds):
    tr = ds["train"]
    first = tr[0]
    assert all(type(first[k]) is str for k in TEXT_FIELDS), {k: type(first[k]) for k in TEXT_FIELDS}
    assert first["key"].startswith(f"{first['dataset']}/{first['participant_id']}/")
    assert all(type(ex["dataset"]) is str for ex in tr)
    view = tr.filter(dataset=first["dataset"]).select(channels=[ds.channels[0]])
    assert type(view[0]["caption"]) is str and {ex["dataset"] for ex in view} == {first["dataset"]}
    assert len(tr.filter(dataset=first["dataset"].encode())) == len(tr.filter(dataset=first["dataset"]))
    streamed = next(iter(tr.stream()))
    assert all(type(streamed[k]) is str for k in TEXT_FIELDS)
