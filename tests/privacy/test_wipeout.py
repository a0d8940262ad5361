"""Issue 17's wipeout Done-when: a person erased from a two-version dataset leaves no byte behind.

A shared multi-participant file (so ``.work/partitions`` holds everyone's rows) with a bad row of the
person (so quarantine holds them), two runs with different strides (two versions, both with the person),
then ``sensorpipe wipeout``: every byte under the output folder, ``.work/`` and the SQLite file included,
holds neither the pseudonym nor the raw id; the other records are byte-identical per key; ``verify``
passes; and a re-run after the person's rows are deleted from the input keeps them out.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import sensorpipe
from sensorpipe.cli import main
from sensorpipe.config import ConfigError, load_config
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.privacy.pseudonym import assign_split, pseudonym
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.runners.trace_scan import scan_traces
from sensorpipe.runners.wipeout import wipeout
from sensorpipe.storage.manifest import SHARD_RE
from sensorpipe.storage.rewrite import _text_field, read_records
from tests.runners.tiny_cohort import config, write_cohort

KEY = b"a wipeout test key, 32 bytes!!!!"
PIDS = ("zqann4410", "zqben5521", "zqcid6632", "zqdot7743", "zqeve8854")
SPLITS = {"train": 0.5, "validation": 0.25, "test": 0.25}


def _records(version_dir: str) -> dict[str, bytes]:
    """key -> serialized record, over every ArrayRecord shard of a version."""
    out = {}
    for f in sorted(Path(version_dir).iterdir()):
        m = SHARD_RE.match(f.name)
        if m and m["format"] == "array_record":
            out.update((_text_field(r, "key"), r) for r in read_records(f, "array_record"))
    return out


def _hits(root: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    return [(str(f.relative_to(root)), n) for f in sorted(root.rglob("*")) if f.is_file()
            for n in needles if n in f.read_bytes()]


def _cohort(tmp_path: Path) -> tuple[dict, str]:
    data = tmp_path / "d"
    write_cohort(data, PIDS, shared=True)
    (tmp_path / "key").write_bytes(KEY)
    cfg = config(tmp_path, data, shared=True, splits=SPLITS,
                 privacy={"pseudonymize": True, "key_file": str(tmp_path / "key")})
    cfg["output"]["version"] = "auto"
    split = load_config(cfg).splits
    target = next(p for p in PIDS if assign_split(split, "tiny", p) == "train")
    with open(data / "all.csv", "a") as fh:    # a row quarantine keeps, with the person's id in its text
        fh.write(f"{target},2024-05-02T03:00:00Z,hr,{target}-not-a-number\n")
    return cfg, target


def test_wipeout_leaves_no_trace_in_two_versions(tmp_path, capsys):
    cfg, raw = _cohort(tmp_path)
    first = run_pipeline(load_config(cfg))
    second = run_pipeline(load_config({**cfg, "window": {**cfg["window"], "stride_min": 360}}))
    out = Path(first.output_dir)
    pseud = pseudonym(KEY, "tiny", raw)
    needles = [pseud.encode(), raw.encode()]
    before = {v: _records(v) for v in (first.version_dir, second.version_dir)}
    theirs = {v: {k for k in recs if k.split("/")[1] == pseud} for v, recs in before.items()}
    assert all(theirs.values()) and _hits(out, needles)
    found = scan_traces(out, pseud, {raw})
    assert {what for _, what in found.hits} == {"pseudonym", "raw id"} and "table lineage" in dict(found.hits)
    assert any(pseud in str(p) for p in (out / ".work").rglob("*")) or _hits(out / ".work", needles)
    assert list((out / ".work" / "partitions").glob("*/*"))      # the shared file's partition holds them

    with pytest.raises(ConfigError, match="--keep-normalization"):       # they are in the train split
        wipeout(out, participant=raw, study="tiny", key_file=str(tmp_path / "key"))
    assert {v: _records(v) for v in before} == before                     # refused: nothing changed

    argv = ["wipeout", str(out), "--participant", raw, "--study", "tiny", "--key-file", str(tmp_path / "key")]
    assert main(argv + ["--dry-run"]) == 0
    dry = capsys.readouterr().out
    n_theirs = sum(map(len, theirs.values()))
    assert f"would remove {n_theirs} window(s)" in dry and "1 shared-file partition(s)" in dry
    assert "would remove 1 quarantine row(s)" in dry
    assert {v: _records(v) for v in before} == before                     # a dry run changes nothing

    assert main(argv + ["--keep-normalization"]) == 0
    assert f"removed {n_theirs} window(s)" in capsys.readouterr().out

    # every byte, .work/ and the DB included: neither the pseudonym nor the raw id (raw and decoded)
    assert _hits(out, needles) == []
    report = scan_traces(out, pseud, {raw})
    assert report.ok, report.text()
    assert main(argv + ["--verify"]) == 0 and "no trace found" in capsys.readouterr().out
    for v, recs in before.items():
        after = _records(v)
        assert set(after) == set(recs) - theirs[v]
        assert all(after[k] == recs[k] for k in after)                    # the rest byte-identical
        assert main(["verify", str(out), "--version", Path(v).name]) == 0
        ds = sensorpipe.open(v)
        info = json.loads((Path(v) / "dataset_info.json").read_text())
        sizes = {s["name"]: sum(int(n) for n in s["shardLengths"]) for s in info["splits"]}
        assert {s: len(ds[s]) for s in ds.splits} == {s: n for s, n in sizes.items()}
        assert sum(sizes.values()) == len(recs) - len(theirs[v])
    assert not (out / ".staging").exists()

    store = MetadataStore(first.metadata_url)
    try:
        log = [e for e in store.audit_log() if e["event"] == "wipeout"]
        runs = {r["run_id"]: r for r in store.list_runs(str(out))}
    finally:
        store.close()
    assert len(log) == 1 and log[0]["actor"]
    d = log[0]["details"]
    removed = sorted(k for ks in theirs.values() for k in ks)
    assert d["windows"] == n_theirs and d["quarantine_rows_removed"] == 1 and d["partitions_removed"] == 1
    assert d["window_keys_sha256"] == hashlib.sha256("\n".join(removed).encode()).hexdigest()
    assert d["normalization"].startswith("kept (--keep-normalization)")
    assert sorted(log[0]["versions"]) == ["tiny/1.0.0", "tiny/1.0.1"]
    assert sum(runs[first.run_id]["split_sizes"].values()) == len(before[first.version_dir]) - len(
        theirs[first.version_dir])

    # their input deleted, a re-run of the config keeps them out (the partition was dropped, not reused)
    data = tmp_path / "d" / "all.csv"
    data.write_text("".join(line for line in data.read_text().splitlines(True) if not line.startswith(raw)))
    third = run_pipeline(load_config(cfg))
    assert Path(third.version_dir).name == "1.0.2"
    assert all(pseud not in k for k in _records(third.version_dir))
    assert _hits(out, needles) == []


def _tfrecords(version_dir: str) -> dict[str, bytes]:
    return {_text_field(r, "key"): r for f in sorted(Path(version_dir).glob("*.tfrecord-*"))
            for r in read_records(f, "tfrecord")}


def test_by_pseudonym_outside_the_train_split_with_tfrecord_shards(tmp_path):
    """Named by pseudonym only, a person outside the train split: the normalization is unaffected, the raw
    id is still found (from the cache) for the partitions and the scan; TFRecord shards are rewritten too."""
    cfg, _ = _cohort(tmp_path)
    cfg["output"]["formats"] = ["array_record", "tfrecord"]
    split = load_config(cfg).splits
    raw = next(p for p in PIDS if assign_split(split, "tiny", p) != "train")
    first = run_pipeline(load_config(cfg))
    pseud = pseudonym(KEY, "tiny", raw)
    before, before_tf = _records(first.version_dir), _tfrecords(first.version_dir)
    assert before_tf == before
    done = wipeout(first.output_dir, pseudonym=pseud)
    assert done.plan.normalization.startswith("unaffected") and done.plan.person.raw_ids == {raw}
    after = _records(first.version_dir)
    assert set(after) == {k for k in before if f"/{pseud}/" not in k}
    assert all(after[k] == before[k] for k in after) and _tfrecords(first.version_dir) == after
    assert len(done.plan.versions["tiny/1.0.0"].window_keys) == len(before) - len(after) > 0
    assert scan_traces(first.output_dir, pseud, {raw}).ok
    assert main(["verify", first.output_dir]) == 0


def test_metadata_rows_match_a_run_without_the_person(tmp_path):
    """Per-person files: the person's file tokens leave quarantine counts and input fingerprints, and the
    train split's statistics, recomputed from the cache, equal those of a run that never had them."""
    data, key = tmp_path / "d", tmp_path / "key"
    write_cohort(data, PIDS)
    key.write_bytes(KEY)
    cfg = config(tmp_path, data, splits=SPLITS, privacy={"pseudonymize": True, "key_file": str(key)})
    raw = next(p for p in PIDS if assign_split(load_config(cfg).splits, "tiny", p) == "train")
    with open(data / f"{raw}.csv", "a") as fh:
        fh.write("2024-05-02T03:00:00Z,hr,not-a-number\n")
    first = run_pipeline(load_config(cfg))
    store = MetadataStore(first.metadata_url)
    token = {q["source_file"] for q in store.quarantine(first.fingerprint)}
    store.close()
    assert len(token) == 1
    wipeout(first.output_dir, participant=raw, study="tiny", key_file=str(key), keep_normalization=True)

    clean = tmp_path / "clean"
    clean.mkdir()
    for p in PIDS:
        if p != raw:
            (clean / f"{p}.csv").write_text((data / f"{p}.csv").read_text())
    fresh = run_pipeline(load_config(config(tmp_path, clean, out="out2", splits=SPLITS,
                                            privacy={"pseudonymize": True, "key_file": str(key)})))
    store, other = MetadataStore(first.metadata_url), MetadataStore(fresh.metadata_url)
    try:
        assert store.quarantine(first.fingerprint) == []
        run = {r["run_id"]: r for r in store.list_runs(first.output_dir)}[first.run_id]
        assert run["split_sizes"] == fresh.split_sizes
        with store.engine.connect() as conn:
            inputs = [json.loads(js) for (js,) in conn.exec_driver_sql(
                "SELECT input_fingerprints_json FROM runs UNION ALL SELECT input_fingerprints_json "
                "FROM dataset_versions")]
        assert len(inputs) == 2 and all(len(d) == len(PIDS) - 1 and not token & set(d) for d in inputs)
        wiped, never = store.channel_stats(first.fingerprint), other.channel_stats(fresh.fingerprint)
        assert [(r["split"], r["count"]) for r in wiped] == [(r["split"], r["count"]) for r in never]
        for a, b in zip(wiped, never):
            for col in ("mean", "std", "min", "max", "missing_ratio"):
                assert a[col] == pytest.approx(b[col], rel=1e-12, nan_ok=True)
    finally:
        store.close()
        other.close()


def test_a_running_writer_blocks_the_wipeout_and_a_bad_name_changes_nothing(tmp_path, monkeypatch):
    from sensorpipe.runners.lock import OutputLock, OutputLocked

    data, key = tmp_path / "d", tmp_path / "key"
    write_cohort(data, PIDS[:2])
    key.write_bytes(KEY)
    first = run_pipeline(load_config(config(tmp_path, data, privacy={"pseudonymize": True, "key_file": str(key)})))
    before = _records(first.version_dir)
    with OutputLock(first.output_dir, "a-live-run", "now"):
        with pytest.raises(OutputLocked, match="a-live-run"):
            wipeout(first.output_dir, pseudonym=pseudonym(KEY, "tiny", PIDS[0]), keep_normalization=True)
    with pytest.raises(ConfigError, match="--study"):
        wipeout(first.output_dir, participant=PIDS[0])
    monkeypatch.delenv("SENSORPIPE_PSEUDONYM_KEY", raising=False)
    assert main(["wipeout", first.output_dir, "--participant", PIDS[0], "--study", "tiny"]) == 2  # no key
    done = wipeout(first.output_dir, pseudonym="0123456789abcdef")           # nobody: nothing to do
    assert done.plan.windows == 0 and not done.plan.cache_files and _records(first.version_dir) == before


def test_a_database_outside_the_output_folder(tmp_path, capsys):
    """``metadata.url`` elsewhere: the wipeout and ``--verify`` find it from the versions' recorded config."""
    data, key = tmp_path / "d", tmp_path / "key"
    write_cohort(data, PIDS[:2])
    key.write_bytes(KEY)
    url = f"sqlite:///{tmp_path / 'db' / 'meta.db'}"
    first = run_pipeline(load_config(config(tmp_path, data, metadata={"url": url},
                                            privacy={"pseudonymize": True, "key_file": str(key)})))
    assert not (Path(first.output_dir) / "metadata.db").exists()
    pseud = pseudonym(KEY, "tiny", PIDS[0])
    wipeout(first.output_dir, pseudonym=pseud, keep_normalization=True)
    store = MetadataStore(url)
    try:
        assert [e["event"] for e in store.audit_log()] == ["run", "wipeout"]
    finally:
        store.close()
    assert main(["wipeout", first.output_dir, "--pseudonym", pseud, "--verify"]) == 0
    assert re.search(r"files and [1-9][0-9]* tables for the pseudonym", capsys.readouterr().out)
    assert _hits(tmp_path / "db", [pseud.encode()]) == []


def test_encrypted_quarantine_is_rewritten_sealed_and_searched_decrypted(tmp_path, capsys):
    """privacy.quarantine_key_file: wipeout needs that key to rewrite the sealed quarantine file (an error
    naming the option before anything changes otherwise); the new file is sealed with the same key, holds no
    row of the person, and --verify searches it decrypted."""
    from sensorpipe.privacy.sealed import is_sealed
    from sensorpipe.schema.quarantine import read_quarantine

    cfg, raw = _cohort(tmp_path)
    qkey = b"a separate quarantine key, 32 by"
    (tmp_path / "qkey").write_bytes(qkey)
    cfg["privacy"]["quarantine_key_file"] = str(tmp_path / "qkey")
    run = run_pipeline(load_config(cfg))
    out, pseud = Path(run.output_dir), pseudonym(KEY, "tiny", raw)
    (qfile,) = (out / "quarantine").glob("*.parquet")
    assert is_sealed(qfile) and pseud in set(read_quarantine(qfile, qkey).column("participant_id").to_pylist())
    before = qfile.read_bytes()
    ids = read_quarantine(qfile, qkey).column("participant_id").to_pylist()
    others_before = sum(1 for p in ids if p != pseud)
    argv = ["wipeout", str(out), "--participant", raw, "--study", "tiny", "--key-file", str(tmp_path / "key"),
            "--keep-normalization"]
    assert main(argv) == 2
    assert "is encrypted (privacy.quarantine_key_file); pass its key with --quarantine-key-file" in \
        capsys.readouterr().err
    assert qfile.read_bytes() == before                                   # refused: nothing changed
    assert main(argv + ["--quarantine-key-file", str(tmp_path / "qkey")]) == 0
    assert "removed" in capsys.readouterr().out
    assert is_sealed(qfile)
    left = read_quarantine(qfile, qkey)
    assert pseud not in set(left.column("participant_id").to_pylist())
    assert left.num_rows == others_before                  # the others' rows survive, sealed with the same key
    report = scan_traces(out, pseud, {raw}, quarantine_key=qkey)
    assert report.ok, report.text()
    assert main(["wipeout", str(out), "--pseudonym", pseud, "--verify", "--quarantine-key-file",
                 str(tmp_path / "qkey")]) == 0
