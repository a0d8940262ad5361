"""Immutable versions, atomic publish and recorded failures, in process (see test_kill.py for real kills)."""

from __future__ import annotations

import errno
import json

import pytest

import sensorpipe
from sensorpipe.cli import main
from sensorpipe.commands import list_versions, summarize
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.runners import driver
from sensorpipe.runners.driver import DiskFullError, run_pipeline
from sensorpipe.runners.lifecycle import NoWindowsError, VersionConflict

from .conftest import tiny_config, tree_digest


def _store(out):
    return MetadataStore(f"sqlite:///{out / 'metadata.db'}")


def _runs(out):
    return [(r["status"], r["stage"]) for r in reversed(_store(out).list_runs())]


@pytest.fixture
def published(tiny_sources, tmp_path):
    """A published 1.0.0 in a fresh output folder: (config, out, version dir, its digest, the result)."""
    out = tmp_path / "out"
    config = tiny_config(tiny_sources, out, name=f"{tmp_path.name}.yaml")
    result = run_pipeline(str(config))
    version_dir = out / "tiny" / "1.0.0"
    return config, out, version_dir, tree_digest(version_dir), result


def test_a_run_publishes_by_rename_and_leaves_no_staging(published):
    config, out, version_dir, digest, result = published
    assert result.version_dir == str(version_dir) and not result.unchanged
    assert {"dataset_info.json", "features.json", "sensorpipe.json", "normalization.json"} <= set(digest)
    assert json.loads((version_dir / "sensorpipe.json").read_text())["fingerprint"] == result.fingerprint
    assert not (out / ".staging").exists()
    assert (out / ".sensorpipe.lock").read_text() == ""          # released cleanly
    assert _runs(out) == [("succeeded", "done")]
    run = _store(out).get_run(result.run_id)
    assert run["windows_kept"] == result.windows_kept == sum(result.split_sizes.values()) > 0
    assert run["error"] is None and run["finished_at"] and run["dataset_version"] == "1.0.0"
    assert len(sensorpipe.open(out)["train"]) == result.split_sizes["train"]


def test_the_same_fingerprint_again_is_a_noop_that_says_so(published):
    config, out, version_dir, digest, first = published
    mtimes = {p: p.stat().st_mtime_ns for p in version_dir.iterdir()}
    again = run_pipeline(str(config))
    assert again.unchanged and again.fingerprint == first.fingerprint and again.split_sizes == first.split_sizes
    assert {p: p.stat().st_mtime_ns for p in version_dir.iterdir()} == mtimes    # not rewritten
    assert tree_digest(version_dir) == digest
    text = summarize(again)
    assert text.startswith(f"nothing changed: {version_dir} already holds fingerprint {first.fingerprint}")
    assert _runs(out) == [("succeeded", "done"), ("unchanged", "done")]
    (v,) = _store(out).list_versions()
    assert v["status"] == "published" and v["run_id"] == first.run_id


def test_a_label_holding_another_fingerprint_is_refused_then_overwritten(published, tiny_sources, capsys):
    config, out, version_dir, digest, first = published
    changed = tiny_config(tiny_sources, out, name=f"{out.parent.name}-b.yaml", release_notes="new notes")
    with pytest.raises(VersionConflict) as e:
        run_pipeline(str(changed))
    msg = str(e.value)
    assert first.fingerprint in msg and "--overwrite" in msg and "output.version" in msg and "\n" not in msg
    assert tree_digest(version_dir) == digest
    assert main(["run", str(changed)]) == 2                         # the CLI: one line, exit 2
    err = capsys.readouterr().err
    assert err.startswith("sensorpipe run: error: ") and err.count("\n") == 1 and first.fingerprint in err
    failed = _store(out).list_runs()[0]
    assert (failed["status"], failed["stage"]) == ("failed", "pass1") and "VersionConflict" in failed["error"]
    assert failed["fingerprint"] not in (None, first.fingerprint)   # known by then, and named in the message
    assert failed["fingerprint"] in msg

    second = run_pipeline(str(changed), overwrite=True)
    assert second.replaced == first.fingerprint and second.fingerprint != first.fingerprint
    assert json.loads((version_dir / "sensorpipe.json").read_text())["fingerprint"] == second.fingerprint
    assert not (out / ".staging").exists()
    status = {v["fingerprint"]: v["status"] for v in _store(out).list_versions()}
    assert status == {first.fingerprint: "replaced", second.fingerprint: "published"}
    listed = list_versions(str(out)).splitlines()
    assert len(listed) == 2 and second.fingerprint in listed[1] and first.fingerprint not in "".join(listed)


def test_auto_bumps_the_patch_and_reuses_the_same_fingerprint(published, tiny_sources):
    config, out, version_dir, digest, first = published
    auto = tiny_config(tiny_sources, out, name=f"{out.parent.name}-auto.yaml", version="auto")
    a = run_pipeline(str(auto))
    assert a.version_dir == str(out / "tiny" / "1.0.1") and not a.unchanged
    assert json.loads((out / "tiny" / "1.0.1" / "dataset_info.json").read_text())["version"] == "1.0.1"
    again = run_pipeline(str(auto))
    assert again.unchanged and again.version_dir == a.version_dir and again.fingerprint == a.fingerprint
    changed = tiny_config(tiny_sources, out, name=f"{out.parent.name}-auto2.yaml", version="auto", release_notes="x")
    b = run_pipeline(str(changed))
    assert b.version_dir == str(out / "tiny" / "1.0.2") and b.fingerprint != a.fingerprint
    assert tree_digest(version_dir) == digest                     # the explicit 1.0.0 never moved
    assert sorted(p.name for p in (out / "tiny").iterdir()) == ["1.0.0", "1.0.1", "1.0.2"]
    assert [v["semantic_version"] for v in _store(out).list_versions()] == ["1.0.2", "1.0.1", "1.0.0"]


def test_a_config_that_keeps_no_window_fails_before_anything_is_touched(published, tiny_sources):
    config, out, version_dir, digest, first = published
    quarantine = tree_digest(out / "quarantine")
    report = (out / "report.html").read_bytes()
    bad = tiny_config(tiny_sources, out, name=f"{out.parent.name}-bad.yaml", release_notes="x",
                      source_options={"time_format": "local", "local_time_format": "%d/%m/%Y %H:%M"})
    with pytest.raises(NoWindowsError) as e:
        run_pipeline(str(bad), overwrite=True)      # even with --overwrite: nothing to publish
    rows_in = first.rows_in
    assert str(e.value).startswith("no window kept from 2 unit(s), nothing was written: "
                                   f"{rows_in:,} of {rows_in:,} rows unparseable_time in source 'fitbit_cohort'; "
                                   "check the source's time format (options.local_time_format")
    assert tree_digest(version_dir) == digest and tree_digest(out / "quarantine") == quarantine
    assert (out / "report.html").read_bytes() == report and not (out / ".staging").exists()
    last = _store(out).list_runs()[0]
    assert (last["status"], last["stage"]) == ("failed", "pass1") and last["error"].startswith("NoWindowsError: ")


def test_window_drops_are_named_when_rows_were_accepted(tiny_sources, tmp_path):
    out = tmp_path / "out"
    config = tiny_config(tiny_sources, out, name=f"{tmp_path.name}.yaml", window={"max_missing_ratio": 0.0, "size_min": 1440, "stride_min": 60})
    with pytest.raises(NoWindowsError, match=r"^no window kept from 2 unit\(s\), nothing was written: windows "
                                             r"dropped: too_missing \d+ .*max_missing_ratio"):
        run_pipeline(str(config))
    assert not (out / "tiny").exists()


def test_a_full_disk_keeps_the_published_version_and_says_so_in_one_line(published, tiny_sources, monkeypatch,
                                                                         capsys):
    config, out, version_dir, digest, first = published
    changed = tiny_config(tiny_sources, out, name=f"{out.parent.name}-full.yaml", release_notes="bigger")
    real = driver.write_metadata

    def fills_the_disk(version_dir_, *args, **kwargs):
        real(version_dir_, *args, **kwargs)       # the shards are written, then the next write fails
        raise OSError(errno.ENOSPC, "No space left on device", str(version_dir_ / "dataset_info.json"))

    monkeypatch.setattr(driver, "write_metadata", fills_the_disk)
    with pytest.raises(DiskFullError) as e:
        run_pipeline(str(changed), overwrite=True)
    assert "disk full writing" in str(e.value) and "during stage write" in str(e.value) and "\n" not in str(e.value)
    assert f"the published version {version_dir} is unchanged" in str(e.value)
    assert tree_digest(version_dir) == digest and not (out / ".staging").exists()
    assert len(sensorpipe.open(out)["train"]) == first.split_sizes["train"]
    last = _store(out).list_runs()[0]
    assert (last["status"], last["stage"]) == ("failed", "write") and "No space left on device" in last["error"]
    assert main(["run", str(changed), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sensorpipe run: error: disk full writing ") and "during stage write" in err and err.count("\n") == 1
    monkeypatch.setattr(driver, "write_metadata", real)
    assert run_pipeline(str(changed), overwrite=True).replaced == first.fingerprint    # and the next run works


def test_versions_lists_published_versions_and_all_runs_with_their_errors(published, tiny_sources, capsys):
    import shutil

    config, out, version_dir, digest, first = published
    bad = tiny_config(tiny_sources, out, name=f"{out.parent.name}-bad.yaml", release_notes="x",
                      source_options={"time_format": "local", "local_time_format": "%d/%m/%Y %H:%M"})
    assert main(["run", str(bad)]) == 2
    capsys.readouterr()
    assert main(["versions", str(out)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["dataset", "version", "status", "fingerprint"]
    assert row.split()[:4] == ["tiny", "1.0.0", "published", first.fingerprint]
    sizes = first.split_sizes
    assert row.endswith(f"train {sizes['train']}, validation {sizes['validation']}, test {sizes['test']}")
    assert main(["versions", str(out), "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[1:3] == ["failed", "pass1"] and "NoWindowsError: no window kept" in lines[1]
    assert lines[2].startswith(first.run_id) and lines[2].split()[1:3] == ["succeeded", "done"]
    shutil.rmtree(version_dir)           # removed by hand: the record stays, and says so
    assert main(["versions", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["tiny", "1.0.0", "missing"]
