"""MetadataStore: round trip, versions, atomicity, schema versioning, sqlite paths."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from sensorpipe.metadata import (
    ChannelStatRecord,
    LineageRecord,
    MetadataNotFound,
    MetadataStore,
    NormalizationRecord,
    QualityRecord,
    QuarantineRecord,
    RunRecord,
    SchemaRecord,
    UnitRecord,
)
from sensorpipe.metadata import tables as t

CHANNELS = {"heart_rate_bpm": (72.5, 11.0), "steps": (8.2, 20.1), "glucose_mg_dl": (104.0, 18.5)}


def make_schema(adapter: str = "fitbit_csv", fields: tuple[str, ...] = ("ts", "bpm"), version: int = 1,
                source: str = "cohort_a") -> SchemaRecord:
    body = json.dumps({"fields": list(fields)}, sort_keys=True)
    return SchemaRecord(source=source, adapter=adapter, version=version,
                        fingerprint=f"fp-{'-'.join(fields)}", schema_json=body)


def make_run(run_id: str = "run-1", fingerprint: str = "abc123def456", n_lineage: int = 100,
             status: str = "succeeded") -> RunRecord:
    stats = [
        ChannelStatRecord(split=split, channel=ch, count=1440 * (3 if split == "train" else 1),
                          mean=mu + (0.5 if split == "test" else 0.0), std=sd, min=mu - 3 * sd,
                          max=mu + 3 * sd, missing_ratio=0.1)
        for split in ("train", "test") for ch, (mu, sd) in CHANNELS.items()
    ]
    norm = [NormalizationRecord(channel=ch, method="zscore", mean=mu, std=sd, clip_sigma=5.0, count=4320)
            for ch, (mu, sd) in CHANNELS.items()]
    lineage = [
        LineageRecord(
            window_key=f"cohort_a/p{i % 4:02d}/{i:05d}", split="train" if i % 4 < 3 else "test",
            source="cohort_a", participant=f"p{i % 4:02d}",
            source_files_json=json.dumps([f"raw/p{i % 4:02d}.csv"]),
            row_ranges_json=json.dumps({f"raw/p{i % 4:02d}.csv": [i * 1440, i * 1440 + 1439]}),
            stage_hashes_json=json.dumps({"ingest": "h1", "window": "h2"}),
        )
        for i in range(n_lineage)
    ]
    units = [UnitRecord(source="cohort_a", participant=f"p{p:02d}", split="train" if p < 3 else "test",
                        rows_in=10_000, rows_accepted=9_990, rows_quarantined=10, raw_samples_in=0,
                        windows_kept=25, windows_dropped=2) for p in range(4)]
    return RunRecord(
        run_id=run_id, started_at="2024-05-01T10:00:00+00:00", finished_at="2024-05-01T10:05:00+00:00",
        runner="local", workers=1, status=status, dataset_name="wearables", dataset_version="1.2.0",
        fingerprint=fingerprint, code_version="0.1.0+g1234", config_json=json.dumps({"window_min": 1440}),
        output_dir="/tmp/out", input_fingerprints={"raw/p00.csv": "sha-0", "raw/p01.csv": "sha-1"},
        split_sizes={"train": 75, "test": 25}, schemas=[make_schema()], channel_stats=stats,
        normalization=norm,
        quality=[QualityRecord("dataset", "windows_kept", 100.0),
                 QualityRecord("channel:steps", "missing_ratio", 0.1),
                 QualityRecord("dataset", "windows_dropped:too_missing", 8.0)],
        quarantine=[QuarantineRecord("cohort_a", "raw/p01.csv", "out_of_range", 7),
                    QuarantineRecord("cohort_a", "raw/p01.csv", "bad_timestamp", 3)],
        units=units, lineage=lineage,
    )


@pytest.fixture
def store(tmp_path) -> MetadataStore:
    s = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    yield s
    s.close()


def count(store: MetadataStore, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_round_trip(store):
    store.record_run(make_run())

    (v,) = store.list_versions()
    assert (v["dataset_name"], v["semantic_version"], v["fingerprint"]) == ("wearables", "1.2.0", "abc123def456")
    assert (v["n_runs"], v["last_status"], v["split_sizes"]) == (1, "succeeded", {"train": 75, "test": 25})

    run = store.get_run("run-1")
    assert run["status"] == "succeeded" and run["runner"] == "local" and run["workers"] == 1
    assert run["input_fingerprints"] == {"raw/p00.csv": "sha-0", "raw/p01.csv": "sha-1"}
    assert json.loads(run["config_json"]) == {"window_min": 1440}
    assert run["schemas"] == [{"source": "cohort_a", "adapter": "fitbit_csv", "version": 1, "fingerprint": "fp-ts-bpm"}]
    assert store.get_run("nope") is None
    assert store.latest_run()["run_id"] == "run-1"

    norm = store.normalization("abc123def456")
    assert set(norm) == set(CHANNELS)
    glucose = dict(norm["glucose_mg_dl"])
    unset = {k: glucose.pop(k) for k in ("center", "scale", "clip_low", "clip_high", "fallback", "median", "iqr",
                                         "min", "max", "quantile_error")}
    assert glucose == {"method": "zscore", "mean": 104.0, "std": 18.5, "clip_sigma": 5.0,
                       "fitted_on_split": "train", "count": 4320}
    assert all(math.isnan(v) for v in unset.values())   # optional columns not given come back as NaN

    stats = store.channel_stats("abc123def456")
    assert len(stats) == 6 and [s["split"] for s in stats] == ["test"] * 3 + ["train"] * 3
    test_hr = store.channel_stats("abc123def456", split="test")
    assert [s["channel"] for s in test_hr] == sorted(CHANNELS)
    hr = next(s for s in test_hr if s["channel"] == "heart_rate_bpm")
    assert hr["mean"] == pytest.approx(73.0) and hr["count"] == 1440 and hr["max"] == pytest.approx(105.5)

    assert store.quality("abc123def456") == [
        {"scope": "channel:steps", "name": "missing_ratio", "value": 0.1},
        {"scope": "dataset", "name": "windows_dropped:too_missing", "value": 8.0},
        {"scope": "dataset", "name": "windows_kept", "value": 100.0},
    ]
    q = store.quarantine("abc123def456")
    assert {(r["reason"], r["count"]) for r in q} == {("out_of_range", 7), ("bad_timestamp", 3)}
    units = store.units("abc123def456")
    assert [u["participant"] for u in units] == ["p00", "p01", "p02", "p03"]
    assert all(u["rows_in"] == u["rows_accepted"] + u["rows_quarantined"] for u in units)

    lin = store.lineage("cohort_a/p01/00005")
    assert lin["run_id"] == "run-1" and lin["split"] == "train" and lin["participant"] == "p01"
    assert lin["source_files"] == ["raw/p01.csv"]
    assert lin["row_ranges"] == {"raw/p01.csv": [7200, 8639]}
    assert lin["stage_hashes"] == {"ingest": "h1", "window": "h2"}
    assert store.lineage("cohort_a/p09/99999") is None
    assert count(store, t.lineage) == 100


def test_nan_statistics_come_back_as_nan(store):
    run = make_run()
    run = replace(run, channel_stats=[ChannelStatRecord("val", "eda_us", 0, math.nan, math.nan, math.nan,
                                                        math.nan, 1.0)])
    store.record_run(run)
    (s,) = store.channel_stats("abc123def456", split="val")
    assert s["count"] == 0 and math.isnan(s["mean"]) and math.isnan(s["std"]) and s["missing_ratio"] == 1.0


def test_same_fingerprint_adds_run_not_version(store):
    store.record_run(make_run("run-1", status="failed"))
    store.record_run(make_run("run-2"))
    store.record_run(make_run("run-3", fingerprint="fff999"))

    versions = store.list_versions()
    assert [v["fingerprint"] for v in versions] == ["fff999", "abc123def456"]  # newest first
    assert [v["n_runs"] for v in versions] == [1, 2]
    assert versions[1]["last_status"] == "succeeded" and versions[1]["last_run_id"] == "run-2"
    assert count(store, t.dataset_versions) == 2 and count(store, t.runs) == 3
    assert count(store, t.configs) == 1  # identical config JSON stored once
    assert count(store, t.schemas) == 1  # unchanged schema stored once
    assert store.latest_run("abc123def456")["run_id"] == "run-2"
    assert store.latest_run(status="failed")["run_id"] == "run-1"
    assert store.latest_run("abc1")["run_id"] == "run-2"  # unique prefix resolves
    with pytest.raises(MetadataNotFound, match="matches no dataset version"):
        store.normalization("zzz")


def test_details_prefer_latest_succeeded_run(store):
    store.record_run(make_run("run-ok"))
    failed = replace(make_run("run-bad", status="failed"), quality=[QualityRecord("dataset", "windows_kept", 1.0)])
    store.record_run(failed)
    assert store.quality("abc123def456")[-1]["value"] == 100.0
    assert store.lineage("cohort_a/p00/00000")["run_id"] == "run-bad"  # latest run that wrote the key


def test_record_run_is_atomic(store):
    run = make_run(n_lineage=50)
    broken = LineageRecord(window_key=None, split="train", source="cohort_a", participant="p00",
                           source_files_json="[]", row_ranges_json="{}", stage_hashes_json="{}")
    run = replace(run, lineage=run.lineage + [broken])
    with pytest.raises(Exception, match="(?i)not null"):
        store.record_run(run)
    for table in (t.runs, t.dataset_versions, t.configs, t.schemas, t.run_schemas, t.channel_stats,
                  t.normalization_params, t.quality_metrics, t.unit_accounting, t.lineage):
        assert count(store, table) == 0, table.name
    assert store.list_versions() == []
    store.record_run(make_run())  # the store is still usable afterwards
    assert count(store, t.lineage) == 100


def test_atomic_when_a_later_insert_fails(store, monkeypatch):
    calls = {"n": 0}
    original = MetadataStore._bulk

    def failing(conn, table, rows):
        if table is t.lineage:
            raise RuntimeError("killed mid-write")
        calls["n"] += 1
        original(conn, table, rows)

    monkeypatch.setattr(MetadataStore, "_bulk", staticmethod(failing))
    with pytest.raises(RuntimeError, match="killed mid-write"):
        store.record_run(make_run())
    assert calls["n"] > 0  # earlier tables were written inside the transaction
    assert count(store, t.runs) == 0 and count(store, t.channel_stats) == 0


def test_schema_versioning(store):
    assert store.register_schema(make_schema()) == 1
    assert store.register_schema(make_schema()) == 1  # unchanged -> same version, no new row
    assert store.register_schema(make_schema(fields=("ts", "bpm", "spo2"))) == 2  # changed, declared 1 collides
    assert store.register_schema(make_schema(fields=("ts",), version=5)) == 5  # declared bump is kept
    assert store.register_schema(make_schema(fields=("x",), version=3)) == 6  # never goes backwards
    assert store.register_schema(make_schema(adapter="dexcom_csv", source="cohort_b")) == 1  # per source

    versions = store.schema_versions("fitbit_csv")
    assert [v["version"] for v in versions] == [1, 2, 5, 6]
    assert [v["declared_version"] for v in versions] == [1, 1, 5, 3]
    s2 = store.get_schema("fitbit_csv", 2)
    assert s2["schema"] == {"fields": ["ts", "bpm", "spo2"]} and s2["fingerprint"] == "fp-ts-bpm-spo2"
    with pytest.raises(MetadataNotFound, match=r"stored versions: \[1, 2, 5, 6\]"):
        store.get_schema("fitbit_csv", 3)

    store.record_run(replace(make_run(), schemas=[make_schema(fields=("ts", "bpm", "spo2"))]))
    assert store.get_run("run-1")["schemas"][0]["version"] == 2
    assert count(store, t.schemas) == 5


def test_sqlite_file_in_new_nested_directory(tmp_path):
    path = tmp_path / "a" / "b" / "c" / "metadata.db"
    s = MetadataStore(f"sqlite:///{path}")
    s.record_run(make_run(n_lineage=3))
    s.close()
    assert path.is_file()
    again = MetadataStore(f"sqlite:///{path}")  # create() is idempotent on an existing DB
    assert again.get_run("run-1")["status"] == "succeeded"
    with again.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    again.close()


def test_refuses_newer_db_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    MetadataStore(url).close()
    s = MetadataStore(url)
    with s.engine.begin() as conn:
        conn.execute(t.schema_meta.update().values(value="99"))
    s.close()
    from sensorpipe.metadata.store import MetadataVersionError

    with pytest.raises(MetadataVersionError, match="schema version 99, newer than"):
        MetadataStore(url)


def test_older_db_gains_the_new_nullable_columns(tmp_path):
    """A version-1 database (before the normalization columns) is upgraded in place, data kept."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = MetadataStore(url)
    store.record_run(make_run())
    store.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:   # turn it back into a version-1 file: drop a column added in version 2
        conn.exec_driver_sql("ALTER TABLE normalization_params DROP COLUMN quantile_error")
        conn.execute(t.schema_meta.update().values(value="1"))
    engine.dispose()
    upgraded = MetadataStore(url)
    with upgraded.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_meta.c.value)).scalar() == str(t.DB_SCHEMA_VERSION)
        cols = {c["name"] for c in sa.inspect(conn).get_columns("normalization_params")}
    assert "quantile_error" in cols
    assert upgraded.get_run("run-1") is not None
    upgraded.record_run(make_run(run_id="run-2"))   # and it can be written again


def test_audit_log(tmp_path):
    s = MetadataStore("sqlite://")  # in-memory works too
    s.audit("pseudonymize", "cohort_a/p01", {"salt_id": "k1"})
    s.audit("erase", "cohort_a/p02", None)
    log = s.audit_log()
    assert [(e["event"], e["subject"]) for e in log] == [("pseudonymize", "cohort_a/p01"), ("erase", "cohort_a/p02")]
    assert log[0]["details"] == {"salt_id": "k1"} and log[1]["details"] == {}
    assert s.audit_log("cohort_a/p02")[0]["event"] == "erase"


def test_audit_rows_say_who_with_which_code_and_versions(tmp_path):
    from sensorpipe._version import code_version

    s = MetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    s.audit("run", "run-1", {"status": "succeeded"}, versions=["tiny/1.0.1", "tiny/1.0.0"], actor="alice")
    s.audit("run", "run-2")
    first, second = s.audit_log()
    assert (first["actor"], first["versions"], first["code_version"]) == ("alice", ["tiny/1.0.0", "tiny/1.0.1"],
                                                                          code_version())
    import getpass

    assert second["actor"] == getpass.getuser() and second["versions"] == []


def _downgrade(url: str, version: int, *statements: str) -> None:
    """Turn a database back into an older schema version: run ``statements``, store ``version``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)
        conn.execute(t.schema_meta.update().values(value=str(version)))
    engine.dispose()


def test_a_v3_database_gains_the_audit_columns(tmp_path):
    """A schema-version-3 file (privacy_audit without actor, code_version, versions_json) opens and upgrades,
    its audit rows kept."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'v3.db'}"
    store = MetadataStore(url)
    store.audit("erase", "run-0", {"n": 1})
    store.close()
    _downgrade(url, 3, *(f"ALTER TABLE privacy_audit DROP COLUMN {col}"
                         for col in ("actor", "code_version", "versions_json")))
    upgraded = MetadataStore(url)
    with upgraded.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_meta.c.value)).scalar() == "6"
        cols = {c["name"] for c in sa.inspect(conn).get_columns("privacy_audit")}
    assert {"actor", "code_version", "versions_json"} <= cols
    old = upgraded.audit_log()
    assert [(e["event"], e["details"], e["actor"], e["versions"]) for e in old] == [("erase", {"n": 1}, None, [])]
    upgraded.audit("run", "run-1", actor="bob")
    assert upgraded.audit_log()[-1]["actor"] == "bob"


def test_a_v4_database_gains_timings_quantiles_and_alerts(tmp_path):
    """A schema-version-4 file (runs without peak_rss_mib and alerts; no stage_timings, channel_quantiles or
    run_alerts) opens, upgrades and takes a version-5 run; its old run reads back with no timings."""
    import sqlalchemy as sa

    from sensorpipe.metadata.records import AlertRecord, QuantileRecord, StageTimingRecord

    url = f"sqlite:///{tmp_path / 'v4.db'}"
    store = MetadataStore(url)
    store.record_run(make_run())
    store.close()
    _downgrade(url, 4, *(f"ALTER TABLE runs DROP COLUMN {col}" for col in ("peak_rss_mib", "alerts")),
               *(f"DROP TABLE {table}" for table in ("stage_timings", "channel_quantiles", "run_alerts")))
    upgraded = MetadataStore(url)
    with upgraded.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_meta.c.value)).scalar() == "6"
        assert {"peak_rss_mib", "alerts"} <= {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    assert upgraded.stage_timings("abc123def456") == {} and upgraded.quantiles("abc123def456") == {}
    assert upgraded.get_run("run-1")["peak_rss_mib"] is None
    upgraded.record_run(replace(make_run(run_id="run-2", fingerprint="fp-2"), peak_rss_mib=812.5,
                                stage_timings=[StageTimingRecord("pass1", 1.5), StageTimingRecord("pass2", 0.25)],
                                quantiles=[QuantileRecord("all", "heart_rate", "[50.0, null]")],
                                alerts=[AlertRecord("drift_psi", "channel:heart_rate", 1.2, 0.25, "m")]))
    assert upgraded.stage_timings("fp-2") == {"pass1": 1.5, "pass2": 0.25}
    q = upgraded.quantiles("fp-2")[("all", "heart_rate")]
    assert q[0] == 50.0 and math.isnan(q[1])
    assert upgraded.alerts("fp-2") == [{"rule": "drift_psi", "scope": "channel:heart_rate", "value": 1.2,
                                        "threshold": 0.25, "message": "m"}]
    run = upgraded.get_run("run-2")
    assert (run["peak_rss_mib"], run["alerts"]) == (812.5, 1)
    assert {v["fingerprint"]: v["alerts"] for v in upgraded.list_versions()} == {"fp-2": 1, "abc123def456": None}


def test_a_v5_database_gains_the_unit_devices_table(tmp_path):
    """A schema-version-5 file (no unit_devices) opens, upgrades and takes a version-6 run whose devices
    read back per unit and in the lineage of the windows their files fed; its old run has none."""
    import sqlalchemy as sa

    from sensorpipe.metadata.records import DeviceRecord

    url = f"sqlite:///{tmp_path / 'v5.db'}"
    store = MetadataStore(url)
    store.record_run(make_run())
    store.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE unit_devices")
        conn.execute(t.schema_meta.update().values(value="5"))
    engine.dispose()
    upgraded = MetadataStore(url)
    with upgraded.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_meta.c.value)).scalar() == "6"
        assert "unit_devices" in sa.inspect(conn).get_table_names()
    assert upgraded.devices("abc123def456") == []
    assert upgraded.lineage("cohort_a/p01/00005")["devices"] == []
    devices = [DeviceRecord("cohort_a", "p01", "acti", "raw/p01.csv", "wGT3XBT", "serial:00112233aabbccdd", 10.0),
               DeviceRecord("cohort_a", "p01", "acti", "raw/other.csv", "Actiwatch-L", "", 30.0),
               DeviceRecord("cohort_a", "p02", "acti", "raw/p02.csv", "Actiwatch 4", "", 60.0)]
    upgraded.record_run(replace(make_run(run_id="run-2", fingerprint="fp-2"), devices=devices))
    got = upgraded.devices("fp-2")
    assert [(d["participant"], d["device_model"], d["epoch_s"]) for d in got] == [
        ("p01", "wGT3XBT", 10.0), ("p01", "Actiwatch-L", 30.0), ("p02", "Actiwatch 4", 60.0)]
    lin = upgraded.lineage("cohort_a/p01/00005", "fp-2")     # fed by raw/p01.csv only: its device, not the other
    assert lin["devices"] == [{"source_file": "raw/p01.csv", "source": "acti", "device_model": "wGT3XBT",
                               "device_serial": "serial:00112233aabbccdd", "epoch_s": 10.0}]
    assert upgraded.purge_pseudonymized_rows("/tmp/out", keep_run_id="run-1")["unit_devices"] == 3
    assert upgraded.devices("fp-2") == []


def test_duplicate_run_id_is_refused_without_side_effects(store):
    store.record_run(make_run())
    with pytest.raises(ValueError, match="already recorded"):
        store.record_run(make_run(fingerprint="other"))
    assert [v["fingerprint"] for v in store.list_versions()] == ["abc123def456"]
    assert count(store, t.lineage) == 100


def _v2_database(url: str) -> None:
    """A schema-version-2 database as sensorpipe wrote it before runs could be recorded from their start:
    runs.version_id, fingerprint and finished_at NOT NULL, none of the version-3 columns; one run with detail rows."""
    import sqlalchemy as sa

    md = sa.MetaData()
    for table in t.metadata.sorted_tables:
        if table.name != "runs":
            table.to_metadata(md)
    sa.Table("runs", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("run_id", sa.String(128), nullable=False, unique=True),
             sa.Column("version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False),
             sa.Column("fingerprint", sa.String(128), nullable=False, index=True),
             sa.Column("config_hash", sa.String(64), sa.ForeignKey("configs.hash"), nullable=False),
             *(sa.Column(c, sa.String(40), nullable=False) for c in ("started_at", "finished_at", "runner")),
             sa.Column("workers", sa.Integer, nullable=False),
             *(sa.Column(c, sa.Text, nullable=False) for c in (
                 "status", "code_version", "output_dir", "split_sizes_json", "input_fingerprints_json",
                 "recorded_at")))
    engine = sa.create_engine(url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(md.tables["schema_meta"].insert(), [{"key": "db_schema_version", "value": "2"}])
        conn.execute(md.tables["configs"].insert(), [{"hash": "c" * 64, "config_json": "{}", "created_at": "t"}])
        conn.execute(md.tables["dataset_versions"].insert(), [{
            "fingerprint": "fp-old", "dataset_name": "wearables", "semantic_version": "1.0.0", "code_version": "0.1",
            "config_hash": "c" * 64, "input_fingerprints_json": "{}", "created_at": "t"}])
        conn.execute(md.tables["runs"].insert(), [{
            "run_id": "old-run", "version_id": 1, "fingerprint": "fp-old", "config_hash": "c" * 64,
            "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
            "runner": "local", "workers": 1, "status": "succeeded", "code_version": "0.1", "output_dir": "/o",
            "split_sizes_json": '{"train": 3}', "input_fingerprints_json": "{}", "recorded_at": "t"}])
        conn.execute(md.tables["quality_metrics"].insert(), [{"run_id": "old-run", "scope": "dataset",
                                                               "name": "windows_kept", "value": 3.0}])
    engine.dispose()


def test_a_v2_database_is_migrated_to_record_every_run(tmp_path):
    import sqlalchemy as sa

    from sensorpipe.metadata import RunStart

    url = f"sqlite:///{tmp_path / 'v2.db'}"
    _v2_database(url)
    store = MetadataStore(url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_meta.c.value)).scalar() == str(t.DB_SCHEMA_VERSION) == "6"
        cols = {c["name"]: c for c in sa.inspect(conn).get_columns("runs")}
        assert all(cols[c]["nullable"] for c in ("version_id", "fingerprint", "finished_at"))
        assert {"stage", "error", "pid", "host", "dataset_name", "dataset_version", "units_cached",
                "windows_kept"} <= set(cols)
        assert "ix_runs_fingerprint" in {i["name"] for i in sa.inspect(conn).get_indexes("runs")}
        assert not conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    old = store.get_run("old-run")       # the data is kept, detail rows still hang off it
    assert (old["status"], old["fingerprint"], old["split_sizes"], old["dataset_version"]) == \
        ("succeeded", "fp-old", {"train": 3}, "1.0.0")
    assert store.quality("fp-old")[0]["value"] == 3.0
    with pytest.raises(sa.exc.IntegrityError):     # foreign keys are still enforced after the rebuild
        with store.engine.begin() as conn:
            conn.execute(t.quality_metrics.insert(), [{"run_id": "nope", "scope": "x", "name": "y", "value": 1.0}])
    # a run that fails before its fingerprint exists: no version, no fingerprint
    store.begin_run(RunStart("new-run", "2026-02-01T00:00:00+00:00", "local", 1, "0.2", '{"a": 1}', "/o",
                             "wearables", "auto", 123, "host"))
    assert store.open_runs("/o")[0]["run_id"] == "new-run"
    store.finish_run("new-run", "failed", error="ConfigError: bad\nsecond line", stage="plan")
    new = store.get_run("new-run")
    assert (new["status"], new["stage"], new["error"], new["fingerprint"]) == ("failed", "plan", "ConfigError: bad",
                                                                                None)
    assert store.latest_run(status="succeeded")["run_id"] == "old-run"
    assert [v["fingerprint"] for v in store.list_versions()] == ["fp-old"]
    store.close()
    MetadataStore(url).close()           # opening it again is a no-op


def test_record_run_completes_the_row_begun_at_the_start(store):
    from sensorpipe.metadata import RunStart

    store.begin_run(RunStart("run-1", "2024-05-01T10:00:00+00:00", "local", 1, "0.1.0+g1234", "{}", "/tmp/out",
                             "wearables", "1.2.0", 1, "h"))
    store.update_run("run-1", stage="pass2", fingerprint="abc123def456")
    store.record_run(replace(make_run(), status="publishing", windows_kept=100))
    assert [v["status"] for v in store.list_versions()] == ["publishing"]     # not published yet
    store.publish_version("run-1")
    (v,) = store.list_versions()
    assert (v["status"], v["split_sizes"], v["n_runs"]) == ("published", {"train": 75, "test": 25}, 1)
    run = store.get_run("run-1")
    assert (run["status"], run["stage"], run["windows_kept"], run["pid"]) == ("succeeded", "done", 100, 1)
    assert count(store, t.runs) == 1 and count(store, t.lineage) == 100
    with pytest.raises(ValueError, match="already recorded"):
        store.record_run(make_run())
