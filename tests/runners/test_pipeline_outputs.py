"""What a run writes: TFDS-loadable shards, splits, normalization, metadata, privacy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import tensorflow_datasets as tfds

import sensorpipe
from sensorpipe.config import load_config
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.privacy.paths import SourcePaths
from sensorpipe.privacy.pseudonym import load_key
from sensorpipe.runners.driver import run_pipeline
from tests.conftest import KEY, write_config


def test_tfds_data_source_equals_sensorpipe_open(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    builder = tfds.builder_from_directory(local_run.version_dir)
    assert builder.info.version == "1.0.0"
    for split, n in local_run.split_sizes.items():
        if not n:
            continue
        src = tfds.builder_from_directory(local_run.version_dir).as_data_source(split)
        assert len(src) == len(ds[split]) == n
        for i in range(n):
            a, b = src[i], ds[split][i]
            np.testing.assert_array_equal(a["input"], b["input"])
            np.testing.assert_array_equal(a["mask"], b["mask"])
            assert a["key"].decode() == b["key"] and a["caption"].decode() == b["caption"]   # TFDS: bytes; open(): str
            assert a["labels"]["condition"] == b["labels"]["condition"]


def test_shards_are_cut_at_the_target_size(local_run):
    info = json.loads((Path(local_run.version_dir) / "dataset_info.json").read_text())
    target = 0.5 * 1024 * 1024
    for split in info["splits"]:
        n_bytes = int(split["numBytes"])
        assert len(split["shardLengths"]) == max(1, math.ceil(n_bytes / target))
        files = sorted(Path(local_run.version_dir).glob(f"*-{split['name']}.tfrecord-*"))
        assert len(files) == len(split["shardLengths"])
        if len(files) > 1:  # each tfrecord shard is within one record of the target
            record = n_bytes / sum(int(x) for x in split["shardLengths"])
            assert all(abs(f.stat().st_size - n_bytes / len(files)) < 2 * record for f in files)


def test_no_participant_in_two_splits(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    members = {s: {ex["participant_id"] for ex in ds[s]} for s in ds.splits}
    names = list(members)
    assert len(names) >= 2
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not members[a] & members[b]
    units = pd.DataFrame([u.__dict__ for u in local_run.units])
    assert (units.groupby("participant").split.nunique() == 1).all()


def test_normalization_depends_on_train_split_only(local_run, copied_sources, base_config):
    units = [u for u in local_run.units if u.study == "fitbit_cohort"]
    val = next(u for u in units if u.split != "train")
    pid = val.key.split("/", 1)[1]
    path = copied_sources / "fitbit_cohort" / "minute" / f"{pid}.parquet"
    t = pq.read_table(path).to_pandas()
    t.loc[t.metric == "heart_rate", "value"] += 25.0   # a very different held-out participant
    t.to_parquet(path, index=False)
    changed = run_pipeline(str(write_config(copied_sources, base_config)))
    before = json.loads((Path(local_run.version_dir) / "normalization.json").read_text())
    after = json.loads((Path(changed.version_dir) / "normalization.json").read_text())
    assert before == after
    assert changed.fingerprint != local_run.fingerprint  # inputs changed -> new version
    hr = before["channels"].index("heart_rate")
    assert 40 < before["mean"][hr] < 100 and before["std"][hr] > 1


def test_normalized_values_are_not_clipped_by_default(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    assert ds.norm.clip_sigma is None and set(ds.norm.clip_low) == set(ds.norm.clip_high) == {None}
    assert all(not counts for counts in local_run.clipped_cells.values())


def test_metadata_records_version_stats_quality_and_lineage(local_run, sources_dir):
    store = MetadataStore(local_run.metadata_url)
    (version,) = [v for v in store.list_versions() if v["fingerprint"] == local_run.fingerprint]
    assert version["split_sizes"] == local_run.split_sizes
    norm = store.normalization(local_run.fingerprint)
    assert norm["heart_rate"]["method"] == "zscore" and norm["sleep_stage"]["method"] == "none"
    q = {(m["scope"], m["name"]): m["value"] for m in store.quality(local_run.fingerprint)}
    assert q[("dataset", "windows_kept")] == local_run.windows_kept
    assert q[("dataset", "rows_in")] == local_run.rows_in
    assert 0 <= q[("channel:glucose", "grid_missing_ratio")] < 1
    assert ("fitbit_cohort", "out_of_range_rate") in q
    stats = store.channel_stats(local_run.fingerprint, split="train")
    hr = next(s for s in stats if s["channel"] == "heart_rate")
    assert hr["count"] > 0 and 30 < hr["mean"] < 120
    ex = sensorpipe.open(local_run.output_dir)["train"][0]
    lin = store.lineage(ex["key"])
    assert lin is not None and lin["source_files"]
    # files are keyed tokens (privacy/paths.py), which the run's config and key resolve to its input files
    assert not any("/" in f for f in lin["source_files"])
    cfg = load_config(str(sources_dir / "pipeline.yaml"))
    found = SourcePaths.of(cfg, load_key(cfg)).resolve(lin["source_files"])
    assert sorted(found) == sorted(lin["source_files"]) and all(Path(f).exists() for f in found.values())
    for rows in lin["row_ranges"].values():
        assert rows[0] <= rows[1]


def test_ids_are_pseudonymized_and_the_key_never_lands_in_output(local_run, sources_dir):
    raw_ids = set(pd.read_csv(sources_dir / "fitbit_cohort" / "participants.csv").participant_id)
    ds = sensorpipe.open(local_run.output_dir)
    seen = {ex["participant_id"] for s in ds.splits for ex in ds[s]}
    assert seen and not seen & raw_ids and all(len(p) == 16 for p in seen)
    for p in Path(local_run.output_dir).rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p


def test_report_shows_reconciliation_and_stats(local_run):
    html = Path(local_run.report).read_text()
    assert "Rows: in = accepted + quarantined" in html and ">yes<" in html and ">NO<" not in html
    assert "exact_duplicate" in html and "conflicting_duplicate" in html   # the demo exports' faults
    assert "<table class=\"bars\"" in html and "missing share of minutes in kept train windows" in html
    assert "Normalization (fitted on train only)" in html


def test_dataset_info_documents_the_dataset(local_run):
    info = tfds.builder_from_directory(local_run.version_dir).info
    assert "minute channels" in info.description and "mask" in info.description
    assert info.release_notes == {"1.0.0": "sensorpipe dataset version 1.0.0."}
    assert {s: info.splits[s].num_examples for s in info.splits} == {k: v for k, v in local_run.split_sizes.items() if v}
    docs = {k: f.doc.desc for k, f in info.features.items() if hasattr(f, "doc")}
    assert "True = the minute was missing" in docs["mask"] and "heart_rate" in docs["input"]
