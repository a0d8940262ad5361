"""Table definitions of the metadata database (SQLAlchemy Core, one MetaData).

Kept apart from :mod:`sensorpipe.metadata.store` so the store module holds only
behaviour. Plain column types (strings for ISO-8601 UTC timestamps, JSON as
text) keep the schema portable between SQLite and PostgreSQL.

Per-run detail tables (stats, normalization, quality, quarantine, units,
lineage) hang off ``runs.run_id`` rather than the dataset version: a re-run of
the same fingerprint may fail half-way or be recorded twice, and keeping its
rows separate means nothing is overwritten; readers pick the run they want
(by default the latest succeeded run of a fingerprint).

Float statistic columns are nullable because SQLite stores NaN as NULL (a
channel never observed in a split has NaN mean/std); the store reads NULL
back as NaN.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from sensorpipe.metadata.records import QUANTILE_LEVELS  # noqa: F401 - the levels of channel_quantiles

#: Bump when the table layout changes; stored in ``schema_meta``.
DB_SCHEMA_VERSION = 6   # 2: normalization_params gained center/scale/clip/fallback/quantile columns
#  3: every run is recorded from its start: runs.version_id/fingerprint/finished_at became nullable (a run that
#     fails before its fingerprint exists has neither) and runs gained stage, error, pid, host, the label it
#     writes, units_cached and windows_kept; and the table unit_errors
#  4: privacy_audit gained actor, code_version and versions_json (who did it, with which code, to which versions)
#  5: runs gained peak_rss_mib and alerts (breached quality.alerts rules); tables channel_quantiles (drift),
#     stage_timings and run_alerts
#  6: table unit_devices (each unit's recording devices per source file: model, serial digest, epoch)

metadata = MetaData()

schema_meta = Table(
    "schema_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

configs = Table(
    "configs",
    metadata,
    Column("hash", String(64), primary_key=True),  # sha256 of config_json
    Column("config_json", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(128), nullable=False, unique=True),
    Column("dataset_name", String(256), nullable=False),
    Column("semantic_version", String(64), nullable=False),
    Column("code_version", String(128), nullable=False),
    Column("config_hash", String(64), ForeignKey("configs.hash"), nullable=False),
    Column("input_fingerprints_json", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

#: Run statuses. A run's row is committed at its start (``running``) and updated at each stage, so a killed
#: run leaves its row; a later run or ``sensorpipe versions`` turns the row of a run whose process is gone
#: into ``interrupted``. ``publishing``: the version is complete in staging and recorded, the rename is next.
#: ``unchanged``: the label already held this fingerprint, nothing was written.
RUN_STATUSES = ("running", "publishing", "succeeded", "unchanged", "failed", "interrupted")
OPEN_STATUSES = ("running", "publishing")

#: Runs: a row per run attempt. ``version_id`` and ``fingerprint`` stay NULL until the run knows its
#: fingerprint (after pass 1) and has recorded its version (at publish); ``finished_at`` until it ends.
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # insertion order
    Column("run_id", String(128), nullable=False, unique=True),
    Column("version_id", Integer, ForeignKey("dataset_versions.id")),     # NULL: not recorded as a version
    Column("fingerprint", String(128), index=True),                       # NULL: failed before it was known
    Column("config_hash", String(64), ForeignKey("configs.hash"), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),                                    # NULL: still running (or killed)
    Column("runner", String(64), nullable=False),
    Column("workers", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("code_version", String(128), nullable=False),
    Column("output_dir", Text, nullable=False),
    Column("split_sizes_json", Text, nullable=False),
    Column("input_fingerprints_json", Text, nullable=False),
    Column("recorded_at", String(40), nullable=False),
    Column("stage", String(32)),             # the last stage reached: plan, pass1, pass2, write, publish, done
    Column("error", Text),                   # one line, for failed and interrupted runs
    Column("pid", Integer),                  # of the driver process, with its host: tells a live run from a dead one
    Column("host", String(256)),
    Column("dataset_name", String(256)),     # the label the run writes (output.name / the resolved version)
    Column("dataset_version", String(64)),
    Column("units_cached", Integer),         # units whose pass 1 came from the cache
    Column("windows_kept", Integer),
    Column("peak_rss_mib", Float),          # the highest resident memory of the driver and its workers
    Column("alerts", Integer),              # breached quality.alerts rules (rows in run_alerts); NULL: not checked
)

#: Columns v2 declared NOT NULL that version 3 allows to be NULL (relaxed by the migration).
RELAXED_IN_3 = {"runs": ("version_id", "fingerprint", "finished_at")}

schemas = Table(
    "schemas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(256), nullable=False),
    Column("adapter", String(256), nullable=False),
    Column("version", Integer, nullable=False),  # stored version, monotonic per source (the schema's name)
    Column("declared_version", Integer, nullable=False),  # what the adapter declared
    Column("fingerprint", String(128), nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("source", "fingerprint", name="uq_schemas_source_fingerprint"),
    UniqueConstraint("source", "version", name="uq_schemas_source_version"),
)

run_schemas = Table(
    "run_schemas",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id"), primary_key=True),
    Column("source", String(256), primary_key=True),  # sources may share a schema
    Column("schema_id", Integer, ForeignKey("schemas.id"), nullable=False),
)


def _run_fk() -> Column:
    return Column("run_id", String(128), ForeignKey("runs.run_id"), nullable=False, index=True)


channel_stats = Table(
    "channel_stats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("split", String(64), nullable=False),
    Column("channel", String(128), nullable=False),
    Column("count", Integer, nullable=False),
    Column("mean", Float),  # NULL = NaN
    Column("std", Float),  # NULL = NaN
    Column("min", Float),  # NULL = NaN
    Column("max", Float),  # NULL = NaN
    Column("missing_ratio", Float),  # NULL = NaN
)

file_rows = Table(   # rows in = accepted + quarantined per source file (records.FileRowsRecord)
    "file_rows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("source", String(256), nullable=False),
    Column("source_file", Text, nullable=False),
    Column("rows_in", Integer, nullable=False),
    Column("rows_accepted", Integer, nullable=False),
    Column("rows_quarantined", Integer, nullable=False),
)

normalization_params = Table(
    "normalization_params",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("channel", String(128), nullable=False),
    Column("method", String(32), nullable=False),
    Column("mean", Float),  # NULL = NaN
    Column("std", Float),  # NULL = NaN
    Column("clip_sigma", Float),  # NULL = NaN
    Column("fitted_on_split", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    *(Column(name, Float) for name in ("center", "scale", "clip_low", "clip_high", "fallback", "median", "iqr",
                                      "min", "max", "quantile_error")),  # NULL = NaN (clip_low/high: unclipped)
)

quality_metrics = Table(
    "quality_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("scope", String(256), nullable=False),
    Column("name", String(256), nullable=False),
    Column("value", Float),  # NULL = NaN
)

quarantine_counts = Table(
    "quarantine_counts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("source", String(256), nullable=False),
    Column("source_file", Text, nullable=False),
    Column("reason", String(256), nullable=False),
    Column("count", Integer, nullable=False),
)

unit_accounting = Table(
    "unit_accounting",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("source", String(256), nullable=False),
    Column("participant", String(256), nullable=False),
    Column("split", String(64), nullable=False),
    Column("rows_in", Integer, nullable=False),
    Column("rows_accepted", Integer, nullable=False),
    Column("rows_quarantined", Integer, nullable=False),
    Column("raw_samples_in", Integer, nullable=False),
    Column("windows_kept", Integer, nullable=False),
    Column("windows_dropped", Integer, nullable=False),
)

lineage = Table(
    "lineage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("window_key", String(512), nullable=False),
    Column("split", String(64), nullable=False),
    Column("source", String(256), nullable=False),
    Column("participant", String(256), nullable=False),
    Column("source_files_json", Text, nullable=False),
    Column("row_ranges_json", Text, nullable=False),
    Column("stage_hashes_json", Text, nullable=False),
    Index("ix_lineage_window_key", "window_key"),
)

def _unit_file_columns() -> list[Column]:
    """What names one source file of a unit: its study, the person's pseudonym, the source and the file's token
    (privacy/paths.py)."""
    return [Column("study", String(256), nullable=False), Column("participant", String(256), nullable=False),
            Column("source", String(256), nullable=False), Column("source_file", Text, nullable=False)]


#: The recording device of each source file of a unit that names one (the actigraphy formats): model, serial
#: (a keyed digest, ``serial:<16 hex>``; "" when the file gives none) and epoch length. Counts are per device
#: and epoch, so a window's lineage shows them beside its files (``sensorpipe lineage``).
unit_devices = Table(
    "unit_devices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    *_unit_file_columns(),
    Column("device_model", String(256), nullable=False),
    Column("device_serial", String(64), nullable=False),
    Column("epoch_s", Float, nullable=False),
)

unit_errors = Table(
    "unit_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    *_unit_file_columns(),
    Column("stage", String(32), nullable=False),
    Column("error", Text, nullable=False),
)

#: The audit trail: one row per run, key rotation and erasure. ``subject`` is a run id, never a raw
#: participant id; keys appear only as their digests (privacy.pseudonym.key_digest). The three columns
#: version 4 added are nullable, so a version-3 database gains them by ``ALTER TABLE ... ADD COLUMN``.
privacy_audit = Table(
    "privacy_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event", String(128), nullable=False),           # run, rotate-key, ...
    Column("subject", String(512), nullable=False, index=True),
    Column("at", String(40), nullable=False),
    Column("details_json", Text, nullable=False),
    Column("actor", String(256)),                           # the OS user who ran the command
    Column("code_version", String(128)),                    # sensorpipe's code version
    Column("versions_json", Text),                          # the dataset versions it wrote or changed
)

#: Quantiles of each channel's observed values per split (and ``all``), from the merged histogram sketches
#: (processing/sketch.py): ``values_json`` holds the values at :data:`QUANTILE_LEVELS` (null where the split
#: never observed the channel). Drift between versions (quality/drift.py) reads them.
channel_quantiles = Table(
    "channel_quantiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("split", String(64), nullable=False),
    Column("channel", String(128), nullable=False),
    Column("values_json", Text, nullable=False),
)


#: Wall seconds of each stage of a run (plan, pass1, pass2, write, metadata, report, total).
stage_timings = Table(
    "stage_timings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("stage", String(64), nullable=False),
    Column("seconds", Float, nullable=False),
)

#: Breached ``quality.alerts`` rules of a run: the rule, what it looked at, the value and the threshold.
run_alerts = Table(
    "run_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("rule", String(64), nullable=False),       # quarantine_share, missing_ratio, drift_psi, ...
    Column("scope", String(256), nullable=False),     # dataset, channel:<ch>, source:<name>, label:<name>
    Column("value", Float),                           # NULL = NaN
    Column("threshold", Float, nullable=False),
    Column("message", Text, nullable=False),
)

#: Per-run detail tables, keyed by the RunRecord attribute that fills them.
DETAIL_TABLES = {
    "channel_stats": channel_stats,
    "normalization": normalization_params,
    "quality": quality_metrics,
    "quarantine": quarantine_counts,
    "units": unit_accounting,
    "lineage": lineage,
    "unit_errors": unit_errors,
    "quantiles": channel_quantiles,
    "stage_timings": stage_timings,
    "alerts": run_alerts,
    "file_rows": file_rows,
    "devices": unit_devices,
}


def record_rows(records: list[Any], run_id: str) -> list[dict[str, Any]]:
    """Records -> parameter dicts for executemany.

    Record field names are the column names; a field without a column makes
    SQLAlchemy raise, so a new record field cannot be dropped silently.
    """
    if not records:
        return []
    names = tuple(records[0].__dataclass_fields__)
    get = attrgetter(*names)
    return [dict(zip(names, get(r)), run_id=run_id) for r in records]


def nan_floats(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """SQLite stores NaN as NULL; give readers NaN back in float columns."""
    for col in table.c:
        if row.get(col.name, 0) is None and col.nullable and col.type.python_type is float:
            row[col.name] = math.nan
    return row
