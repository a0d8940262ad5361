"""Every run writes an audit row: who, when, what, which versions and code; never a raw id or the key."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from sensorpipe._version import code_version
from sensorpipe.config import load_config
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.privacy.pseudonym import key_digest
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.runners.lifecycle import VersionConflict
from tests.runners.tiny_cohort import config, write_cohort

KEY = b"a key for the audit test, 32 b!!"


def test_succeeded_unchanged_and_failed_runs_are_audited(tmp_path):
    write_cohort(tmp_path / "d", ("p1", "p2"))
    (tmp_path / "key").write_bytes(KEY)
    cfg = config(tmp_path, tmp_path / "d", privacy={"pseudonymize": True, "key_file": str(tmp_path / "key")})
    first = run_pipeline(load_config(cfg))
    second = run_pipeline(load_config(cfg))
    (tmp_path / "d" / "p3.csv").write_text((tmp_path / "d" / "p1.csv").read_text())   # other inputs, same label
    with pytest.raises(VersionConflict):
        run_pipeline(load_config(cfg))
    store = MetadataStore(first.metadata_url)
    try:
        log = store.audit_log()
        runs = store.list_runs(first.output_dir)
    finally:
        store.close()
    assert [(e["event"], e["details"]["status"]) for e in log] == [
        ("run", "succeeded"), ("run", "unchanged"), ("run", "failed")]
    assert [e["subject"] for e in log] == [r["run_id"] for r in reversed(runs)]
    assert log[0]["subject"] == first.run_id and log[1]["subject"] == second.run_id
    assert all(e["actor"] == getpass.getuser() and e["code_version"] == code_version() for e in log)
    assert log[0]["versions"] == ["tiny/1.0.0"] and log[0]["details"]["fingerprint"] == first.fingerprint
    assert {e["details"]["key_digest"] for e in log} == {key_digest(KEY)}
    assert log[2]["details"]["stage"] == "pass1" and log[2]["versions"] == []
    db = Path(tmp_path / "out" / "metadata.db").read_bytes()
    assert KEY not in db and b"p1.csv" not in str(log).encode()
