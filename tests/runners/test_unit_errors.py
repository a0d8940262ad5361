"""run.on_unit_error: one unreadable participant file stops the run (stop) or is skipped and reported (skip)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlalchemy as sa

import sensorpipe
from sensorpipe import cli
from sensorpipe.commands import summarize
from sensorpipe.config import ConfigError, load_config
from sensorpipe.runners import failures
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.sources.base import SourceError
from tests.runners.tiny_cohort import config, shard_bytes, write_cohort, write_yaml, rows

BROKEN = b"\x00\x01garbage,\xff\n1,2\n"


@pytest.fixture
def cohort(tmp_path):
    write_cohort(tmp_path / "d")
    (tmp_path / "d" / "p2.csv").write_bytes(BROKEN)
    return tmp_path


def _participants(out_dir: str) -> list[str]:
    return sorted({ex["participant_id"] for ex in sensorpipe.open(out_dir)["train"]})


def test_stop_is_the_default_and_names_the_file(cohort, capsys):
    cfg = config(cohort, cohort / "d")
    with pytest.raises(SourceError, match=r"p2\.csv: cannot read as CSV"):
        run_pipeline(load_config(cfg))
    assert cli.main(["run", str(write_yaml(cohort / "p.yaml", cfg))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p2.csv" in err[0] and "check the file" in err[0]
    with pytest.raises(ConfigError, match=r"run\.on_unit_error: 'ignore' is not allowed; use one of 'stop', 'skip'"):
        load_config(config(cohort, cohort / "d", run={"on_unit_error": "ignore"}))


def test_skip_leaves_the_unit_out_reports_it_everywhere_and_both_runners_agree(cohort, tmp_path, capsys):
    local = run_pipeline(load_config(config(cohort, cohort / "d", out="local", run={"on_unit_error": "skip"})))
    (f,) = local.units_skipped
    assert (f.study, f.participant, f.source, f.stage) == ("tiny", "p2", "tiny", "prepare")
    assert f.source_file == str(cohort / "d" / "p2.csv") and f.error.startswith("SourceError: ")
    assert "\n" not in f.error
    assert _participants(local.output_dir) == ["p1", "p3"] and local.split_sizes["train"] == 8
    # the summary, the report and the database name it
    text = summarize(local)
    assert "skipped   1 unit (run.on_unit_error: skip):" in text
    assert f"  tiny/p2 (tiny {cohort / 'd' / 'p2.csv'}, prepare): SourceError: " in text
    report = (cohort / "local" / "report.html").read_text()
    assert "<h2>Skipped units</h2>" in report and "p2.csv" in report and "cannot read as CSV" in report
    engine = sa.create_engine(local.metadata_url)
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT study, participant, source, source_file, stage, error FROM unit_errors"))
        assert [tuple(r) for r in got] == [("tiny", "p2", "tiny", f.source_file, "prepare", f.error)]
    engine.dispose()
    # the multiprocess runner skips the same unit and writes the same bytes; so does a cohort without p2
    for start in ("fork", "forkserver"):
        multi = run_pipeline(load_config(config(cohort, cohort / "d", out=f"multi-{start}", run={"on_unit_error": "skip"},
                                                runner={"name": "multiprocess", "workers": 2, "start_method": start})))
        assert multi.units_skipped == local.units_skipped
        assert shard_bytes(multi.version_dir) == shard_bytes(local.version_dir) != {}
    write_cohort(tmp_path / "without", ("p1", "p3"))
    alone = run_pipeline(load_config(config(tmp_path, tmp_path / "without", out="alone")))
    assert shard_bytes(alone.version_dir) == shard_bytes(local.version_dir)


def test_cli_flag_and_no_partial_cache_entry_after_the_file_is_fixed(cohort, capsys):
    path = write_yaml(cohort / "p.yaml", config(cohort, cohort / "d"))
    assert cli.main(["run", str(path), "--on-unit-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert "skipped   1 unit" in out and "tiny/p2 (tiny" in out
    assert "units from the cache: pass 1 0 of 2, pass 2 0 of 2" in out
    (cohort / "d" / "p2.csv").write_text("t,signal,value\n" + "\n".join(rows("p2")) + "\n")   # fixed
    r = run_pipeline(str(path), overwrite=True)   # a new person: a new dataset in the label
    assert r.units_skipped == [] and _participants(r.output_dir) == ["p1", "p2", "p3"]
    assert r.units_cached == {"pass1": 2, "pass2": 0}    # p2 computed afresh; p1, p3 from the cache
    engine = sa.create_engine(r.metadata_url)
    with engine.connect() as conn:   # the database keeps pass 1's count per run
        assert [tuple(x) for x in conn.execute(sa.text("SELECT units_cached FROM runs ORDER BY id"))] == [(0,), (2,)]
    engine.dispose()
    assert "units from the cache: pass 1 2 of 3, pass 2 0 of 3" in Path(r.report).read_text()
    write_cohort(cohort / "fresh", ("p1", "p2", "p3"))
    fresh = run_pipeline(load_config(config(cohort, cohort / "fresh", out="fresh")))
    assert shard_bytes(fresh.version_dir) == shard_bytes(r.version_dir)


def test_a_pass_2_error_is_skipped_too(cohort, monkeypatch):
    write_cohort(cohort / "d")   # every file readable
    real = failures.encode_unit

    def encode(ctx, summary, norm):
        if summary.participant == "p3":
            raise RuntimeError("caption plugin failed\non two lines")
        return real(ctx, summary, norm)

    monkeypatch.setattr(failures, "encode_unit", encode)
    cfg = load_config(config(cohort, cohort / "d", run={"on_unit_error": "skip"}))
    r = run_pipeline(cfg)
    (f,) = r.units_skipped
    assert (f.participant, f.stage, f.error) == ("p3", "encode", "RuntimeError: caption plugin failed on two lines")
    assert _participants(r.output_dir) == ["p1", "p2"] and [u.participant for u in r.units] == ["p1", "p2"]
    assert r.split_sizes["train"] == 8 and r.rows_in == 2 * 2880
    again = run_pipeline(cfg)           # p3 fails in pass 2 again: the published dataset, so nothing to do
    assert again.unchanged and again.fingerprint == r.fingerprint and again.units_skipped == r.units_skipped
    with pytest.raises(RuntimeError, match="caption plugin failed"):   # stop: the run fails in pass 2 ...
        run_pipeline(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, on_unit_error="stop")), overwrite=True)
    assert _participants(r.output_dir) == ["p1", "p2"]                  # ... and the published version stays
