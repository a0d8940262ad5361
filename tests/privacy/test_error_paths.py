"""A broken file named after a person: under ``skip`` and ``stop`` the errors the DB and the report keep name it
by its token (privacy/paths.py), never by its path; the user's console still gets the path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sensorpipe.config import load_config
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.privacy.paths import SourcePaths
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.sources.base import SourceError
from tests.runners.tiny_cohort import config, write_cohort

KEY = "error-paths-key-0123456789abcdef"
RAW = ("zqcarol5501", "zqdave6602", "zqerin7703")


@pytest.fixture
def cohort(tmp_path, monkeypatch):
    monkeypatch.setenv("SENSORPIPE_PSEUDONYM_KEY", KEY)
    write_cohort(tmp_path / "d", pids=RAW)
    (tmp_path / "d" / f"{RAW[1]}.csv").write_bytes(b"\x00\x01garbage,\xff\n1,2\n")
    return tmp_path


def _shared_bytes(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file() and ".work" not in p.parts)


def test_a_skipped_unit_is_reported_by_token(cohort):
    cfg = load_config(config(cohort, cohort / "d", run={"on_unit_error": "skip"}, privacy={"pseudonymize": True}))
    result = run_pipeline(cfg)
    db = sqlite3.connect(cohort / "out" / "metadata.db")
    rows = db.execute("SELECT source_file, error FROM unit_errors").fetchall()
    (error,) = [dict(zip(("source_file", "error"), r)) for r in rows]
    token = SourcePaths.of(cfg, KEY.encode()).token(str(cohort / "d" / f"{RAW[1]}.csv"))
    assert error["source_file"] == token and token in error["error"] and "cannot read as CSV" in error["error"]
    shared = _shared_bytes(cohort / "out")
    assert token.encode() in shared and not any(r.encode() in shared for r in RAW)


def test_a_failed_run_records_its_error_by_token(cohort):
    cfg = load_config(config(cohort, cohort / "d", privacy={"pseudonymize": True}))
    with pytest.raises(SourceError, match=f"{RAW[1]}.csv: cannot read as CSV"):
        run_pipeline(cfg)
    (run,) = MetadataStore(cfg.metadata_url).list_runs()
    token = SourcePaths.of(cfg, KEY.encode()).token(str(cohort / "d" / f"{RAW[1]}.csv"))
    assert run["status"] == "failed" and token in run["error"] and RAW[1] not in run["error"]
    assert not any(r.encode() in _shared_bytes(cohort / "out") for r in RAW)
