"""The beam runner with inputs and output on S3: the workers read both, the launcher reads neither (issue 16).

DirectRunner's ``multi_processing`` mode (two worker processes) against moto's
S3 server, as a cluster sees it: the workers get the endpoint and credentials
from the environment (``FSSPEC_S3``, ``AWS_*``), the work area is
``s3://.../out/.work``, and each worker caches inputs and work-area entries in
its own folder (``$SENSORPIPE_WORKER_DIR``). The cohort has a shared
multi-participant file (partitioned on a worker) and a second source for the
same people. The same config run locally is the reference: shards,
``dataset_info.json``, ``features.json`` and the normalization are byte-identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sensorpipe.runners.driver import run_pipeline
from tests.runners.tiny_cohort import MINUTES, write_cohort
from tests.storage.test_object_storage import BUCKET, s3_endpoint  # noqa: F401 - the fixture

pytestmark = pytest.mark.beam

COMPARED = (".array_record-", ".tfrecord-", "dataset_info.json", "features.json", "normalization.json")


def _write_inputs(root: Path) -> None:
    """``shared/all.csv`` (heart rate of p1-p3, one file) and ``own/<pid>.csv`` (steps of p1 and p2)."""
    write_cohort(root / "shared", shared=True)
    (root / "own").mkdir(parents=True)
    for n, pid in enumerate(("p1", "p2")):
        body = "".join(f"{m}:00Z,steps,{(i * 3 + n) % 40}\n" for i, m in enumerate(MINUTES))
        (root / "own" / f"{pid}.csv").write_text("t,signal,value\n" + body)


def _config(data: str, out: str, runner: dict) -> dict:
    spec = {"glob": "*.csv", "field_column": "signal", "time_column": "t", "time_format": "iso",
            "value_column": "value"}
    return {
        "sources": [
            {"name": "watch", "adapter": "long_table", "study": "cohort", "path": f"{data}/shared",
             "options": {"tz": "Europe/Berlin", "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}},
                         "files": [dict(spec, participant_column="participant")]}},
            {"name": "tracker", "adapter": "long_table", "study": "cohort", "path": f"{data}/own",
             "options": {"tz": "Europe/Berlin", "fields": {"steps": {"channel": "steps", "unit": "steps/min"}},
                         "files": [spec]}}],
        "channels": ["heart_rate", "steps"], "window": {"size_min": 720, "stride_min": 720, "alignment": "none"},
        "output": {"dir": out, "name": "tiny", "target_shard_mb": 0.05},
        "privacy": {"pseudonymize": False}, "splits": {"train": 1.0, "validation": 0.0, "test": 0.0},
        "runner": runner}


def test_beam_workers_read_s3_inputs_and_work_area_byte_identical_to_local(s3_endpoint, tmp_path,  # noqa: F811
                                                                           monkeypatch):
    import s3fs

    monkeypatch.setenv("FSSPEC_S3", json.dumps({"client_kwargs": {"endpoint_url": s3_endpoint}}))  # workers' too
    monkeypatch.setenv("SENSORPIPE_CACHE_DIR", str(tmp_path / "launcher"))
    monkeypatch.setenv("SENSORPIPE_WORKER_DIR", str(tmp_path / "workers"))
    _write_inputs(tmp_path / "data")
    fs = s3fs.S3FileSystem()
    fs.put(f"{tmp_path / 'data'}/", f"{BUCKET}/beam-in/", recursive=True)
    local = run_pipeline(_config(str(tmp_path / "data"), str(tmp_path / "local"), {"name": "local"}))

    opened: list[str] = []      # every object this (the launcher's) process opens, gets or reads
    for name in ("_open", "_get_file", "_cat_file"):   # the sync methods wrap these per instance
        real = getattr(s3fs.S3FileSystem, name)
        monkeypatch.setattr(s3fs.S3FileSystem, name, lambda self, path, *a, _real=real, **k:
                            opened.append(path) or _real(self, path, *a, **k))
    s3fs.S3FileSystem.clear_instance_cache()
    url = f"s3://{BUCKET}/beam-out"
    beam_runner = {"name": "beam", "beam_options": {"direct_running_mode": "multi_processing",
                                                    "direct_num_workers": 2}}
    cfg = _config(f"s3://{BUCKET}/beam-in", url, beam_runner)
    remote = run_pipeline(cfg)

    assert remote.runner == "beam (DirectRunner, multi_processing, 2 worker(s))"
    assert remote.fingerprint == local.fingerprint and remote.split_sizes == local.split_sizes
    assert remote.rows_in == local.rows_in and remote.quarantine_by_reason == local.quarantine_by_reason
    ours = {p.rsplit("/", 1)[-1]: fs.cat_file(p) for p in fs.find(f"{BUCKET}/beam-out/tiny/1.0.0")}
    theirs = {p.name: p.read_bytes() for p in Path(local.version_dir).iterdir()}
    compared = sorted(n for n in theirs if any(c in n for c in COMPARED))
    assert sum(".array_record-" in n for n in compared) >= 2 and "normalization.json" in compared
    assert {n: ours.get(n) for n in compared} == {n: theirs[n] for n in compared}
    assert {p.rsplit("/", 1)[-1] for p in fs.find(f"{BUCKET}/beam-out/quarantine")} == {"watch.parquet",
                                                                                      "tracker.parquet"}

    # the launcher opened no input, cached none, and holds no work area; the workers kept it on S3
    assert not [p for p in opened if "/beam-in/" in p] and [p for p in opened if "/.work/" in p]
    assert not (tmp_path / "launcher" / "inputs").exists()
    launcher_dirs = [p for p in (tmp_path / "launcher").rglob("*") if p.is_dir()]
    assert not [p for p in launcher_dirs if p.name == ".work"]
    work = {p.split("/.work/", 1)[1].split("/", 1)[0] for p in fs.find(f"{BUCKET}/beam-out/.work")}
    assert work == {"units", "records", "partitions", "manifests"}
    assert len(fs.glob(f"{BUCKET}/beam-out/.work/units/*.json")) == len(local.units) == 3
    assert len(fs.glob(f"{BUCKET}/beam-out/.work/partitions/watch/*/index.json")) == 1
    assert (tmp_path / "workers" / "inputs").is_dir()      # the workers' own caches

    # a re-run from a fresh launcher and fresh workers (no local files at all) reuses every unit and spill;
    # in_memory (the workers in this process, so its reads are theirs too): --beam-option reaches the inner run
    import shutil

    shutil.rmtree(tmp_path / "workers")
    shutil.rmtree(tmp_path / "launcher")
    fs.rm(f"{BUCKET}/beam-out/tiny/1.0.0/dataset_info.json")      # a lost upload: the version is written again
    again = run_pipeline(cfg, beam_options=["--direct_running_mode=in_memory"])
    assert again.runner == "beam (DirectRunner, in_memory, 2 worker(s))"
    assert again.units_cached == {"pass1": 3, "pass2": 3} and not again.unchanged
    assert fs.cat_file(f"{BUCKET}/beam-out/tiny/1.0.0/dataset_info.json") == theirs["dataset_info.json"]
    grids = [p for p in opened if p.endswith(".arrays") and not p.endswith(".sketch.arrays")]
    assert not grids and [p for p in opened if p.endswith(".sketch.arrays")]   # pass 2 read no grid back
