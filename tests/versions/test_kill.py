"""kill -9 of a real ``sensorpipe run`` at named points of a fresh run and of a re-run (--overwrite).

The driver SIGKILLs itself when it reaches the stage named by SENSORPIPE_TEST_KILL_AT
(runners.lifecycle.checkpoint). Afterwards the published version must be byte-identical and readable,
``versions`` must say what happened, and the next run must succeed and clean the staging folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import sensorpipe
from sensorpipe.commands import list_versions
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.runners.lifecycle import KILL_AT_ENV

from .conftest import SRC, cli, tiny_config, tree_digest


def _runs(out):
    return MetadataStore(f"sqlite:///{out / 'metadata.db'}").list_runs()


def _killed(config, stage, *args):
    proc = cli("run", str(config), *args, env={KILL_AT_ENV: stage})
    assert proc.returncode == -signal.SIGKILL, (stage, proc.returncode, proc.stderr[-2000:])


@pytest.mark.parametrize("stage", ["pass1", "shards", "record"])
def test_kill_during_a_fresh_run(tiny_sources, tmp_path, stage):
    out = tmp_path / "out"
    config = tiny_config(tiny_sources, out, name=f"{tmp_path.name}.yaml")
    _killed(config, stage)
    assert not (out / "tiny").exists()               # nothing half-published
    with pytest.raises(FileNotFoundError):
        sensorpipe.open(out)
    assert list_versions(str(out)).startswith("no dataset versions published yet")
    (killed,) = _runs(out)                            # `versions` found its process gone
    reached = {"record": "publish", "shards": "write"}.get(stage, stage)
    assert (killed["status"], killed["stage"]) == ("interrupted", reached)
    assert "ended during stage" in killed["error"]
    if stage != "pass1":
        assert (out / ".staging" / killed["run_id"]).exists()
    result = run_pipeline(str(config))
    assert not (out / ".staging").exists()
    assert len(sensorpipe.open(out)["train"]) == result.split_sizes["train"]
    assert [r["status"] for r in _runs(out)] == ["succeeded", "interrupted"]


@pytest.mark.parametrize("stage", ["pass2", "shards", "publish", "record", "swap", "published"])
def test_kill_during_a_rerun_that_replaces_the_version(tiny_sources, tmp_path, stage):
    out = tmp_path / "out"
    first = run_pipeline(str(tiny_config(tiny_sources, out, name=f"{tmp_path.name}-first.yaml")))
    version_dir = out / "tiny" / "1.0.0"
    before = tree_digest(version_dir)
    changed = tiny_config(tiny_sources, out, name=f"{tmp_path.name}.yaml", release_notes=f"killed at {stage}")
    _killed(changed, stage, "--overwrite")
    listed = list_versions(str(out)).splitlines()
    killed = _runs(out)[0]
    if stage in ("published", "swap"):   # killed after the rename (swap: right after the atomic exchange)
        assert killed["status"] == "succeeded" and killed["fingerprint"] != first.fingerprint
        assert killed["fingerprint"] in listed[1] and "published" in listed[1]
        new = tree_digest(version_dir)
        assert new != before and new["dataset_info.json"]
    else:
        assert tree_digest(version_dir) == before    # byte-identical
        assert (killed["status"], killed["stage"]) == ("interrupted", {"record": "publish",
                                                                       "shards": "write"}.get(stage, stage))
        assert len(listed) == 2 and first.fingerprint in listed[1] and "published" in listed[1]
    ds = sensorpipe.open(out)
    assert len(ds["train"]) == first.split_sizes["train"] and ds["train"][0]["input"].shape[0] == 360
    import tensorflow_datasets as tfds

    assert len(tfds.builder_from_directory(str(version_dir)).as_data_source("train")) == first.split_sizes["train"]
    again = run_pipeline(str(changed), overwrite=True)
    assert not (out / ".staging").exists()
    if stage in ("published", "swap"):
        assert again.unchanged
    else:
        assert again.replaced == first.fingerprint
    assert sensorpipe.open(out).config["output"]["release_notes"] == f"killed at {stage}"


def test_the_lock_of_a_killed_multiprocess_driver_is_not_kept_by_its_workers(tiny_sources, tmp_path):
    """Forked workers close the driver's lock descriptor, so a driver killed mid-run frees its folder at once
    (whether orphaned workers exit by themselves is the runners' business; they are cleaned up here)."""
    import uuid

    import psutil

    out = tmp_path / "out"
    config = tiny_config(tiny_sources, out, name=f"{tmp_path.name}.yaml")
    token = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(SRC), KILL_AT_ENV: "pass2", "SENSORPIPE_TEST_TOKEN": token}
    log = tmp_path / "killed.log"
    with log.open("w") as f:    # a file, not a pipe: orphaned workers would keep a pipe open
        proc = subprocess.Popen([sys.executable, "-m", "sensorpipe.cli", "run", str(config), "--runner",
                                 "multiprocess", "--workers", "2"], env=env, stdout=f, stderr=subprocess.STDOUT)
        assert proc.wait(timeout=180) == -signal.SIGKILL, log.read_text()[-2000:]

    def ours(p):
        try:
            return p.environ().get("SENSORPIPE_TEST_TOKEN") == token
        except (psutil.Error, OSError):
            return False

    orphans = [p for p in psutil.process_iter() if ours(p)]
    try:
        again = cli("run", str(config))
        assert again.returncode == 0, again.stderr[-2000:]
        assert "took over the stale lock" in again.stderr
        assert [r["status"] for r in _runs(out)] == ["succeeded", "interrupted"]
    finally:
        for p in orphans:
            try:
                p.kill()
            except psutil.Error:
                pass
