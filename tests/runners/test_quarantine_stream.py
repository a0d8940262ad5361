"""The run's quarantine files: streamed unit by unit (the driver never holds more than one unit's rows),
in unit order whatever the runner, reconciling with the rows in, per file and per source."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sensorpipe import read_quarantine
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.schema.quarantine import QUARANTINE_SCHEMA, QuarantineWriter, read_spill

PARTICIPANTS = 6
MINUTES = 2 * 1440
T0_MS = 1_709_251_200_000   # 2024-03-01 00:00 UTC


def _cohort(root, share: float) -> dict:
    """One typed Parquet per participant (5-s heart rate, minute steps), ``share`` of the rows out of range."""
    rng = np.random.default_rng(7)
    (root / "d").mkdir(parents=True)
    for i in range(PARTICIPANTS):
        n = MINUTES * 2
        t = T0_MS + np.arange(n, dtype=np.int64) * 30_000
        hr = 60 + rng.normal(0, 5, n).round(1)
        steps = rng.integers(0, 80, n)
        bad = rng.random(n) < share
        hr[bad] = 999.0                               # out_of_range
        steps[rng.random(n) < share] = 100_000        # out_of_range, an integer column
        pq.write_table(pa.table({"pid": pa.array([f"p{i}"] * n), "t": pa.array(t, pa.timestamp("ms", "UTC")),
                                 "hr": hr, "steps": pa.array(steps, pa.int64())}), root / "d" / f"p{i}.parquet")
    return {
        "sources": [{"name": "band", "adapter": "long_table", "path": str(root / "d"), "options": {
            "tz": "UTC",
            "files": [{"glob": "*.parquet", "participant_column": "pid", "time_column": "t", "time_format": "iso",
                       "value_columns": ["hr", "steps"]}],
            "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"},
                       "steps": {"channel": "steps", "unit": "steps/min"}}}}],
        "channels": ["heart_rate", "steps"],
        "window": {"size_min": 1440, "stride_min": 1440, "alignment": "none", "max_missing_ratio": 1.0},
        "output": {"dir": str(root / "out"), "name": "q"}, "privacy": {"pseudonymize": False},
    }


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """A run at 35 % quarantined, recording the size of every table the driver hands to a quarantine writer."""
    root = tmp_path_factory.mktemp("quarantine35")
    cfg = _cohort(root, 0.35)
    writes, write = [], QuarantineWriter.write

    def counting(self, stored):
        writes.append(stored.num_rows)
        write(self, stored)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(QuarantineWriter, "write", counting)
        result = run_pipeline(cfg)
    return root, cfg, result, writes


def test_driver_appends_one_unit_at_a_time(faulty_run):
    root, _, result, writes = faulty_run
    per_unit = [p.rows_quarantined for u in result.units for p in u.parts if p.rows_quarantined]
    assert len(per_unit) == PARTICIPANTS and result.rows_quarantined == sum(per_unit) > 0.3 * result.rows_in
    assert sum(writes) == result.rows_quarantined
    assert writes == per_unit                    # one unit's spill at a time, in unit order, never a concat


def test_run_quarantine_is_the_units_files_in_unit_order(faulty_run):
    root, _, result, _ = faulty_run
    out = pq.read_table(root / "out" / "quarantine" / "band.parquet")
    assert out.schema.equals(QUARANTINE_SCHEMA)
    units = pa.concat_tables([read_spill(p.quarantine) for u in result.units for p in u.parts if p.quarantine])
    assert out.equals(units)
    assert out.column("value").null_count == out.num_rows      # typed values stayed typed on the way


def test_quarantine_reconciles_per_file_and_source(faulty_run):
    root, _, result, _ = faulty_run
    q = read_quarantine(root / "out" / "quarantine" / "band.parquet").to_pandas()
    assert len(q) == result.rows_quarantined and set(q.reason) == {"out_of_range"}
    assert result.rows_in == result.rows_accepted + result.rows_quarantined == PARTICIPANTS * MINUTES * 2 * 2
    by_file = q.groupby("source_file").size().to_dict()
    for u in result.units:
        for p in u.parts:
            for f, (rows_in, accepted, quarantined) in p.rows_in_by_file.items():
                assert rows_in == accepted + quarantined and by_file[f] == quarantined
    assert set(q.loc[q.field == "hr", "value"]) == {"999"} and set(q.loc[q.field == "steps", "value"]) == {"100000"}
    assert q.time.str.match(r"2024-03-0[1-3] \d\d:\d\d:\d\d\.000Z").all()


def test_multiprocess_writes_the_same_quarantine_bytes(faulty_run, tmp_path):
    root, cfg, _, _ = faulty_run
    cfg = {**cfg, "output": {**cfg["output"], "dir": str(tmp_path / "out")}}
    run_pipeline(cfg, runner="multiprocess", workers=2)
    assert (tmp_path / "out" / "quarantine" / "band.parquet").read_bytes() == \
        (root / "out" / "quarantine" / "band.parquet").read_bytes()


def test_clean_data_gives_an_empty_quarantine_file(tmp_path):
    result = run_pipeline(_cohort(tmp_path, 0.0))
    assert result.rows_quarantined == 0 and all(not p.quarantine for u in result.units for p in u.parts)
    q = read_quarantine(tmp_path / "out" / "quarantine" / "band.parquet")
    assert q.num_rows == 0 and q.column_names == ["source", "participant_id", "field", "time", "value", "unit",
                                                   "source_file", "source_row", "reason"]


def test_writer_buffers_small_pieces_and_writes_large_ones_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(QuarantineWriter, "ROW_GROUP_ROWS", 100)
    piece = _stored_rows(30)
    with QuarantineWriter(tmp_path / "q.parquet") as w:
        for _ in range(5):        # 30 + 30 + 30 + 30 -> one group of 120, then 30 left
            w.write(piece)
        assert not (tmp_path / "q.parquet").exists()          # only under its name once complete
        w.write(_stored_rows(500))   # 530 buffered rows: one group
    f = pq.ParquetFile(tmp_path / "q.parquet")
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == [120, 530]
    assert read_quarantine(tmp_path / "q.parquet").column("source_row").to_pylist() == \
        list(range(30)) * 5 + list(range(500))


def test_a_failed_writer_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with QuarantineWriter(tmp_path / "q.parquet") as w:
            w.write(_stored_rows(10))
            raise RuntimeError("the input broke")
    assert list(tmp_path.iterdir()) == []


def _stored_rows(n: int) -> pa.Table:
    from sensorpipe.schema.quarantine import keep_typed

    text = pa.array(["x"] * n)
    cols = {"source": text, "participant_id": text, "field": text,
            **keep_typed(pa.chunked_array([pa.array(np.arange(n) * 60_000 + T0_MS, pa.timestamp("ms", "UTC"))]), "time"),
            **keep_typed(pa.chunked_array([pa.array(np.full(n, 999.0))]), "value"), "unit": pa.nulls(n, pa.string()),
            "source_file": text, "source_row": pa.array(np.arange(n, dtype=np.int64)), "reason": text}
    return pa.table(cols).select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA)
