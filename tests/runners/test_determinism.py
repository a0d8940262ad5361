"""Same inputs and config -> byte-identical shards, on every re-run and on every runner."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sensorpipe.runners.driver import run_pipeline
from tests.conftest import write_config


def _shard_digests(version_dir: str) -> dict[str, str]:
    out = {}
    for p in sorted(Path(version_dir).iterdir()):
        if ".array_record-" in p.name or ".tfrecord-" in p.name:
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_rerun_and_multiprocess_give_identical_shards(local_run, sources_dir, base_config, tmp_path):
    reference = _shard_digests(local_run.version_dir)
    assert len(reference) >= 4 and any(".tfrecord-" in n for n in reference)
    again = dict(base_config, output=dict(base_config["output"], dir=str(tmp_path / "again")))
    r_again = run_pipeline(str(write_config(sources_dir, again, "again.yaml")), runner="local")
    assert _shard_digests(r_again.version_dir) == reference and r_again.fingerprint == local_run.fingerprint
    norm = (Path(local_run.version_dir) / "normalization.json").read_bytes()
    # workers forked from this process, or from a clean forkserver; tuning fast re-forks and retains heap memory
    for start, tuning in (("fork", "none"), ("forkserver", "none"), ("fork", "fast")):
        multi = dict(base_config, output=dict(base_config["output"], dir=str(tmp_path / f"multi-{start}-{tuning}")),
                     runner={"name": "multiprocess", "workers": 2, "start_method": start, "tuning": tuning})
        r_multi = run_pipeline(str(write_config(sources_dir, multi, f"multi-{start}-{tuning}.yaml")))
        assert start in r_multi.runner
        assert _shard_digests(r_multi.version_dir) == reference
        assert r_multi.fingerprint == local_run.fingerprint
        assert (Path(r_multi.version_dir) / "normalization.json").read_bytes() == norm
