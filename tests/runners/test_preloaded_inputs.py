"""Pass 1 reads a Parquet input once: the bytes it hashes are the bytes the adapter decodes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from sensorpipe.config import SourceConfig
from sensorpipe.runners.cache import file_fingerprint, fingerprint_inputs
from sensorpipe.sources import base
from sensorpipe.sources.base import make_adapter, preloaded_inputs

OPTIONS = {"files": [{"glob": "minute/*.parquet", "participant_column": "user_id", "field_column": "metric",
                      "time_column": "timestamp_ms", "time_format": "epoch_ms", "value_column": "value"},
                     {"glob": "extra/*.csv", "participant_column": "user_id", "field_column": "metric",
                      "time_column": "timestamp_ms", "time_format": "epoch_ms", "value_column": "value"}],
           "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}}


def _table(values: list[float]) -> pa.Table:
    n = len(values)
    return pa.table({"user_id": ["p1"] * n, "metric": ["hr"] * n,
                     "timestamp_ms": [1_710_054_000_000 + 60_000 * i for i in range(n)], "value": values})


def _adapter(root):
    (root / "minute").mkdir()
    (root / "extra").mkdir()
    pq.write_table(_table([60.0, 61.0, 62.0]), root / "minute" / "p1.parquet")
    (root / "extra" / "p1.csv").write_text("user_id,metric,timestamp_ms,value\np1,hr,1710054180000,63\n")
    (root / "participants.csv").write_text("participant_id,tz\np1,UTC\n")
    source = SourceConfig(name="lt", adapter="long_table", path=str(root),
                          participants=str(root / "participants.csv"), options=OPTIONS)
    adapter = make_adapter(source, str(root))
    (unit,) = adapter.list_units()
    return adapter, unit


def _values(inp) -> list[float]:
    return [float(v) for part in inp.native for v in part.column("value").to_pylist()]


def test_same_digests_and_only_parquet_kept_in_memory(tmp_path):
    adapter, unit = _adapter(tmp_path)
    fps, blobs = fingerprint_inputs(sorted(unit.files), adapter)
    assert fps == {f: file_fingerprint(f) for f in unit.files}     # cache keys and lineage do not change
    parquet = str(tmp_path / "minute" / "p1.parquet")
    assert list(blobs) == [parquet]                                 # CSV: read by path (compression by name)
    assert blobs[parquet] == (tmp_path / "minute" / "p1.parquet").read_bytes()


def test_read_decodes_the_preloaded_bytes_and_forgets_them(tmp_path):
    adapter, unit = _adapter(tmp_path)
    _, blobs = fingerprint_inputs(sorted(unit.files), adapter)
    with preloaded_inputs(blobs):
        assert _values(adapter.read_unit(unit)) == _values(adapter.read_unit(unit)) == [63, 60.0, 61.0, 62.0]
    # the bytes handed over are what is decoded (no second read of the file) ...
    sink = pa.BufferOutputStream()
    pq.write_table(_table([70.0, 71.0]), sink)
    with preloaded_inputs({str(tmp_path / "minute" / "p1.parquet"): sink.getvalue().to_pybytes()}):
        assert _values(adapter.read_unit(unit)) == [63, 70.0, 71.0]
    # ... and only inside the block
    assert base._PRELOADED.get() == {}
    assert _values(adapter.read_unit(unit)) == [63, 60.0, 61.0, 62.0]


def test_threads_reading_at_once_each_decode_their_own_bytes(tmp_path):
    import threading

    adapter, unit = _adapter(tmp_path)
    path = str(tmp_path / "minute" / "p1.parquet")
    both_inside = threading.Barrier(2)
    seen: dict[int, list[float]] = {}

    def read(k: int) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(_table([100.0 * k, 100.0 * k + 1]), sink)
        with preloaded_inputs({path: sink.getvalue().to_pybytes()}):
            both_inside.wait()                 # the other thread has set its own bytes by now
            seen[k] = _values(adapter.read_unit(unit))

    threads = [threading.Thread(target=read, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {1: [63, 100.0, 101.0], 2: [63, 200.0, 201.0]}
