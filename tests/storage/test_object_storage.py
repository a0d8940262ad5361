"""Object storage end to end (issue 16 item 3): inputs read from and output written to a real S3 endpoint.

The endpoint is moto's server on 127.0.0.1 (``moto[server]``), reached by s3fs
with fake credentials, so the bytes go through the S3 protocol (PUT, ranged
GET, LIST) as they would on AWS. The same config run locally is the
reference: shards byte-identical, and ``sensorpipe.open("s3://...")`` and TFDS
(through :func:`sensorpipe.access.dataset.local_version`) read the same arrays.
memory:// and file:// take the same code paths without a server.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pytest

import sensorpipe
from sensorpipe.access.dataset import local_version
from sensorpipe.config import ConfigError, load_config
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.storage.remote import RemoteVersionConflict
from sensorpipe.urls import StorageError, local_path, protocol
from tests.runners.tiny_cohort import config, shard_bytes, write_cohort

BUCKET = "sensorpipe-test"
ZONES = {"p1": "Europe/Berlin", "p2": "America/New_York", "p3": "Asia/Tokyo"}


def _inputs(root: Path) -> tuple[Path, Path]:
    write_cohort(root / "data")
    table = root / "participants.csv"
    table.write_text("participant_id,tz\n" + "".join(f"{p},{tz}\n" for p, tz in ZONES.items()))
    return root / "data", table


def _config(root: Path, data: str, table: str, out: str) -> dict:
    """The tiny cohort with its time zones from a participants table."""
    cfg = config(root, Path("unused"))
    cfg["sources"][0].update(path=data, participants=table)
    del cfg["sources"][0]["options"]["tz"]
    cfg["output"]["dir"] = out
    return cfg


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free port of 127.0.0.1, with fake credentials; s3fs pointed at it."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_CONFIG_FILE": "/nonexistent"}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    mp.delenv("AWS_PROFILE", raising=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    mp.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": endpoint}})
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    if not s3fs.S3FileSystem().exists(BUCKET):   # moto's store is per process: another module's server made it
        s3fs.S3FileSystem().mkdir(BUCKET)
    yield endpoint
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()
    mp.undo()


def _same_arrays(a, b) -> None:
    assert set(a.splits) == set(b.splits)
    for s in a.splits:
        assert len(a[s]) == len(b[s])
        for x, y in zip(a[s], b[s]):
            np.testing.assert_array_equal(x["input"], y["input"])
            np.testing.assert_array_equal(x["mask"], y["mask"])
            assert x["key"] == y["key"]


def test_s3_input_and_output_match_a_local_run(s3_endpoint, tmp_path, monkeypatch, caplog):
    import s3fs

    monkeypatch.setenv("SENSORPIPE_CACHE_DIR", str(tmp_path / "cache"))
    data, table = _inputs(tmp_path)
    fs = s3fs.S3FileSystem()
    fs.put(f"{data}/", f"{BUCKET}/in/", recursive=True)
    fs.put_file(str(table), f"{BUCKET}/meta/participants.csv")
    local = run_pipeline(_config(tmp_path, str(data), str(table), str(tmp_path / "local")))

    url = f"s3://{BUCKET}/out"
    cfg = _config(tmp_path, f"s3://{BUCKET}/in", f"s3://{BUCKET}/meta/participants.csv", url)
    with caplog.at_level(logging.WARNING, logger="sensorpipe.storage.remote"):
        remote = run_pipeline(cfg)
    work = tmp_path / "cache" / "outputs"
    assert remote.version_dir == f"{url}/tiny/1.0.0" and remote.output_dir == url
    assert remote.fingerprint == local.fingerprint          # paths are not part of the dataset
    assert remote.metadata_url.startswith(f"sqlite:///{work}/") and "is remote" in caplog.text
    assert not Path("s3:").exists() and not (tmp_path / "s3:").exists()
    listed = {p.rsplit("/", 1)[-1] for p in fs.find(f"{BUCKET}/out/tiny/1.0.0")}
    assert listed == {p.name for p in Path(local.version_dir).iterdir()}
    assert fs.exists(f"{BUCKET}/out/quarantine/tiny.parquet") and fs.exists(f"{BUCKET}/out/report.html")

    # shards byte-identical to the local run's, as downloaded by TFDS's supported path
    copy = local_version(url)
    assert shard_bytes(str(copy)) == shard_bytes(local.version_dir)
    _same_arrays(sensorpipe.open(url), sensorpipe.open(local.version_dir))
    import tensorflow_datasets as tfds

    src = tfds.builder_from_directory(str(copy)).as_data_source("train")
    ref = sensorpipe.open(local.version_dir)["train"]
    assert len(src) == len(ref) > 0
    for i in range(len(src)):
        np.testing.assert_array_equal(src[i]["input"], ref[i]["input"])

    # a re-run changes nothing; a lost upload (no dataset_info.json) is completed by the next run
    fs.rm_file(f"{BUCKET}/out/tiny/1.0.0/dataset_info.json")
    with pytest.raises(FileNotFoundError):
        sensorpipe.open(url, cache_dir=tmp_path / "c2")   # half a version is no version
    again = run_pipeline(cfg)
    assert again.unchanged and fs.exists(f"{BUCKET}/out/tiny/1.0.0/dataset_info.json")

    # the remote label holding another dataset is refused
    fs.pipe_file(f"{BUCKET}/out/tiny/1.0.0/sensorpipe.json", b'{"fingerprint": "other"}')
    with pytest.raises(RemoteVersionConflict, match="already holds another dataset"):
        run_pipeline(cfg)
    fs.pipe_file(f"{BUCKET}/out/tiny/1.0.0/tiny-train.array_record-00099-of-00100", b"stale")
    run_pipeline(cfg, overwrite=True)      # the old version's files go, the new one is uploaded whole
    assert {p.rsplit("/", 1)[-1] for p in fs.find(f"{BUCKET}/out/tiny/1.0.0")} == listed
    assert b'"fingerprint": "other"' not in fs.cat_file(f"{BUCKET}/out/tiny/1.0.0/sensorpipe.json")


def test_missing_credentials_is_one_line(s3_endpoint, tmp_path, monkeypatch):
    import s3fs

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k)
    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("SENSORPIPE_CACHE_DIR", str(tmp_path / "cache"))
    data, table = _inputs(tmp_path)
    cfg = _config(tmp_path, f"s3://{BUCKET}/in", str(table), str(tmp_path / "out"))
    with pytest.raises(StorageError, match=f"s3://{BUCKET}/in: access denied or no credentials .*AWS_ACCESS_KEY_ID"):
        run_pipeline(cfg)
    out = _config(tmp_path, str(data), str(table), f"s3://{BUCKET}/out2")
    with pytest.raises(StorageError, match=f"s3://{BUCKET}/out2: access denied or no credentials"):
        run_pipeline(out)           # before any work
    assert not (tmp_path / "cache" / "outputs").exists()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(StorageError, match="s3://no-such-bucket/out: bucket 'no-such-bucket' does not exist"):
        run_pipeline(_config(tmp_path, str(data), str(table), "s3://no-such-bucket/out"))
    s3fs.S3FileSystem.clear_instance_cache()


def test_memory_output_and_input(tmp_path, monkeypatch):
    monkeypatch.setenv("SENSORPIPE_CACHE_DIR", str(tmp_path / "cache"))
    data, table = _inputs(tmp_path)
    mem = fsspec.filesystem("memory")
    root = f"/{tmp_path.name}"
    for p in sorted(data.iterdir()):
        mem.pipe_file(f"{root}/in/{p.name}", p.read_bytes())
    mem.pipe_file(f"{root}/participants.csv", table.read_bytes())
    local = run_pipeline(_config(tmp_path, str(data), str(table), str(tmp_path / "local")))
    monkeypatch.chdir(tmp_path)
    remote = run_pipeline(_config(tmp_path, f"memory://{root}/in", f"memory://{root}/participants.csv",
                                  f"memory://{root}/out"))
    assert not (tmp_path / "memory:").exists()           # no local folder named after the protocol
    assert mem.exists(f"{root}/out/tiny/1.0.0/dataset_info.json")
    assert remote.fingerprint == local.fingerprint
    assert shard_bytes(str(local_version(f"memory://{root}/out"))) == shard_bytes(local.version_dir)
    mem.rm(root, recursive=True)


def test_file_urls_are_local_paths(tmp_path):
    data, table = _inputs(tmp_path)
    local = run_pipeline(_config(tmp_path, str(data), str(table), str(tmp_path / "local")))
    urls = run_pipeline(_config(tmp_path, data.as_uri(), table.as_uri(), (tmp_path / "viaurl").as_uri()))
    assert urls.version_dir == str(tmp_path / "viaurl" / "tiny" / "1.0.0")
    assert shard_bytes(urls.version_dir) == shard_bytes(local.version_dir)
    assert local_path("file:///a/b%20c") == "/a/b c" and local_path("rel/x") == "rel/x"


def test_unknown_protocol_and_metadata_url_are_one_line_errors(tmp_path):
    data, table = _inputs(tmp_path)
    with pytest.raises(StorageError, match=r"^nosuch://b/out: unknown storage protocol 'nosuch://'; use a local "):
        run_pipeline(_config(tmp_path, str(data), str(table), "nosuch://b/out"))
    with pytest.raises(StorageError, match=r"^nosuch://b/in: unknown storage protocol"):
        run_pipeline(_config(tmp_path, "nosuch://b/in", str(table), str(tmp_path / "out")))
    cfg = _config(tmp_path, str(data), str(table), str(tmp_path / "out"))
    cfg["metadata"] = {"url": "s3://b/metadata.db"}
    with pytest.raises(ConfigError, match=r"metadata.url: 's3://b/metadata.db' is a file URL, not a SQLAlchemy"):
        load_config(cfg)
    assert protocol("s3://b/x") == "s3" and protocol("/a/b") == "" and protocol("C:\\x") == ""


def test_cli_prints_the_storage_error_on_one_line(tmp_path, capsys):
    from sensorpipe import cli
    from tests.runners.tiny_cohort import write_yaml

    data, table = _inputs(tmp_path)
    path = write_yaml(tmp_path / "p.yaml", _config(tmp_path, str(data), str(table), "nosuch://b/out"))
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sensorpipe run: error: nosuch://b/out: unknown storage protocol") and err.count("\n") == 1
