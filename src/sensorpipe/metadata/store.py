"""The metadata database: what each run produced, from which inputs and how.

:class:`MetadataStore` persists the records of :mod:`sensorpipe.metadata.records`
with SQLAlchemy Core, so the same code runs on a local SQLite file (default)
and on a shared PostgreSQL for a team. A run's row is committed at its start
(:meth:`MetadataStore.begin_run`) and closed at its end (:meth:`~MetadataStore.finish_run`,
:meth:`~MetadataStore.publish_version`), so failed and killed runs are on record;
what a run produced (version, stats, lineage) is written in one transaction:
a killed or failing run leaves no half-recorded version, stats or lineage.

Readers address data by dataset *fingerprint* (config + inputs + code
version), the identity of a dataset version. Detail rows belong to runs; a
fingerprint query reads its latest succeeded run (or latest run if none
succeeded), so a re-run never overwrites what an earlier run recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import Connection, Table, case, create_engine, event, func, insert, select
from sqlalchemy.engine import Engine, make_url

from sensorpipe.integrity import translate_corrupt_database
from sensorpipe.metadata import tables as t
from sensorpipe.metadata.readonly import read_only_error, role_is_read_only, safe_url, translate_denied
from sensorpipe.metadata.records import RunRecord, RunStart, SchemaRecord

__all__ = ["MetadataStore", "MetadataNotFound"]


class MetadataVersionError(ValueError):
    """The database's schema version cannot be used by this sensorpipe (the message says what to do)."""


class MetadataNotFound(KeyError):
    """Raised when a fingerprint, run, schema or version is not in the database."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _os_user() -> str:
    """Who runs this process: the login name, else the numeric uid (a container without a passwd entry)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _dumps(obj: Any) -> str:
    # sorted keys: the same content always gives the same text (and hash)
    return json.dumps(obj, sort_keys=True, default=str)


def _sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite URL, or None for memory / other backends."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    db = u.database or ""
    if db in ("", ":memory:") or db.startswith("file:") or u.query.get("mode") == "memory":
        return None
    return Path(db)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (report, inspect) work while a run writes; foreign keys
    # are off by default in SQLite and would let detail rows dangle.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class MetadataStore:
    """Versions, runs, configs, schemas, stats, quality, lineage and audit log.

    ``url`` is any SQLAlchemy URL; ``sqlite:///path/metadata.db`` creates the
    parent directories. Tables are created on first use (:meth:`create`).

    ``read_only``: nothing is created, migrated or written, and a write raises
    :class:`~sensorpipe.metadata.readonly.MetadataReadOnly`. None (default):
    read-only exactly when a PostgreSQL role may not insert into ``runs`` (the
    reader role of ``sensorpipe db roles``); SQLite is never asked (no cost).
    """

    def __init__(self, url: str, read_only: bool | None = None) -> None:
        self.url = url
        path = _sqlite_path(url)
        if path is not None and not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = create_engine(url)
        except ModuleNotFoundError as e:    # the URL's driver (psycopg for postgresql+psycopg://) is not installed
            raise ModuleNotFoundError(f"metadata database {safe_url(url)} needs the Python package {e.name!r}; for "
                                      f"PostgreSQL: pip install 'sensorpipe[postgres]'") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # a damaged database file: one DatasetIntegrityError naming it, not sqlite3's traceback
            event.listen(self.engine, "handle_error", translate_corrupt_database)
        else:   # a write the server refuses to this role: one MetadataReadOnly line
            event.listen(self.engine, "handle_error", translate_denied)
        self.read_only: bool = role_is_read_only(self.engine) if read_only is None else read_only
        if self.read_only and self.engine.dialect.name == "postgresql":
            self.engine = self.engine.execution_options(postgresql_readonly=True)   # READ ONLY transactions
        self.create()

    def _require_writable(self, action: str) -> None:
        """Refuse a write on a read-only store with the one line that says which URL to use instead."""
        if self.read_only:
            raise read_only_error(self.url, make_url(self.url).username,
                                  f"the store is open read-only, so it may not {action}")

    def create(self) -> None:
        """Create missing tables, check the stored DB schema version, migrate an older one (idempotent).

        A database written by a newer sensorpipe is refused rather than
        misread. An older one is upgraded in place when the newer schema only
        adds nullable columns (the only kind of change so far); anything else
        is refused with a message saying what to do. A read-only store only
        checks the stored version (:meth:`_check_readable`).
        """
        if self.read_only:
            self._check_readable()
            return
        t.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            stored = conn.execute(
                select(t.schema_meta.c.value).where(t.schema_meta.c.key == "db_schema_version")
            ).scalar()
            if stored is None:
                conn.execute(insert(t.schema_meta), [{"key": "db_schema_version", "value": str(t.DB_SCHEMA_VERSION)}])
            elif int(stored) > t.DB_SCHEMA_VERSION:
                raise MetadataVersionError(
                    f"metadata database {self.url} has schema version {stored}, newer than this sensorpipe's "
                    f"{t.DB_SCHEMA_VERSION}; upgrade sensorpipe or point metadata.url at another database")
        if stored is not None and int(stored) < t.DB_SCHEMA_VERSION:
            if int(stored) < 3:
                self._relax_not_null(t.RELAXED_IN_3)
            with self.engine.begin() as conn:
                self._migrate(conn, int(stored))

    def _check_readable(self) -> None:
        """A read-only store's database must hold this sensorpipe's schema version: it may not create or migrate."""
        from sqlalchemy import inspect as sa_inspect

        path = _sqlite_path(self.url)
        stored = None
        if path is None or path.is_file():    # SQLite would create a missing file on connecting
            with self.engine.connect() as conn:
                if sa_inspect(conn).has_table(t.schema_meta.name):
                    stored = conn.execute(select(t.schema_meta.c.value)
                                          .where(t.schema_meta.c.key == "db_schema_version")).scalar()
        where = f"metadata database {safe_url(self.url)}"
        if stored is None:
            raise MetadataNotFound(f"{where} holds no sensorpipe tables yet; the writer role's first run creates "
                                   f"them (or point --db / metadata.url at the database the pipeline writes)")
        if int(stored) != t.DB_SCHEMA_VERSION:
            fix = ("upgrade sensorpipe" if int(stored) > t.DB_SCHEMA_VERSION else
                   "open it once with the writer role's URL (e.g. `sensorpipe versions --db WRITER_URL`), which "
                   "migrates it")
            raise MetadataVersionError(f"{where} has schema version {stored} and this sensorpipe reads "
                                       f"{t.DB_SCHEMA_VERSION}; it is open read-only, so it cannot be migrated: {fix}")

    def _relax_not_null(self, relaxed: dict[str, tuple[str, ...]]) -> None:
        """Let columns an older schema declared NOT NULL hold NULL, data kept.

        PostgreSQL and most servers alter the column; SQLite cannot, so the
        table is rebuilt the way the SQLite manual prescribes (foreign keys off,
        new table, copy, drop, rename, indexes; one transaction), which also
        gives it the columns the new schema added.
        """
        from sqlalchemy import inspect as sa_inspect
        from sqlalchemy.schema import CreateIndex, CreateTable

        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                for table, cols in relaxed.items():
                    for col in cols:
                        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {col} DROP NOT NULL")
            return
        for name in relaxed:
            table = t.metadata.tables[name]
            with self.engine.connect() as conn:
                have = [c["name"] for c in sa_inspect(conn).get_columns(name)]
            common = ", ".join(c.name for c in table.columns if c.name in have)
            create = str(CreateTable(table).compile(dialect=self.engine.dialect)).strip()
            create = create.replace(f"CREATE TABLE {name} ", f"CREATE TABLE _new_{name} ", 1)
            raw = self.engine.raw_connection()
            try:
                db = raw.driver_connection
                db.isolation_level = None          # explicit BEGIN/COMMIT below
                db.execute("PRAGMA foreign_keys=OFF")    # a no-op inside a transaction: set before BEGIN
                db.execute("BEGIN")
                try:
                    db.execute(create)
                    db.execute(f"INSERT INTO _new_{name} ({common}) SELECT {common} FROM {name}")
                    db.execute(f"DROP TABLE {name}")
                    db.execute(f"ALTER TABLE _new_{name} RENAME TO {name}")
                    for index in table.indexes:
                        db.execute(str(CreateIndex(index).compile(dialect=self.engine.dialect)))
                    if db.execute("PRAGMA foreign_key_check").fetchall():
                        raise MetadataVersionError(
                            f"metadata database {self.url}: rebuilding table {name} for schema version "
                            f"{t.DB_SCHEMA_VERSION} broke a foreign key; nothing was changed")
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                finally:
                    db.execute("PRAGMA foreign_keys=ON")
                    db.isolation_level = ""
            finally:
                raw.close()

    def _migrate(self, conn: Connection, stored: int) -> None:
        """Add the nullable columns newer versions introduced; refuse any other difference."""
        from sqlalchemy import inspect as sa_inspect
        from sqlalchemy.schema import CreateColumn

        have = sa_inspect(conn)
        for table in t.metadata.sorted_tables:
            existing = {c["name"] for c in have.get_columns(table.name)}
            for col in table.columns:
                if col.name in existing:
                    continue
                if not col.nullable:
                    raise MetadataVersionError(
                        f"metadata database {self.url} (schema version {stored}) lacks the required column "
                        f"{table.name}.{col.name}; point metadata.url at a new database")
                ddl = CreateColumn(col).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
        conn.execute(t.schema_meta.update().where(t.schema_meta.c.key == "db_schema_version")
                     .values(value=str(t.DB_SCHEMA_VERSION)))

    def close(self) -> None:
        """Release pooled connections (lets the SQLite file be removed on Windows)."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writing

    def record_run(self, run: RunRecord) -> None:
        """Write a run and everything it produced, all or nothing.

        One ``engine.begin()`` transaction: a failing insert (bad record, killed
        process) rolls back the version, run and detail rows together. Detail
        rows go in as executemany batches so 100k lineage rows stay fast. A run
        started with :meth:`begin_run` has its open row completed; any other
        run id must be new.
        """
        self._require_writable("record a run")
        config_hash = hashlib.sha256(run.config_json.encode("utf-8")).hexdigest()
        now = _now()
        inputs_json = _dumps(run.input_fingerprints)
        with self.engine.begin() as conn:
            existing = conn.execute(select(t.runs.c.status).where(t.runs.c.run_id == run.run_id)).first()
            if existing is not None and existing.status not in t.OPEN_STATUSES:
                raise ValueError(f"run {run.run_id!r} is already recorded; every run needs a fresh run_id")
            self._store_config(conn, config_hash, run.config_json, now)
            version_id = conn.execute(
                select(t.dataset_versions.c.id).where(t.dataset_versions.c.fingerprint == run.fingerprint)
            ).scalar()
            if version_id is None:
                version_id = conn.execute(insert(t.dataset_versions).values(
                    fingerprint=run.fingerprint, dataset_name=run.dataset_name,
                    semantic_version=run.dataset_version, code_version=run.code_version,
                    config_hash=config_hash, input_fingerprints_json=inputs_json, created_at=now,
                )).inserted_primary_key[0]
            row = {
                "run_id": run.run_id, "version_id": version_id, "fingerprint": run.fingerprint,
                "config_hash": config_hash, "started_at": run.started_at, "finished_at": run.finished_at,
                "runner": run.runner, "workers": run.workers, "status": run.status,
                "code_version": run.code_version, "output_dir": run.output_dir,
                "split_sizes_json": _dumps(run.split_sizes), "input_fingerprints_json": inputs_json,
                "recorded_at": now, "dataset_name": run.dataset_name, "dataset_version": run.dataset_version,
                "units_cached": run.units_cached, "windows_kept": run.windows_kept,
                "peak_rss_mib": run.peak_rss_mib, "alerts": len(run.alerts),
            }
            if existing is None:
                conn.execute(insert(t.runs), [row])
            else:
                conn.execute(t.runs.update().where(t.runs.c.run_id == run.run_id).values(**row))
            links = [{"run_id": run.run_id, "source": s.source, "schema_id": self._register(conn, s)[0]}
                     for s in run.schemas]
            self._bulk(conn, t.run_schemas, links)
            for attr, table in t.DETAIL_TABLES.items():
                self._bulk(conn, table, t.record_rows(getattr(run, attr), run.run_id))

    @staticmethod
    def _store_config(conn: Connection, config_hash: str, config_json: str, now: str) -> None:
        if conn.execute(select(t.configs.c.hash).where(t.configs.c.hash == config_hash)).first() is None:
            conn.execute(insert(t.configs), [{"hash": config_hash, "config_json": config_json, "created_at": now}])

    def begin_run(self, start: RunStart) -> None:
        """Commit a ``running`` row for a run that starts now (its stage is ``plan``).

        Committed before any work, so a run killed at any instant leaves a row;
        :meth:`finish_run` (or :meth:`record_run`) completes it.
        """
        self._require_writable("record a run")
        config_hash = hashlib.sha256(start.config_json.encode("utf-8")).hexdigest()
        now = _now()
        with self.engine.begin() as conn:
            if conn.execute(select(t.runs.c.id).where(t.runs.c.run_id == start.run_id)).first() is not None:
                raise ValueError(f"run {start.run_id!r} is already recorded; every run needs a fresh run_id")
            self._store_config(conn, config_hash, start.config_json, now)
            conn.execute(insert(t.runs), [{
                "run_id": start.run_id, "config_hash": config_hash, "started_at": start.started_at,
                "runner": start.runner, "workers": start.workers, "status": "running", "stage": "plan",
                "code_version": start.code_version, "output_dir": start.output_dir, "split_sizes_json": "{}",
                "input_fingerprints_json": "{}", "recorded_at": now, "pid": start.pid, "host": start.host,
                "dataset_name": start.dataset_name, "dataset_version": start.dataset_version,
            }])

    def update_run(self, run_id: str, **values: Any) -> None:
        """Set columns of a run's row (stage reached, fingerprint once known, resolved label...), committed."""
        self._require_writable("update a run")
        if "split_sizes" in values:
            values["split_sizes_json"] = _dumps(values.pop("split_sizes"))
        with self.engine.begin() as conn:
            conn.execute(t.runs.update().where(t.runs.c.run_id == run_id).values(**values))

    def finish_run(self, run_id: str, status: str, error: str | None = None, **values: Any) -> None:
        """Close a run's row: its final status, the time, and the error (first line only) if it failed."""
        if status not in t.RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; one of {', '.join(t.RUN_STATUSES)}")
        if error is not None:
            error = (error.strip().splitlines() or [""])[0][:2000]
        self.update_run(run_id, status=status, error=error, finished_at=_now(), **values)

    def publish_version(self, run_id: str) -> None:
        """A publishing run's version is on disk: mark the run ``succeeded`` (one committed update)."""
        self._require_writable("publish a version")
        with self.engine.begin() as conn:
            conn.execute(t.runs.update().where(t.runs.c.run_id == run_id)
                         .values(status="succeeded", stage="done", finished_at=_now()))

    def record_alerts(self, run_id: str, alerts: list) -> None:
        """Record a run's breached ``quality.alerts`` rules (``AlertRecord``) when its record will not be (a
        ``--strict`` stop before the publish): rows in ``run_alerts``, their number in ``runs.alerts``."""
        with self.engine.begin() as conn:
            self._bulk(conn, t.run_alerts, t.record_rows(list(alerts), run_id))
            conn.execute(t.runs.update().where(t.runs.c.run_id == run_id).values(alerts=len(alerts)))

    def add_stage_timings(self, run_id: str, seconds: dict[str, float], peak_rss_mib: float | None = None) -> None:
        """Append stage timings measured after the run's record was written (its publish, its total) and, when
        given, set its peak resident memory."""
        with self.engine.begin() as conn:
            self._bulk(conn, t.stage_timings, [{"run_id": run_id, "stage": k, "seconds": float(v)}
                                                for k, v in seconds.items()])
            if peak_rss_mib is not None:
                conn.execute(t.runs.update().where(t.runs.c.run_id == run_id).values(peak_rss_mib=peak_rss_mib))

    def open_runs(self, output_dir: str | None = None) -> list[dict[str, Any]]:
        """Runs still marked running or publishing (of ``output_dir`` if given), oldest first."""
        rc = t.runs.c
        stmt = select(t.runs).where(rc.status.in_(t.OPEN_STATUSES)).order_by(rc.id)
        if output_dir is not None:
            stmt = stmt.where(rc.output_dir == output_dir)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def list_runs(self, output_dir: str | None = None) -> list[dict[str, Any]]:
        """Every run, newest first: status, stage, error, label, fingerprint, times, windows per split."""
        rc = t.runs.c
        stmt = select(t.runs).order_by(rc.id.desc())
        if output_dir is not None:
            stmt = stmt.where(rc.output_dir == output_dir)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        out = []
        for r in rows:
            d = {k: v for k, v in r.items() if k not in ("id", "version_id", "split_sizes_json",
                                                         "input_fingerprints_json")}
            d["split_sizes"] = json.loads(r["split_sizes_json"] or "{}")
            out.append(d)
        return out

    @staticmethod
    def _bulk(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:  # executemany with no parameter sets is an error
            conn.execute(insert(table), rows)

    def register_schema(self, schema: SchemaRecord) -> int:
        """Store a source schema once per content and return its version for that source.

        Schemas are named by source (dataset) because configurable adapters
        (long_table) declare a different schema per source.

        An unchanged schema (same fingerprint) returns its stored version; a
        changed one gets ``max(declared, latest stored + 1)`` so versions stay
        unique and in order of appearance even if an adapter forgot to bump.
        """
        self._require_writable("register a schema")
        with self.engine.begin() as conn:
            return self._register(conn, schema)[1]

    @staticmethod
    def _register(conn: Connection, s: SchemaRecord) -> tuple[int, int]:
        sc = t.schemas.c
        row = conn.execute(
            select(sc.id, sc.version).where(sc.source == s.source, sc.fingerprint == s.fingerprint)
        ).first()
        if row is not None:
            return row.id, row.version
        latest = conn.execute(select(func.max(sc.version)).where(sc.source == s.source)).scalar() or 0
        version = max(int(s.version), latest + 1)
        new_id = conn.execute(insert(t.schemas).values(
            source=s.source, adapter=s.adapter, version=version, declared_version=int(s.version),
            fingerprint=s.fingerprint, schema_json=s.schema_json, created_at=_now(),
        )).inserted_primary_key[0]
        return new_id, version

    def audit(self, event: str, subject: str, details: dict[str, Any] | None = None,
              versions: Iterable[str] = (), actor: str | None = None) -> None:
        """Append an audit row (run, key rotation, erasure) with its own commit.

        ``actor`` defaults to the OS user running this process, ``versions`` are the ``name/x.y.z`` labels the
        event wrote or changed. Callers pass run ids and key digests, never raw participant ids or keys.
        """
        self._require_writable("append an audit row")
        from sensorpipe._version import code_version

        with self.engine.begin() as conn:
            conn.execute(insert(t.privacy_audit), [{
                "event": event, "subject": subject, "at": _now(), "details_json": _dumps(details or {}),
                "actor": actor or _os_user(), "code_version": code_version(),
                "versions_json": _dumps(sorted(versions)),
            }])

    def purge_pseudonymized_rows(self, output_dir: str, keep_run_id: str) -> dict[str, int]:
        """Delete the rows that carry participant pseudonyms (lineage, unit accounting, unit devices, unit errors,
        quarantine counts) of every run of ``output_dir`` but ``keep_run_id``; returns the rows removed per table.

        Used by key rotation: those rows hold the old key's pseudonyms. Runs, versions, statistics and quality
        rows stay. On SQLite the file is then vacuumed (and its WAL truncated), so the deleted rows do not
        linger in free pages.
        """
        self._require_writable("delete rows")
        tables = (t.lineage, t.unit_accounting, t.unit_devices, t.unit_errors, t.quarantine_counts)
        removed = {}
        with self.engine.begin() as conn:
            old = select(t.runs.c.run_id).where(t.runs.c.output_dir == output_dir, t.runs.c.run_id != keep_run_id)
            for table in tables:
                removed[table.name] = conn.execute(table.delete().where(table.c.run_id.in_(old))).rowcount
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    # ------------------------------------------------------------------ reading

    def list_versions(self) -> list[dict[str, Any]]:
        """Dataset versions, newest first, with run count, last run status, split sizes and publish state.

        Split sizes and times come from the latest succeeded run (a failed run
        may have recorded none), else from the latest run. ``status`` is the
        version's: ``published`` when a run of it succeeded and no later
        fingerprint was published under the same label (output folder, name,
        version), ``replaced`` when one was (``--overwrite``), else the status of
        its last run (a version recorded by a run that died before its rename).
        """
        with self.engine.connect() as conn:
            versions = conn.execute(select(t.dataset_versions).order_by(t.dataset_versions.c.id.desc())).mappings().all()
            rc = t.runs.c
            all_runs = conn.execute(
                select(rc.id, rc.version_id, rc.run_id, rc.status, rc.split_sizes_json, rc.started_at, rc.finished_at,
                       rc.output_dir, rc.windows_kept, rc.alerts).order_by(rc.id)
            ).all()
        by_version: dict[int, list[Any]] = {}
        for r in all_runs:
            by_version.setdefault(r.version_id, []).append(r)
        holder: dict[tuple, tuple[int, int]] = {}   # label -> (id of its latest succeeded run, version id)
        for v in versions:
            for r in by_version.get(v["id"], []):
                if r.status == "succeeded":
                    label = (r.output_dir, v["dataset_name"], v["semantic_version"])
                    holder[label] = max(holder.get(label, (-1, -1)), (r.id, v["id"]))
        out = []
        for v in versions:
            vr = by_version.get(v["id"], [])
            ok = [r for r in vr if r.status == "succeeded"]
            sizes_from = ok[-1] if ok else (vr[-1] if vr else None)
            if ok:
                label = (ok[-1].output_dir, v["dataset_name"], v["semantic_version"])
                status = "published" if holder[label][1] == v["id"] else "replaced"
            else:
                status = vr[-1].status if vr else "unknown"
            out.append({
                "dataset_name": v["dataset_name"], "semantic_version": v["semantic_version"],
                "fingerprint": v["fingerprint"], "created_at": v["created_at"],
                "code_version": v["code_version"], "config_hash": v["config_hash"],
                "n_runs": len(vr), "last_run_id": vr[-1].run_id if vr else None,
                "last_status": vr[-1].status if vr else None, "status": status,
                "split_sizes": json.loads(sizes_from.split_sizes_json) if sizes_from else {},
                "run_id": sizes_from.run_id if sizes_from else None,
                "started_at": sizes_from.started_at if sizes_from else None,
                "finished_at": sizes_from.finished_at if sizes_from else None,
                "output_dir": sizes_from.output_dir if sizes_from else None,
                "alerts": sizes_from.alerts if sizes_from else None,   # breached quality.alerts rules
            })
        return out

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its dataset version, config and schemas; None if unknown."""
        with self.engine.connect() as conn:
            return self._run_dict(conn, select(t.runs).where(t.runs.c.run_id == run_id))

    def latest_run(self, fingerprint: str | None = None, status: str | None = None) -> dict[str, Any] | None:
        """The most recently recorded run (of ``fingerprint`` / with ``status`` if given)."""
        stmt = select(t.runs).order_by(t.runs.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            if fingerprint is not None:
                stmt = stmt.where(t.runs.c.fingerprint == self._resolve_fingerprint(conn, fingerprint))
            if status is not None:
                stmt = stmt.where(t.runs.c.status == status)
            return self._run_dict(conn, stmt)

    def normalization(self, fingerprint: str) -> dict[str, dict[str, Any]]:
        """Normalization parameters by channel, as fitted (on train) by the version's run."""
        rows = self._detail(t.normalization_params, fingerprint, ("channel",))
        return {r.pop("channel"): r for r in rows}

    def channel_stats(self, fingerprint: str, split: str | None = None) -> list[dict[str, Any]]:
        """Per-split, per-channel statistics, ordered by split then channel."""
        where = [t.channel_stats.c.split == split] if split is not None else []
        return self._detail(t.channel_stats, fingerprint, ("split", "channel"), where)

    def file_rows(self, fingerprint: str) -> list[dict[str, Any]]:
        """Rows in, accepted and quarantined per source file (by token); none for a run recorded before the
        table existed."""
        return self._detail(t.file_rows, fingerprint, ("source", "source_file"))

    def quality(self, fingerprint: str) -> list[dict[str, Any]]:
        """Quality metrics (scope, name, value), ordered by scope then name."""
        return self._detail(t.quality_metrics, fingerprint, ("scope", "name"))

    def quantiles(self, fingerprint: str) -> dict[tuple[str, str], list[float]]:
        """(split, channel) -> the channel's values at ``tables.QUANTILE_LEVELS`` (NaN where unobserved);
        empty for a run recorded before schema version 5."""
        rows = self._detail(t.channel_quantiles, fingerprint, ("split", "channel"))
        return {(r["split"], r["channel"]): [math.nan if v is None else v for v in json.loads(r["values_json"])]
                for r in rows}

    def stage_timings(self, fingerprint: str) -> dict[str, float]:
        """Stage -> wall seconds of the version's run, in the order recorded."""
        rows = self._detail(t.stage_timings, fingerprint, ("id",))
        return {r["stage"]: r["seconds"] for r in rows}

    def alerts(self, fingerprint: str) -> list[dict[str, Any]]:
        """The breached ``quality.alerts`` rules of the version's run (rule, scope, value, threshold, message)."""
        return self._detail(t.run_alerts, fingerprint, ("id",))

    def quarantine(self, fingerprint: str) -> list[dict[str, Any]]:
        """Quarantined row counts by source, file and reason."""
        return self._detail(t.quarantine_counts, fingerprint, ("source", "source_file", "reason"))

    def units(self, fingerprint: str) -> list[dict[str, Any]]:
        """Row and window accounting per unit (source, participant)."""
        return self._detail(t.unit_accounting, fingerprint, ("source", "participant"))

    def devices(self, fingerprint: str) -> list[dict[str, Any]]:
        """The recording devices per unit, source and file (model, serial digest, epoch); empty for a run
        recorded before schema version 6 or without device-naming sources."""
        return self._detail(t.unit_devices, fingerprint, ("study", "participant", "source", "id"))

    def lineage(self, window_key: str, fingerprint: str | None = None) -> dict[str, Any] | None:
        """Where a window came from (files, row ranges, stage hashes, and the recording device of each file
        that names one), from the latest run that wrote it (of ``fingerprint`` if given); None if no run
        recorded the key."""
        lc, rc = t.lineage.c, t.runs.c
        stmt = (select(t.lineage, rc.fingerprint).join(t.runs, rc.run_id == lc.run_id)
                .where(lc.window_key == window_key).order_by(rc.id.desc()).limit(1))
        with self.engine.connect() as conn:
            if fingerprint is not None:
                stmt = stmt.where(rc.fingerprint == self._resolve_fingerprint(conn, fingerprint))
            row = conn.execute(stmt).mappings().first()
            if row is None:
                return None
            files = json.loads(row["source_files_json"])
            dc = t.unit_devices.c
            devices = [{"source_file": d.source_file, "source": d.source, "device_model": d.device_model,
                        "device_serial": d.device_serial, "epoch_s": d.epoch_s} for d in conn.execute(
                select(t.unit_devices).where(dc.run_id == row["run_id"], dc.participant == row["participant"],
                                             dc.study == row["source"]).order_by(dc.id)) if d.source_file in files]
        return {
            "window_key": row["window_key"], "run_id": row["run_id"], "fingerprint": row["fingerprint"],
            "split": row["split"], "source": row["source"], "participant": row["participant"],
            "source_files": files,
            "row_ranges": json.loads(row["row_ranges_json"]),
            "stage_hashes": json.loads(row["stage_hashes_json"]),
            "devices": devices,
        }

    def _schema_key(self, conn: Connection, name: str):
        """Schemas are looked up by source name, or by adapter name when no source has that name."""
        sc = t.schemas.c
        by_source = conn.execute(select(func.count()).where(sc.source == name)).scalar()
        return sc.source == name if by_source else sc.adapter == name

    def schema_versions(self, name: str) -> list[dict[str, Any]]:
        """Stored schema versions of a source (or of every source of an adapter), oldest first."""
        sc = t.schemas.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sc.version, sc.declared_version, sc.fingerprint, sc.source, sc.adapter, sc.created_at)
                .where(self._schema_key(conn, name)).order_by(sc.source, sc.version)
            ).mappings().all()
        return [dict(r) for r in rows]

    def get_schema(self, name: str, version: int) -> dict[str, Any]:
        """One stored schema (by source name, or adapter name) with its parsed body under ``schema``."""
        sc = t.schemas.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.schemas).where(self._schema_key(conn, name), sc.version == version)
                               .order_by(sc.source)).mappings().first()
        if row is None:
            known = [v["version"] for v in self.schema_versions(name)]
            raise MetadataNotFound(
                f"no schema version {version} for {name!r}; stored versions: {known or 'none'}"
            )
        out = {k: row[k] for k in ("adapter", "source", "version", "declared_version", "fingerprint",
                                   "schema_json", "created_at")}
        out["schema"] = json.loads(row["schema_json"])
        return out

    def audit_log(self, subject: str | None = None) -> list[dict[str, Any]]:
        """Privacy audit events in order, optionally for one subject."""
        stmt = select(t.privacy_audit).order_by(t.privacy_audit.c.id)
        if subject is not None:
            stmt = stmt.where(t.privacy_audit.c.subject == subject)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [{"event": r["event"], "subject": r["subject"], "at": r["at"], "actor": r["actor"],
                 "code_version": r["code_version"], "versions": json.loads(r["versions_json"] or "[]"),
                 "details": json.loads(r["details_json"])} for r in rows]

    # ------------------------------------------------------------------ helpers

    def _resolve_fingerprint(self, conn: Connection, fingerprint: str) -> str:
        """Exact fingerprint, or a unique prefix of one (as typed from a report)."""
        vc = t.dataset_versions.c
        if conn.execute(select(vc.fingerprint).where(vc.fingerprint == fingerprint)).first():
            return fingerprint
        hits = conn.execute(
            select(vc.fingerprint).where(vc.fingerprint.startswith(fingerprint, autoescape=True)).limit(2)
        ).scalars().all()
        if len(hits) == 1:
            return hits[0]
        what = "is ambiguous" if hits else "matches no dataset version"
        raise MetadataNotFound(f"fingerprint {fingerprint!r} {what}; see MetadataStore.list_versions()")

    def _run_for(self, conn: Connection, fingerprint: str) -> str:
        """Run whose details represent a fingerprint: latest succeeded, else latest."""
        rc = t.runs.c
        fp = self._resolve_fingerprint(conn, fingerprint)
        return conn.execute(
            select(rc.run_id).where(rc.fingerprint == fp)
            .order_by(case((rc.status == "succeeded", 0), else_=1), rc.id.desc()).limit(1)
        ).scalar_one()

    def _detail(self, table: Table, fingerprint: str, order: Iterable[str],
                where: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            run_id = self._run_for(conn, fingerprint)
            rows = conn.execute(
                select(table).where(table.c.run_id == run_id, *where).order_by(*(table.c[o] for o in order))
            ).mappings().all()
        return [t.nan_floats(table, {k: v for k, v in r.items() if k not in ("id", "run_id")}) for r in rows]

    @staticmethod
    def _run_dict(conn: Connection, stmt: Any) -> dict[str, Any] | None:
        row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        run = {k: v for k, v in row.items() if k not in ("id", "version_id", "split_sizes_json",
                                                         "input_fingerprints_json")}
        run["input_fingerprints"] = json.loads(row["input_fingerprints_json"] or "{}")
        v = conn.execute(select(t.dataset_versions).where(t.dataset_versions.c.id == row["version_id"])).mappings().first()
        if v is not None:     # a run that never recorded a version (failed early) keeps the label it aimed at
            run["dataset_name"], run["dataset_version"] = v["dataset_name"], v["semantic_version"]
        run["split_sizes"] = json.loads(row["split_sizes_json"] or "{}")
        run["config_json"] = conn.execute(
            select(t.configs.c.config_json).where(t.configs.c.hash == row["config_hash"])).scalar_one()
        sc, lc = t.schemas.c, t.run_schemas.c
        run["schemas"] = [dict(r) for r in conn.execute(
            select(lc.source, sc.adapter, sc.version, sc.fingerprint)
            .join(t.schemas, sc.id == lc.schema_id).where(lc.run_id == row["run_id"]).order_by(lc.source)
        ).mappings()]
        return run
