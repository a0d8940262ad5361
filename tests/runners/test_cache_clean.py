"""sensorpipe cache clean: removes what no published version's last successful run used, nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sensorpipe import cli
from sensorpipe.config import load_config
from sensorpipe.runners.cache import clean_cache
from sensorpipe.runners.driver import run_pipeline
from tests.runners.tiny_cohort import config, rows, shard_bytes, write_cohort, write_yaml


def _entries(work: Path) -> set[str]:
    return {p.relative_to(work).as_posix() for kind in ("units", "records") for p in (work / kind).glob("*")} | \
        {p.relative_to(work).as_posix() for p in (work / "partitions").glob("*/*")}


def test_clean_removes_entries_of_changed_inputs_and_gone_versions_and_keeps_the_rest(tmp_path, capsys):
    data = tmp_path / "d"
    write_cohort(data, ("p1", "p2"), shared=True)       # one shared file: partitioned under .work/partitions
    cfg = config(tmp_path, data, shared=True)
    work = tmp_path / "out" / ".work"
    old = run_pipeline(load_config(cfg))
    v2 = run_pipeline(load_config({**cfg, "output": {**cfg["output"], "version": "2.0.0"},
                                   "window": {**cfg["window"], "size_min": 360, "stride_min": 360}}))
    before = _entries(work)
    # edit the shared file: p1's rows change, p2's do not; version 1.0.0 is re-run
    body = [f"p1,{r}" for r in rows("p1", shift=5)] + [f"p2,{r}" for r in rows("p2")]
    (data / "all.csv").write_text("participant,t,signal,value\n" + "\n".join(body) + "\n")
    new = run_pipeline(load_config(cfg), overwrite=True)   # new inputs: the label gets a new fingerprint
    assert new.units_cached["pass1"] == 0   # the file's hash keys every unit read from it
    manifest = json.loads((work / "manifests" / "tiny__1.0.0.json").read_text())
    assert manifest["run_id"] == new.run_id and len(manifest["units"]) == 2 and len(manifest["records"]) == 2
    shutil.rmtree(v2.version_dir)           # version 2.0.0 is gone: its entries protect nothing any more
    in_use = _entries(work) - before
    assert len(in_use) >= 3 and all(e.startswith(("units/", "records/", "partitions/")) for e in in_use)

    dry = clean_cache(tmp_path / "out", dry_run=True)
    assert _entries(work) == before | in_use                          # nothing removed on a dry run
    removed = {e for e, _ in dry.removed}
    assert removed == (before - in_use) | {"manifests/tiny__2.0.0.json"}
    old_partition = f"partitions/tiny/{next(iter(old.units[0].input_fingerprints.values()))}"
    assert old_partition in removed and any(e.startswith("units/tiny__") for e in removed)
    assert dry.bytes_freed > 0 and dry.kept == len([e for e in in_use if not e.startswith("partitions")]) + 1

    assert cli.main(["cache", "clean", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"removed {old_partition} (" in "\n".join(out)
    assert out[-1].startswith(f"removed {len(removed)} cache entries, ") and f"({dry.bytes_freed:,} bytes) freed" in out[-1]
    assert _entries(work) == in_use and not (work / "manifests" / "tiny__2.0.0.json").exists()
    # what the published version needs is still there: the same fingerprint re-run is a no-op that read every
    # unit from the cache, and a re-run after the version folder is lost rewrites it from the cache alone
    unchanged = run_pipeline(load_config(cfg))
    assert unchanged.unchanged and unchanged.units_cached == {"pass1": 2, "pass2": 0}
    published = shard_bytes(new.version_dir)
    shutil.rmtree(new.version_dir)
    again = run_pipeline(load_config(cfg))
    assert again.units_cached == {"pass1": 2, "pass2": 2}
    assert shard_bytes(again.version_dir) == published
    assert clean_cache(tmp_path / "out").removed == []


def test_half_written_files_and_a_missing_folder(tmp_path, capsys):
    write_cohort(tmp_path / "d", ("p1",))
    r = run_pipeline(load_config(config(tmp_path, tmp_path / "d")))
    work = Path(r.output_dir) / ".work"
    (work / "units" / "tiny__0123456789abcdef.json.tmp").write_text("{}")
    res = clean_cache(r.output_dir)
    assert [e for e, _ in res.removed] == ["units/tiny__0123456789abcdef.json.tmp"] and res.bytes_freed == 2
    assert cli.main(["cache", "clean", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err


def test_clean_waits_for_no_one_while_a_run_holds_the_folder(tmp_path, capsys):
    """`cache clean` takes the output folder's lock: a running run's entries are never removed under it."""
    from sensorpipe.runners.lock import OutputLock

    write_cohort(tmp_path / "d", ("p1",))
    r = run_pipeline(load_config(config(tmp_path, tmp_path / "d")))
    with OutputLock(r.output_dir, "holder", "2026-12-07T00:00:00+00:00"):
        assert cli.main(["cache", "clean", r.output_dir]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sensorpipe cache: error: ") and "holder" in err and err.count("\n") == 1
    assert cli.main(["cache", "clean", r.output_dir]) == 0
