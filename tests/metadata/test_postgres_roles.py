"""Issue 17's PostgreSQL Done-when, against a real server the test starts (``pg_server.py``): ``sensorpipe db
roles`` sets up a writer and a reader; the writer runs the pipeline; the reader lists the versions, reads the
arrays through ``open()`` and the statistics, quality and lineage, and its INSERT, UPDATE and DELETE are
refused by the server; a write through sensorpipe under the reader ends in one clear line."""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import sensorpipe
from sensorpipe import commands_versions as cv
from sensorpipe.cli import main
from sensorpipe.metadata import MetadataNotFound, MetadataStore
from sensorpipe.metadata.readonly import MetadataReadOnly
from sensorpipe.metadata.roles import roles_sql
from tests.metadata.pg_server import find_bin_dir, postgres_server
from tests.runners.tiny_cohort import config, write_cohort, write_yaml

WRITER, READER = "sp_writer", "sp_reader"


@pytest.fixture(scope="session")
def pg_admin_url():
    """A PostgreSQL server for the session (stopped and removed at its end), as its superuser's URL."""
    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql package, "
                    "as .ci/run does")
    with postgres_server() as url:
        yield url


#: the writer's password in its URL (the test server trusts local connections and ignores it): written nowhere
PASSWORD = "pw-never-written-9d41"


def _as(url: str, role: str, password: str | None = None) -> str:
    return make_url(url).set(username=role, password=password).render_as_string(hide_password=False)


def _conninfo(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port} dbname={u.database} user={u.username}"


@pytest.fixture(scope="module")
def published(pg_admin_url, tmp_path_factory):
    """Roles set up before any table exists, then one pipeline run by the writer: (admin, writer, reader URLs,
    the run's folder)."""
    assert main(["db", "roles", "--url", pg_admin_url, "--writer", WRITER, "--reader", READER, "--apply"]) == 0
    root = tmp_path_factory.mktemp("pg_run")
    write_cohort(root / "data")
    writer, reader = _as(pg_admin_url, WRITER, PASSWORD), _as(pg_admin_url, READER)
    with pytest.raises(MetadataNotFound, match="holds no sensorpipe tables yet; the writer role's first run"):
        MetadataStore(reader)       # a reader cannot create them
    cfg = config(root, root / "data", metadata={"url": writer})
    assert main(["run", str(write_yaml(root / "pipeline.yaml", cfg))]) == 0
    return pg_admin_url, writer, reader, root


def test_roles_sql_is_printed_without_a_server(capsys):
    url = "postgresql+psycopg://admin:secret@db.example:5432/meta"
    assert main(["db", "roles", "--url", url, "--writer", "pipe", "--reader", "analyst"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == roles_sql(url, "pipe", "analyst")
    assert out[2:] == [
        'GRANT CONNECT ON DATABASE "meta" TO "pipe", "analyst";',
        'GRANT USAGE, CREATE ON SCHEMA "public" TO "pipe";',
        'GRANT USAGE ON SCHEMA "public" TO "analyst";',
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "pipe";',
        'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "public" TO "pipe";',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "analyst";',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "pipe" IN SCHEMA "public" GRANT SELECT ON TABLES TO "analyst";',
        'ALTER ROLE "analyst" SET default_transaction_read_only = on;',
    ]
    assert "secret" not in "".join(out)
    assert main(["db", "roles", "--url", "sqlite:///x.db", "--writer", "a", "--reader", "b"]) == 2
    assert "PostgreSQL feature" in capsys.readouterr().err


def test_writer_owns_the_tables_and_reader_lists_the_version(published, capsys):
    admin, writer, reader, root = published
    store = MetadataStore(reader)
    assert store.read_only and not MetadataStore(writer).read_only
    [v] = store.list_versions()
    assert (v["dataset_name"], v["semantic_version"], v["status"]) == ("tiny", "1.0.0", "published")
    assert v["split_sizes"] == {"train": 12, "validation": 0, "test": 0}
    assert v["output_dir"] == str(root / "out")
    assert main(["versions", "--db", reader]) == 0
    listed = capsys.readouterr().out
    assert f"tiny                     1.0.0    published  {v['fingerprint']}" in listed
    with psycopg.connect(_conninfo(admin)) as conn:
        owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
    assert owners["runs"] == owners["lineage"] == owners["privacy_audit"] == WRITER


def test_reader_reads_the_arrays_through_open(published):
    _, _, reader, root = published
    [v] = MetadataStore(reader).list_versions()
    ds = sensorpipe.open(v["output_dir"])
    assert ds.fingerprint == v["fingerprint"]
    assert len(ds["train"]) == v["split_sizes"]["train"] == 12
    first = ds["train"][0]
    assert first["input"].shape == (720, 1) and first["input"].dtype.name == "float32"
    assert not first["mask"].any()      # every minute of the tiny cohort is observed
    key = first["key"].decode() if isinstance(first["key"], bytes) else str(first["key"])
    row = json.loads(cv.lineage(str(root / "out"), key, db_url=reader, as_json=True))
    assert (row["source"], row["split"], row["fingerprint"]) == ("tiny", "train", v["fingerprint"])


def test_reader_reads_statistics_and_quality(published):
    _, _, reader, root = published
    stats = json.loads(cv.stats(str(root / "out"), db_url=reader, split="train", as_json=True))
    [hr] = stats["channel_stats"]
    assert (hr["channel"], hr["count"]) == ("heart_rate", 8640)
    quality = json.loads(cv.quality(str(root / "out"), db_url=reader, as_json=True))
    metrics = {(m["scope"], m["name"]): m["value"] for m in quality["quality"]}
    assert metrics[("dataset", "rows_in")] == metrics[("dataset", "rows_accepted")] == 8640


@pytest.mark.parametrize("statement", [
    "INSERT INTO configs (hash, config_json, created_at) VALUES ('h', '{}', 'now')",
    "UPDATE runs SET status = 'failed'",
    "DELETE FROM lineage",
])
def test_reader_insert_update_delete_are_refused(published, statement):
    _, _, reader, _ = published
    with psycopg.connect(_conninfo(reader)) as conn:     # its sessions are READ ONLY by default
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(statement)
    with psycopg.connect(_conninfo(reader)) as conn:     # and a read-write transaction has no grant to write
        conn.execute("SET TRANSACTION READ WRITE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    with psycopg.connect(_conninfo(reader)) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'succeeded'").fetchone() == (1,)


def test_a_write_under_the_reader_is_one_clear_line(published, tmp_path, capsys):
    admin, _, reader, root = published
    with pytest.raises(MetadataReadOnly, match=f"refused role '{READER}': the store is open read-only, so it "
                                               f"may not append an audit row; commands that write"):
        MetadataStore(reader).audit("run", "r1")
    forced = MetadataStore(reader, read_only=False)      # past sensorpipe's own check: the server refuses
    with pytest.raises(MetadataReadOnly, match="cannot execute INSERT in a read-only transaction"):
        forced.audit("run", "r1")
    write_cohort(tmp_path / "data")
    cfg = config(tmp_path, tmp_path / "data", metadata={"url": reader})
    assert main(["run", str(write_yaml(tmp_path / "pipeline.yaml", cfg))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "read-only" in err and "writer role's URL" in err
    assert "Traceback" not in err
    with psycopg.connect(_conninfo(admin)) as conn:   # nothing of that run reached the database
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_tables_the_writer_creates_later_are_readable(published):
    _, writer, reader, _ = published
    with psycopg.connect(_conninfo(writer)) as conn:    # as a newer sensorpipe's migration would add one
        conn.execute("CREATE TABLE later_table (id integer PRIMARY KEY, note text)")
        conn.execute("INSERT INTO later_table VALUES (1, 'added after the grants')")
    with psycopg.connect(_conninfo(reader)) as conn:
        assert conn.execute("SELECT note FROM later_table").fetchone() == ("added after the grants",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE reader_table (id integer)")
    store = MetadataStore(reader)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM later_table")).scalar() == 1


def test_the_writer_password_is_written_nowhere(published, capsys):
    """(Last in the module: it runs the pipeline again.) ``sensorpipe.json`` and the database's stored configs keep the URL without its password (libpq finds it
    again in PGPASSWORD or ~/.pgpass); the run's summary does not print it."""
    admin, writer, _, root = published
    assert PASSWORD in writer
    written = [p for p in root.rglob("*") if p.is_file() and p.name != "pipeline.yaml"]
    assert [p for p in written if PASSWORD.encode() in p.read_bytes()] == []
    side = json.loads(next(root.rglob("sensorpipe.json")).read_text())
    assert side["config"]["metadata"]["url"] == writer.replace(f":{PASSWORD}@", "@")
    with psycopg.connect(_conninfo(admin)) as conn:
        stored = [r[0] for r in conn.execute("SELECT config_json FROM configs")]
    assert stored and not any(PASSWORD in c for c in stored)
    assert main(["run", str(root / "pipeline.yaml")]) == 0      # unchanged: the summary names the database
    out = capsys.readouterr().out
    assert f"{WRITER}@127.0.0.1" in out and PASSWORD not in out
