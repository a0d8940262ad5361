"""The run's write stage: the shards are hashed for the manifest while TFDS's metadata is written."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import sensorpipe.runners.driver as driver
from sensorpipe.storage.manifest import SHARD_RE

from .tiny_cohort import config, write_cohort, write_yaml


def test_shards_are_hashed_while_the_tfds_metadata_is_written(tmp_path, monkeypatch):
    events: list[str] = []
    real_digests, real_version = driver.shard_digests, driver.write_version

    def digests(version_dir):
        events.append(f"hash start in {threading.current_thread().name}")
        return real_digests(version_dir)

    def version(*args):
        events.append("metadata start")
        time.sleep(0.3)          # the hashing, in its thread, starts meanwhile
        real_version(*args)
        events.append("metadata end")

    monkeypatch.setattr(driver, "shard_digests", digests)
    monkeypatch.setattr(driver, "write_version", version)
    write_cohort(tmp_path / "data", ("p1", "p2"))
    result = driver.run_pipeline(write_yaml(tmp_path / "p.yaml", config(tmp_path, tmp_path / "data",
                                                                        runner={"name": "local"})))
    starts = [e for e in events if e.startswith("hash start")]
    assert len(starts) == 1 and "sensorpipe-hash" in starts[0]
    assert events.index(starts[0]) < events.index("metadata end"), events
    files = json.loads((Path(result.version_dir) / "sensorpipe.json").read_text())["manifest"]["files"]
    assert any(SHARD_RE.match(n) and "edge_sha256" in e for n, e in files.items())
