"""The beam runner writes the local runner's dataset byte for byte (issue 16's first Done-when).

One demo run each side on DirectRunner's ``multi_processing`` mode (two worker
processes); the further checks run on ``in_memory`` over the shared test cohort.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from sensorpipe.config import ConfigError
from sensorpipe.demo.synthetic import generate_demo_sources
from sensorpipe.runners.beam_options import beam_flags, parse_cli_options
from sensorpipe.runners.driver import run_pipeline
from tests.conftest import write_config

pytestmark = pytest.mark.beam

COMPARED = (".array_record-", ".tfrecord-", "dataset_info.json", "features.json", "normalization.json")


def _digests(version_dir: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(version_dir).iterdir())
            if any(c in p.name for c in COMPARED)}


def test_demo_on_direct_runner_two_workers_is_byte_identical_to_local(tmp_path):
    config = generate_demo_sources(tmp_path / "demo", seed=0, scale=0.2)
    cfg = yaml.safe_load(config.read_text())
    cfg["output"]["target_shard_mb"] = 0.25      # several shards per split: the plan's cut is compared too
    runs = {}
    for name, runner in (("local", {"name": "local"}),
                         ("beam", {"name": "beam", "beam_options": {"direct_running_mode": "multi_processing",
                                                                    "direct_num_workers": 2}})):
        runs[name] = run_pipeline(str(write_config(config.parent, dict(cfg, runner=runner, output=dict(
            cfg["output"], dir=str(tmp_path / f"out-{name}"))), f"{name}.yaml")))
    local, beam = runs["local"], runs["beam"]
    reference = _digests(local.version_dir)
    assert sum(".array_record-" in n for n in reference) >= 4 and sum(".tfrecord-" in n for n in reference) >= 4
    assert {"dataset_info.json", "features.json", "normalization.json"} <= set(reference)
    assert _digests(beam.version_dir) == reference
    assert beam.fingerprint == local.fingerprint and beam.split_sizes == local.split_sizes
    assert beam.runner == "beam (DirectRunner, multi_processing, 2 worker(s))"
    # Beam's counters say what the run summary says
    m = beam.runner_metrics
    assert m["units_prepared"] == m["units_encoded"] == len(local.units)
    assert m["windows_kept"] == local.windows_kept == sum(local.split_sizes.values())
    assert {k[len("windows_dropped:"):]: v for k, v in m.items() if k.startswith("windows_dropped:")} \
        == local.windows_dropped
    assert {k[len("quarantined:"):]: v for k, v in m.items() if k.startswith("quarantined:")} \
        == {k: v for k, v in local.quarantine_by_reason.items() if v}
    # quarantine per source, as the local runner writes it
    for q in sorted((tmp_path / "out-local" / "quarantine").glob("*.parquet")):
        assert (tmp_path / "out-beam" / "quarantine" / q.name).read_bytes() == q.read_bytes()


def test_cli_beam_option_in_memory_matches_local_run(local_run, sources_dir, base_config, tmp_path, capsys):
    from sensorpipe.cli import main

    cfg = dict(base_config, output=dict(base_config["output"], dir=str(tmp_path / "out")),
               runner={"name": "local", "beam_options": ["--direct_running_mode=multi_processing"]})
    path = write_config(sources_dir, cfg, f"beam-{tmp_path.name}.yaml")
    main(["run", str(path), "--runner", "beam", "--beam-option", "direct_running_mode=in_memory"])
    out = capsys.readouterr().out
    assert "on beam (DirectRunner, in_memory, 1 worker(s))" in out   # the CLI's option wins
    assert f"windows_kept {local_run.windows_kept}" in out
    version = tmp_path / "out" / base_config["output"]["name"] / base_config["output"]["version"]
    assert _digests(str(version)) == _digests(local_run.version_dir)
    sidecar = json.loads((version / "sensorpipe.json").read_text())
    assert sidecar["config"]["runner"]["beam_options"] == [
        "--direct_running_mode=multi_processing", "--direct_running_mode=in_memory"]


def test_beam_options_list_mapping_and_cli_pairs():
    assert beam_flags(["runner=DataflowRunner", "--project=p"]) == ["--runner=DataflowRunner", "--project=p"]
    assert beam_flags({"runner": "FlinkRunner", "flink_master": "localhost:8081", "save_main_session": True,
                       "streaming": False}) == ["--runner=FlinkRunner", "--flink_master=localhost:8081",
                                                 "--save_main_session"]
    assert parse_cli_options(["direct_num_workers=2", "--temp_location=/tmp/x=y"]) == [
        "--direct_num_workers=2", "--temp_location=/tmp/x=y"]
    with pytest.raises(ConfigError, match=r"--beam-option 'direct_num_workers': expected KEY=VALUE"):
        parse_cli_options(["direct_num_workers"])


def test_a_unit_error_reaches_the_user_as_on_the_local_runner(tmp_path):
    from sensorpipe.config import load_config
    from sensorpipe.sources.base import SourceError
    from tests.runners.test_unit_errors import BROKEN
    from tests.runners.tiny_cohort import config, write_cohort

    write_cohort(tmp_path / "d")
    (tmp_path / "d" / "p2.csv").write_bytes(BROKEN)
    cfg = config(tmp_path, tmp_path / "d", runner={"name": "beam", "beam_options": {"direct_running_mode": "in_memory"}})
    with pytest.raises(SourceError, match=r"p2\.csv: cannot read as CSV"):
        run_pipeline(load_config(cfg))
    # under skip the unit is left out alike: the same failures, the same shards
    runs = [run_pipeline(load_config(config(tmp_path, tmp_path / "d", out=name, run={"on_unit_error": "skip"},
                                            runner=runner)))
            for name, runner in (("local", {"name": "local"}),
                                 ("beam", {"name": "beam", "beam_options": ["direct_running_mode=in_memory"]}))]
    assert runs[1].units_skipped == runs[0].units_skipped and len(runs[0].units_skipped) == 1
    assert runs[1].runner_metrics["units_failed:prepare"] == 1
    assert _digests(runs[1].version_dir) == _digests(runs[0].version_dir)


def test_a_shard_item_carries_only_its_own_spills_and_writes_the_same_bytes(tmp_path):
    from sensorpipe.runners.beam import shard_only
    from sensorpipe.storage.writer import RecordSpill, plan_split, write_shard

    spills = [RecordSpill.write(str(tmp_path / f"u{i}"), [bytes([i]) * (40 + 7 * j) for j in range(n)])
              for i, n in enumerate((3, 0, 5, 1, 4))]
    plan = plan_split("train", spills, target_bytes=120)
    assert len(plan.shards) >= 4
    counts = [int(s.lengths().size) for s in spills]
    (tmp_path / "full").mkdir()
    (tmp_path / "cut").mkdir()
    for shard in plan.shards:
        write_shard(tmp_path / "full", "t", "tfrecord", "", plan, shard)
        small, rebased = shard_only(plan, shard, counts)
        assert len(small.spills) < len(spills) and rebased.stop - rebased.start == shard.stop - shard.start
        write_shard(tmp_path / "cut", "t", "tfrecord", "", small, rebased)
    full = sorted((tmp_path / "full").iterdir())
    assert [p.name for p in full] == [p.name for p in sorted((tmp_path / "cut").iterdir())]
    assert all(p.read_bytes() == (tmp_path / "cut" / p.name).read_bytes() for p in full)


def test_an_unknown_beam_runner_is_a_config_error_before_any_work():
    from sensorpipe.runners.beam import BeamRunner

    with pytest.raises(ConfigError, match=r"--beam-option runner=NoSuchRunner: Unexpected pipeline runner"):
        BeamRunner(["--runner=NoSuchRunner"], "/nonexistent")
