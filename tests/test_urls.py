"""sensorpipe.urls: URL or local path, and remote folders copied by fsspec's filecache with their names kept."""

from __future__ import annotations

import fsspec
import pytest

from sensorpipe.urls import StorageError, fetch, is_remote, local_path, protocol, url_key


def test_local_paths_are_not_urls():
    assert [protocol(p) for p in ("data/x.csv", "/abs/x", "C:\\x", "s3://b/k", "file:///a", "memory://m")] == \
        ["", "", "", "s3", "file", "memory"]
    assert not is_remote("/abs") and not is_remote("file:///abs") and is_remote("gs://b/x")
    assert local_path("file:///a/b%20c") == "/a/b c" and local_path("file://localhost/a") == "/a"
    with pytest.raises(StorageError, match="file://other/a: a file:// URL names a local path"):
        local_path("file://other/a")
    assert url_key("s3://bucket/out/") != url_key("s3://bucket2/out/") and url_key("s3://b/out").startswith("s3-out-")


def test_fetch_keeps_the_tree_refreshes_changes_and_drops_removed_files(tmp_path):
    mem = fsspec.filesystem("memory")
    root = f"/{tmp_path.name}/export"
    mem.pipe_file(f"{root}/p1/heart.csv", b"t,v\n1,60\n")
    mem.pipe_file(f"{root}/p2/heart.csv", b"t,v\n1,70\n")
    mem.pipe_file(f"{root}/notes.txt", b"x")
    local = fetch(f"memory://{root}", cache_dir=tmp_path / "c")
    assert local.name == "export"
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == \
        ["notes.txt", "p1/heart.csv", "p2/heart.csv"]           # fsspec's own 'cache' file is outside the copy
    assert (local / "p2/heart.csv").read_bytes() == b"t,v\n1,70\n"
    mem.pipe_file(f"{root}/p2/heart.csv", b"t,v\n1,71\n2,72\n")
    mem.rm(f"{root}/notes.txt")
    again = fetch(f"memory://{root}", cache_dir=tmp_path / "c")
    assert again == local and (local / "p2/heart.csv").read_bytes() == b"t,v\n1,71\n2,72\n"
    assert not (local / "notes.txt").exists()
    one = fetch(f"memory://{root}/p1/heart.csv", cache_dir=tmp_path / "c")
    assert one.name == "heart.csv" and one.read_bytes() == b"t,v\n1,60\n"
    with pytest.raises(FileNotFoundError, match=f"memory://{root}/nope does not exist"):
        fetch(f"memory://{root}/nope", cache_dir=tmp_path / "c")
    mem.rm(f"/{tmp_path.name}", recursive=True)
