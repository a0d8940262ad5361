"""A store opened read-only (what a PostgreSQL reader role gets; ``read_only=True`` anywhere): it reads, it
creates and migrates nothing, and a write is one MetadataReadOnly line that says which URL to use."""

from __future__ import annotations

import pytest

from sensorpipe.metadata import MetadataNotFound, MetadataStore
from sensorpipe.metadata import tables as t
from sensorpipe.metadata.readonly import MetadataReadOnly, role_is_read_only
from tests.metadata.test_store import make_run


def test_read_only_store_reads_and_refuses_every_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    MetadataStore(url).record_run(make_run())
    store = MetadataStore(url, read_only=True)
    assert store.read_only and not role_is_read_only(store.engine)   # SQLite is never asked
    [v] = store.list_versions()
    assert v["fingerprint"] == "abc123def456" and store.quality("abc123def456")
    writes = {"record a run": lambda: store.record_run(make_run("run-2")),
              "update a run": lambda: store.finish_run("run-1", "failed"),
              "publish a version": lambda: store.publish_version("run-1"),
              "append an audit row": lambda: store.audit("run", "run-1"),
              "delete rows": lambda: store.purge_pseudonymized_rows("out", "run-1")}
    for action, write in writes.items():
        with pytest.raises(MetadataReadOnly, match=f"refused this connection: the store is open read-only, so it "
                                                   f"may not {action}; commands that write"):
            write()
    assert [r["status"] for r in MetadataStore(url).list_runs()] == ["succeeded"]


def test_read_only_store_creates_and_migrates_nothing(tmp_path):
    missing = tmp_path / "none" / "metadata.db"
    with pytest.raises(MetadataNotFound, match="holds no sensorpipe tables yet"):
        MetadataStore(f"sqlite:///{missing}", read_only=True)
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    MetadataStore(url)
    store = MetadataStore(url)
    with store.engine.begin() as conn:
        conn.execute(t.schema_meta.update().values(value=str(t.DB_SCHEMA_VERSION - 1)))
    with pytest.raises(ValueError, match=f"schema version {t.DB_SCHEMA_VERSION - 1} and this sensorpipe reads "
                                         f"{t.DB_SCHEMA_VERSION}; it is open read-only, so it cannot be migrated"):
        MetadataStore(url, read_only=True)
