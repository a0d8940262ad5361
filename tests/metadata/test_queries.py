"""`sensorpipe diff`, `lineage`, `stats` and `quality` over two real small runs sharing one metadata DB,
and one-line errors for unknown versions/keys and a damaged metadata.db."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import sensorpipe
from sensorpipe.cli import main
from sensorpipe.integrity import DatasetIntegrityError
from sensorpipe.metadata.queries import diff_versions, open_store


@pytest.fixture(scope="module")
def two_runs(sources_dir, base_config, tmp_path_factory):
    """Version 1.0.0 keeps windows up to 50% missing, 1.1.0 up to 90% (so it adds windows), in one output dir."""
    from sensorpipe.runners.driver import run_pipeline

    out = tmp_path_factory.mktemp("diff") / "out"
    runs = []
    for label, max_missing in (("1.0.0", 0.5), ("1.1.0", 0.9)):
        cfg = dict(base_config, output=dict(base_config["output"], dir=str(out), version=label),
                   window=dict(base_config["window"], max_missing_ratio=max_missing))
        path = sources_dir / f"queries_{label}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        runs.append(run_pipeline(str(path), runner="local"))
    return out, runs


def _keys(version_dir: str) -> dict[str, set[str]]:
    ds = sensorpipe.open(version_dir)
    return {s: {ex["key"] for ex in ds[s]} for s in ds.splits}


def _run(args, capsys) -> tuple[int, str, str]:
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_diff_shows_config_windows_and_stat_deltas(two_runs, capsys):
    out, (a, b) = two_runs
    ka, kb = _keys(a.version_dir), _keys(b.version_dir)
    rc, text, _ = _run(["diff", str(out), "1.0.0", "1.1.0"], capsys)
    assert rc == 0
    assert "~ window.max_missing_ratio: 0.5 -> 0.9" in text and "~ output.version: '1.0.0' -> '1.1.0'" in text
    assert f"--- sensorpipe_demo 1.0.0  fingerprint {a.fingerprint}" in text
    assert "source schemas:\n  (unchanged)" in text and "code version: (unchanged)" in text
    added_total = 0
    for split in ("train", "validation", "test"):
        old, new = ka.get(split, set()), kb.get(split, set())
        added, removed = len(new - old), len(old - new)
        added_total += added
        assert f"  {split:10}  {len(old):>3}  {len(new):>3}  {added:>5}  {removed:>7}" in text
        for k in sorted(new - old)[:5]:
            assert f"  + {split} {k}" in text
    assert added_total == b.windows_kept - a.windows_kept > 0
    # the JSON form: every key, and stat deltas equal to the DB's numbers
    rc, js, _ = _run(["diff", str(out), a.fingerprint[:8], b.fingerprint, "--json"], capsys)
    d = json.loads(js)
    assert rc == 0 and d["config"] == [
        {"key": "output.version", "change": "changed", "old": "1.0.0", "new": "1.1.0"},
        {"key": "window.max_missing_ratio", "change": "changed", "old": 0.5, "new": 0.9}]
    for split, w in d["windows"].items():
        assert set(w["added"]) == kb.get(split, set()) - ka.get(split, set()) and w["removed"] == []
    store = open_store(out)
    sa = {(r["split"], r["channel"]): r for r in store.channel_stats(a.fingerprint)}
    sb = {(r["split"], r["channel"]): r for r in store.channel_stats(b.fingerprint)}
    hr = next(r for r in d["channel_stats"] if r["split"] == "train" and r["channel"] == "heart_rate")
    old, new = sa[("train", "heart_rate")], sb[("train", "heart_rate")]
    assert hr["count"] == {"old": old["count"], "new": new["count"], "delta": new["count"] - old["count"]}
    assert hr["mean"]["delta"] == pytest.approx(new["mean"] - old["mean"])
    assert hr["count"]["delta"] > 0
    assert f"{new['count'] - old['count']:+d}" in text.split("channel statistics")[1]


def test_diff_of_schemas_and_inputs_between_versions(two_runs):
    out, (a, b) = two_runs
    d = diff_versions(open_store(out), "1.0.0", "1.1.0")
    assert d["schemas"] == [] and d["inputs"] == {"added": [], "removed": [], "changed": []}
    assert d["code_version"]["old"] == d["code_version"]["new"]


def test_lineage_of_a_real_key(two_runs, sources_dir, capsys):
    out, (a, b) = two_runs
    ds = sensorpipe.open(a.version_dir)
    ex = ds["train"][0]
    key = ex["key"]
    rc, text, _ = _run(["lineage", str(out), key, "--version", "1.0.0"], capsys)
    assert rc == 0
    row = open_store(out).lineage(key, a.fingerprint)
    assert f"window       {key}" in text and "split        train" in text
    assert f"participant  {ex['participant_id']} (pseudonym)" in text
    for f, (lo, hi) in row["row_ranges"].items():   # keyed tokens (privacy/paths.py), never the path
        assert "/" not in f and f"  {f}  rows {lo}..{hi}" in text
    config = str(sources_dir / "queries_1.0.0.yaml")
    rc, text, _ = _run(["lineage", str(out), key, "--version", "1.0.0", "--config", config], capsys)
    assert rc == 0
    resolved = [line.split("  rows ")[0].strip() for line in text.splitlines() if "  rows " in line]
    assert len(resolved) == len(row["row_ranges"]) and all(Path(f).is_file() for f in resolved)
    rc, js, _ = _run(["lineage", str(out), key, "--json"], capsys)
    got = json.loads(js)
    assert got["window_key"] == key and got["row_ranges"] == row["row_ranges"] and got["version"] == "1.1.0"


def test_stats_and_quality_match_the_db(two_runs, capsys):
    out, (a, b) = two_runs
    store = open_store(out)
    rc, js, _ = _run(["stats", str(out), "--version", "1.0.0", "--split", "train", "--json"], capsys)
    got = json.loads(js)
    want = store.channel_stats(a.fingerprint, "train")
    assert rc == 0 and got["version"] == "1.0.0" and len(got["channel_stats"]) == len(want) > 0
    for g, w in zip(got["channel_stats"], want):
        assert g["channel"] == w["channel"] and g["count"] == w["count"]
        assert g["mean"] == (None if w["count"] == 0 else pytest.approx(w["mean"]))
    rc, text, _ = _run(["stats", str(out)], capsys)     # newest version, every split
    lines = text.splitlines()
    assert "sensorpipe_demo 1.1.0" in lines[0] and lines[1].split() == [
        "split", "channel", "count", "mean", "std", "min", "max", "missing_ratio"]
    hr = next(r for r in store.channel_stats(b.fingerprint, "train") if r["channel"] == "heart_rate")
    row = next(ln.split() for ln in lines if ln.startswith("train") and " heart_rate " in ln)
    assert int(row[2]) == hr["count"] and float(row[3]) == pytest.approx(hr["mean"], rel=1e-5)
    assert len({len(ln) for ln in lines[1:3]}) == 1    # header and rule aligned
    rc, js, _ = _run(["quality", str(out), "--version", b.fingerprint, "--json"], capsys)
    q = {(r["scope"], r["name"]): r["value"] for r in json.loads(js)["quality"]}
    assert q[("dataset", "windows_kept")] == b.windows_kept and q[("dataset", "rows_in")] == b.rows_in
    rc, text, _ = _run(["quality", str(out), "--version", "1.0.0"], capsys)
    row = next(ln.split() for ln in text.splitlines() if ln.startswith("dataset ") and " windows_kept " in ln)
    assert rc == 0 and float(row[2]) == a.windows_kept


def test_unknown_versions_keys_and_splits_are_one_line_errors(two_runs, capsys):
    out, _ = two_runs
    for args, needle in ((["diff", str(out), "1.0.0", "7.7.7"], "version '7.7.7' is not recorded; recorded"),
                         (["lineage", str(out), "no/such/key"], "no window with key 'no/such/key'"),
                         (["stats", str(out), "--split", "holdout"], "no statistics for split 'holdout'"),
                         (["quality", str(out), "--version", "zz"], "version 'zz' is not recorded"),
                         (["stats", str(out / "nowhere")], "metadata.db does not exist")):
        rc, _, err = _run(args, capsys)
        assert rc == 2 and needle in err and err.count("\n") == 1, (args, err)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_metadata_db_is_one_line_in_every_command(two_runs, tmp_path, capsys, damage):
    out, _ = two_runs
    bad = tmp_path / "out"
    bad.mkdir()
    db = bad / "metadata.db"
    if damage == "garbage":
        db.write_bytes(b"this is not a database " * 200)
    else:
        import sqlite3

        for suffix in ("", "-wal"):      # the runs' store may still hold rows in the write-ahead log
            if (out / f"metadata.db{suffix}").exists():
                shutil.copyfile(out / f"metadata.db{suffix}", bad / f"metadata.db{suffix}")
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
        con.close()
        data = db.read_bytes()
        assert len(data) > 100_000
        db.write_bytes(data[: len(data) // 2])
    for args in (["versions", str(bad)], ["schema", "show", "fitbit_cohort", str(bad)], ["stats", str(bad)],
                 ["quality", str(bad)], ["diff", str(bad), "1.0.0", "1.1.0"], ["lineage", str(bad), "k"]):
        rc, _, err = _run(args, capsys)
        assert rc == 2 and err.count("\n") == 1 and f"metadata database {db} cannot be read" in err, (args, err)
    with pytest.raises(DatasetIntegrityError, match="database disk image is malformed|file is not a database"):
        open_store(bad).list_versions()
