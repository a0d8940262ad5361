"""A shared multi-participant file is read and hashed once per run, and its partition is reused on a re-run."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import sensorpipe
from sensorpipe.config import load_config
from sensorpipe.demo import synthetic
from sensorpipe.sources import partition
from sensorpipe.sources.base import make_adapter

N, DAYS = 4, 2


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The minute cohort as one shared Parquet (small row groups: several batches) and one shared CSV,
    plus a few rows with no participant id."""
    root = tmp_path_factory.mktemp("shared")
    synthetic.write_minute_cohort(root / "per", N, DAYS, seed=3)
    t = pa.concat_tables([pq.read_table(f) for f in sorted((root / "per" / "minute").glob("*.parquet"))])
    orphans = t.slice(100, 3).set_column(0, "user_id", pa.array([None, "", "  "], pa.string()))
    t = pa.concat_tables([t.slice(0, 50_000), orphans, t.slice(50_000)])
    (root / "single").mkdir()
    pq.write_table(t, root / "single" / "all.parquet", row_group_size=40_000)
    pacsv.write_csv(t, root / "single" / "all.csv")
    shutil.copy(root / "per" / "participants.csv", root / "single" / "participants.csv")
    return root, t


def _config(root: Path, ext: str, out: Path, per_participant: bool = False) -> dict:
    cfg = synthetic.pipeline_config()
    src = cfg["sources"][0]
    src.pop("participants")
    src["path"] = str(root / ("per" if per_participant else "single"))
    src["participants"] = str(root / ("per" if per_participant else "single") / "participants.csv")
    src["options"].pop("activities", None)
    src["options"]["files"][0]["glob"] = "minute/*.parquet" if per_participant else f"all.{ext}"
    return {"sources": [src], "channels": ["heart_rate", "steps", "calories", "sleep_stage"],
            "window": {"max_missing_ratio": 0.9}, "output": {"dir": str(out), "name": "shared"},
            "privacy": {"pseudonymize": False}}


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("shared/*/shared-*.array_record-*"))}


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_a_shared_file_is_read_and_hashed_once_and_gives_the_per_participant_records(shared, ext, tmp_path,
                                                                                      monkeypatch):
    from sensorpipe.runners import cache
    from sensorpipe.runners.driver import run_pipeline
    from sensorpipe.sources import long_table

    root, table = shared
    path = str(root / "single" / f"all.{ext}")
    hashed, whole_reads, batches = Counter(), Counter(), Counter()
    for module in (partition, cache):
        real_fp = module.file_fingerprint
        monkeypatch.setattr(module, "file_fingerprint",
                            lambda p, real=real_fp: (hashed.update([str(p)]), real(p))[1])
    real_read, real_batches = long_table.LongTableAdapter._read, long_table.LongTableAdapter._batches
    monkeypatch.setattr(long_table.LongTableAdapter, "_read",
                        lambda self, p, spec, columns: (whole_reads.update([str(p)]), real_read(self, p, spec, columns))[1])

    def counted_batches(self, p, spec):
        for batch, first in real_batches(self, p, spec):
            batches.update([str(p)])
            yield batch, first

    monkeypatch.setattr(long_table.LongTableAdapter, "_batches", counted_batches)
    result = run_pipeline(load_config(_config(root, ext, tmp_path / "out")), runner="local")
    assert hashed[path] == 1 and whole_reads[path] == 0          # once for every participant, not once each
    expected_batches = pq.ParquetFile(path).metadata.num_row_groups if ext == "parquet" else None
    assert batches[path] == expected_batches if ext == "parquet" else 1 <= batches[path] <= 3
    assert sorted(u.key for u in result.units) == ["fitbit_cohort/"] + [f"fitbit_cohort/fc{p:03d}" for p in
                                                                       range(1, N + 1)]
    assert result.rows_in == table.num_rows
    assert result.quarantine_by_reason["no_participant"] == 3    # the rows without an id: counted, never lost
    # the records equal those of the same rows laid out one file per participant
    reference = run_pipeline(load_config(_config(root, ext, tmp_path / "ref", per_participant=True)),
                             runner="local")
    assert reference.windows_kept == result.windows_kept > 0
    mine, theirs = sensorpipe.open(tmp_path / "out"), sensorpipe.open(tmp_path / "ref")
    for split in mine.splits:
        for a, b in zip(mine[split], theirs[split]):
            assert a["key"] == b["key"] and a["input"].tobytes() == b["input"].tobytes()
    # a re-run reuses the partition: the file is hashed again (it might have changed) but not decoded
    hashed.clear(), batches.clear()
    shutil.rmtree(tmp_path / "out" / "shared")
    run_pipeline(load_config(_config(root, ext, tmp_path / "out")), runner="local")
    assert hashed[path] == 1 and batches[path] == 0


def test_a_unit_reads_the_same_rows_from_its_partition_as_from_the_whole_file(shared, tmp_path):
    root, _ = shared
    cfg = load_config(_config(root, "csv", tmp_path / "out"))
    whole = make_adapter(cfg.sources[0], cfg.base_dir)                      # outside a run: files read whole
    parted = make_adapter(cfg.sources[0], cfg.base_dir, str(tmp_path / "work"))
    units_whole, units_parted = whole.list_units(), parted.list_units()
    assert [u.participant for u in units_whole] == [u.participant for u in units_parted]
    assert all(u.partitions == ("",) for u in units_whole)
    assert all(u.partitions[0].endswith(".arrows") and u.fingerprints[0] for u in units_parted)
    for a, b in zip(units_whole, units_parted):
        ta, tb = (pa.concat_tables(x.read_unit(u).native) for x, u in ((whole, a), (parted, b)))
        assert ta.num_rows == tb.num_rows > 0
        for name in ta.schema.names:
            assert ta.column(name).to_pylist() == tb.column(name).to_pylist(), name
        rows = tb.column("source_row").to_numpy()
        assert (np.diff(rows) > 0).all() and rows.min() >= 2             # CSV line numbers, in file order


def test_an_interrupted_partition_is_redone(shared, tmp_path):
    root, _ = shared
    path = root / "single" / "all.parquet"
    calls = []

    def failing():
        yield from ()
        calls.append(1)
        raise OSError("disk full")

    with pytest.raises(OSError):
        partition.partition_file(path, tmp_path, "user_id", failing)
    assert not any(tmp_path.iterdir())                                   # nothing half-written is left
    cfg = load_config(_config(root, "parquet", tmp_path / "out"))
    adapter = make_adapter(cfg.sources[0], cfg.base_dir, str(tmp_path / "work"))
    assert len(adapter.list_units()) == N + 1


@pytest.mark.parametrize("ids", [
    ["b", "b", "a", "a", "a", None],                 # one run per participant: zero-copy slices
    ["b", "a", " b", "a", None, "b", ""],            # interleaved: grouped by one stable sort; " b" is "b"
])
def test_rows_are_routed_per_participant_in_file_order(ids):
    batch = pa.record_batch({"pid": pa.array(ids, pa.string()), "v": pa.array(np.arange(len(ids), dtype=float))})
    got = {pid: (part, numbers) for pid, part, numbers in partition._split_by_participant(batch, "pid", 10)}
    want: dict[str, list[int]] = {}
    for k, i in enumerate(ids):
        want.setdefault((i or "").strip(), []).append(k)
    assert sorted(got) == sorted(want)
    for pid, rows in want.items():
        part, numbers = got[pid]
        if isinstance(numbers, int):   # one run: only its first row number
            assert rows == list(range(rows[0], rows[0] + len(rows))) and numbers == 10 + rows[0]
        else:
            assert numbers.tolist() == [10 + r for r in rows]
        assert part.column("v").to_pylist() == [float(r) for r in rows]
        assert part.schema.names == ["v"]


def test_a_touched_file_is_hashed_once_and_keeps_its_partition_and_an_edit_in_place_is_seen(shared, tmp_path):
    """The partition is found by the file's path, size and time, and always checked against its hash: a file
    touched without a change is hashed (while it is partitioned again) and keeps its partition; a file
    edited without changing its size or time is partitioned afresh under its new hash."""
    root, _ = shared
    path = tmp_path / "all.parquet"
    shutil.copy(root / "single" / "all.parquet", path)
    reads, hashes = Counter(), Counter()
    real_fp = partition.file_fingerprint

    def batches():
        for batch in pq.ParquetFile(path).iter_batches(batch_size=30_000):
            reads.update(["batch"])
            yield batch, 0

    def run() -> partition.Partition:
        reads.clear(), hashes.clear()
        return partition.partition_file(path, tmp_path / "parts", "user_id", batches)

    import unittest.mock as mock
    with mock.patch.object(partition, "file_fingerprint",
                           side_effect=lambda p: (hashes.update([str(p)]), real_fp(p))[1]):
        first = run()
        assert reads["batch"] > 0 and hashes[str(path)] == 1
        assert run() == first and reads["batch"] == 0 and hashes[str(path)] == 1      # a re-run: hashed, not read
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))     # touched, not changed
        assert run() == first and reads["batch"] > 0 and hashes[str(path)] == 1      # partitioned while hashed
        assert run() == first and reads["batch"] == 0                                # and known by its new time
        assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [first.fingerprint]   # nothing left over
        t = pq.read_table(path)
        ids = t.column("user_id").to_pylist()
        swapped = pa.array([{"fc001": "fc002", "fc002": "fc001"}.get(i, i) for i in ids], t.schema.field("user_id").type)
        pq.write_table(t.set_column(t.schema.get_field_index("user_id"), "user_id", swapped), path,
                       row_group_size=40_000)
        # an edit in place that kept the size and the time: the old partition claims the file as it is now
        (tmp_path / "parts" / first.fingerprint / partition.SOURCE).write_text(
            json.dumps([partition._source_key(path)]))
        edited = run()
        assert edited.fingerprint != first.fingerprint and reads["batch"] > 0 and hashes[str(path)] == 1
        assert edited.streams["fc001"][1] == first.streams["fc002"][1] != first.streams["fc001"][1]


def _on_threads(workers: int):
    """:func:`partition.parallel` on a thread pool: ranges run concurrently, and reads stay countable here."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(workers)
    return pool, partition.parallel(lambda fn, args: pool.submit(fn, *args), workers)


def _unit_tables(adapter) -> dict:
    return {u.participant.participant_id: pa.concat_tables(adapter.read_unit(u).native) for u in adapter.list_units()}


@pytest.mark.parametrize("workers", [2, 3])
def test_ranges_on_workers_read_every_row_group_once_and_give_the_units_the_serial_input(shared, workers, tmp_path,
                                                                                         monkeypatch):
    from sensorpipe.sources import long_table

    root, _ = shared
    path = root / "single" / "all.parquet"
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert groups >= 3
    read, hashed = Counter(), Counter()
    real_groups, real_fp = long_table.LongTableAdapter._row_group_batches, partition.file_fingerprint

    def counted(self, p, spec, lo, hi, first):
        read.update(range(lo, groups if hi is None else hi))
        yield from real_groups(self, p, spec, lo, hi, first)

    monkeypatch.setattr(long_table.LongTableAdapter, "_row_group_batches", counted)
    monkeypatch.setattr(partition, "file_fingerprint", lambda p: (hashed.update([str(p)]), real_fp(p))[1])
    cfg = load_config(_config(root, "parquet", tmp_path / "out"))
    serial = make_adapter(cfg.sources[0], cfg.base_dir, str(tmp_path / "serial"))
    want = _unit_tables(serial)
    read.clear(), hashed.clear()
    parted = make_adapter(cfg.sources[0], cfg.base_dir, str(tmp_path / "work"))
    pool, block = _on_threads(workers)
    with pool, block:
        units = parted.list_units()
        assert read == Counter(range(groups)) and hashed[str(path)] == 1      # each row group once, hashed once
        streams = [u.partitions[0] for u in units]
        assert any(partition.PIECES in s for s in streams)                   # someone spans a range border
        got = _unit_tables(parted)
        assert sorted(got) == sorted(want)
        for pid, table in want.items():                                      # same rows, order, types and batches
            assert got[pid].equals(table) and got[pid].column(0).num_chunks == table.column(0).num_chunks, pid
        read.clear(), hashed.clear()
        again = make_adapter(cfg.sources[0], cfg.base_dir, str(tmp_path / "work")).list_units()
        assert [u.partitions for u in again] == [u.partitions for u in units]   # a re-run reuses the partition
        assert not read and hashed[str(path)] == 1


def test_a_participant_spanning_range_borders_reads_their_pieces_in_file_order(tmp_path):
    """Participant "a" has rows in all three ranges (one row group each): three pieces, rows in file order,
    each range's row numbers counted from the start of the file."""
    t = pa.table({"pid": ["a", "b", "a", "a", "c", "a"], "v": np.arange(6, dtype=float)})
    pq.write_table(t, tmp_path / "f.parquet", row_group_size=2)
    pf = pq.ParquetFile(tmp_path / "f.parquet")

    def group(g: int, first: int):
        return lambda: ((b, first) for b in pf.read_row_group(g).to_batches()), first

    ranges = lambda n: [group(0, 0), group(1, 2), group(2, 4)]   # noqa: E731
    pool, block = _on_threads(2)
    with pool, block:
        part = partition.partition_file(tmp_path / "f.parquet", tmp_path / "parts", "pid", None, ranges)
    assert {pid: n for pid, (_, n) in part.streams.items()} == {"a": 4, "b": 1, "c": 1}
    assert part.streams["a"][0].count(partition.PIECES) == 2 and partition.PIECES not in part.streams["b"][0]
    table, rows = partition.read_stream(part.streams["a"][0])
    assert rows.tolist() == [0, 2, 3, 5] and table.column("v").to_pylist() == [0.0, 2.0, 3.0, 5.0]
    chunks = list(partition.iter_stream(part.streams["a"][0]))
    assert [r.tolist() for _, r in chunks] == [[0], [2, 3], [5]]
    assert partition.stream_bytes(part.streams["a"][0]) == sum(
        os.path.getsize(p) for p in part.streams["a"][0].split(partition.PIECES))
    # outside parallel() the same file is partitioned serially: one stream each, same rows
    serial = partition.partition_file(tmp_path / "f.parquet", tmp_path / "serial", "pid",
                                      lambda: ((b, 2 * g) for g in range(3) for b in pf.read_row_group(g).to_batches()),
                                      ranges)
    assert partition.read_stream(serial.streams["a"][0])[1].tolist() == [0, 2, 3, 5]
    assert serial.fingerprint == part.fingerprint


def test_a_failing_range_leaves_nothing_behind(tmp_path):
    t = pa.table({"pid": ["a", "b"], "v": [1.0, 2.0]})
    pq.write_table(t, tmp_path / "f.parquet")

    def failing():
        yield from ()
        raise OSError("disk full")

    ok = lambda: iter([(t.to_batches()[0], 0)])   # noqa: E731
    pool, block = _on_threads(2)
    with pool, block, pytest.raises(OSError):
        partition.partition_file(tmp_path / "f.parquet", tmp_path / "parts", "pid", None,
                                 lambda n: [(ok, 0), (failing, 1)])
    assert not any((tmp_path / "parts").iterdir())


def test_a_multiprocess_run_partitions_on_its_workers_and_writes_the_local_runs_shards(shared, tmp_path):
    from sensorpipe.runners.driver import run_pipeline

    root, _ = shared
    local = run_pipeline(load_config(_config(root, "parquet", tmp_path / "local")), runner="local")
    multi = run_pipeline(load_config(_config(root, "parquet", tmp_path / "multi")), runner="multiprocess", workers=2)
    assert multi.windows_kept == local.windows_kept > 0
    assert _shards(tmp_path / "multi") == _shards(tmp_path / "local") != {}
    parts = list((tmp_path / "multi" / ".work" / "partitions").glob("*/*/r001p*.arrows"))
    assert parts                                                             # the second range's pieces


def test_a_csv_file_is_cut_at_line_ends_and_its_ranges_give_the_serial_rows_and_row_numbers(shared, tmp_path,
                                                                                           monkeypatch):
    """CSV byte ranges start after a line end; the rows of a range that does not know where it starts are
    numbered once the ranges before it are counted, so units read the serial partition's rows and numbers."""
    from sensorpipe.sources import long_table

    root, _ = shared
    path = root / "single" / "all.csv"
    monkeypatch.setattr(long_table, "CSV_BLOCK_BYTES", path.stat().st_size // 5)   # several ranges, several blocks
    cfg = load_config(_config(root, "csv", tmp_path / "out"))
    serial = make_adapter(cfg.sources[0], cfg.base_dir, str(tmp_path / "serial"))
    ranges = serial._ranges(path, serial.options.files[0], 3)
    assert len(ranges) == 3 and [first for _, first in ranges] == [2, None, None]
    data = path.read_bytes()
    borders = [r.args[2] for r, _ in ranges[1:]]                               # (path, spec, lo, hi, first)
    assert all(data[b - 1:b] == b"\n" for b in borders)                         # cut at a line end
    lines = sum(b.num_rows for r, _ in ranges for b, _ in r())
    assert lines == data.count(b"\n") - 1                                       # every row once, no header row
    want = _unit_tables(serial)
    parted = make_adapter(cfg.sources[0], cfg.base_dir, str(tmp_path / "work"))
    pool, block = _on_threads(3)
    with pool, block:
        got = _unit_tables(parted)
    assert any(partition.OFFSET in u.partitions[0] for u in parted.list_units())
    assert sorted(got) == sorted(want)
    for pid, table in want.items():   # the same values (dictionaries may differ where blocks were cut apart)
        assert got[pid].schema == table.schema, pid
        for name in table.schema.names:                                    # source_row: CSV line numbers
            assert got[pid].column(name).to_pylist() == table.column(name).to_pylist(), (pid, name)


def test_a_multiprocess_run_of_a_csv_writes_the_local_runs_shards(shared, tmp_path, monkeypatch):
    from sensorpipe.runners.driver import run_pipeline
    from sensorpipe.sources import long_table

    root, _ = shared
    monkeypatch.setattr(long_table, "CSV_BLOCK_BYTES", (root / "single" / "all.csv").stat().st_size // 4)
    local = run_pipeline(load_config(_config(root, "csv", tmp_path / "local")), runner="local")
    multi = run_pipeline(load_config(_config(root, "csv", tmp_path / "multi")), runner="multiprocess", workers=2)
    assert multi.windows_kept == local.windows_kept > 0 and multi.rows_in == local.rows_in
    assert _shards(tmp_path / "multi") == _shards(tmp_path / "local") != {}
    assert list((tmp_path / "multi" / ".work" / "partitions").glob("*/*/r001p*.arrows"))


def test_a_run_of_rows_is_stored_without_row_numbers_and_rows_after_a_gap_with_them(tmp_path):
    """b's rows follow each other across two batches: one piece holding only its first row number. a's rows
    stop and come back: a second piece carries those rows' numbers. Both read back with the file's numbers."""
    ids = [["a", "a", "a", "b", "b"], ["b", "b", "a", "a", "c", "a"]]
    batches = [pa.record_batch({"pid": pa.array(chunk, pa.string()),
                                "v": pa.array(np.arange(first, first + len(chunk), dtype=float))})
               for first, chunk in ((0, ids[0]), (5, ids[1]))]
    path = tmp_path / "all.bin"
    path.write_bytes(b"the file the batches come from: only hashed")
    part = partition.partition_file(path, tmp_path / "parts", "pid", lambda: iter(zip(batches, (0, 5))))
    want = {"a": [0, 1, 2, 7, 8, 10], "b": [3, 4, 5, 6], "c": [9]}
    assert sorted(part.streams) == sorted(want)
    for pid, rows in want.items():
        stream, n = part.streams[pid]
        pieces = stream.split(partition.PIECES)
        assert n == len(rows) and len(pieces) == (2 if pid == "a" else 1)
        with_numbers = [partition.ROW_COLUMN in pa.ipc.open_stream(pa.memory_map(p)).schema.names for p in pieces]
        assert with_numbers == ([False, True] if pid == "a" else [False])
        table, numbers = partition.read_stream(stream)
        assert numbers.tolist() == rows and table.column("v").to_pylist() == [float(r) for r in rows]
        assert table.schema.names == ["v"] and table.schema.metadata is None
        per_batch = list(partition.iter_stream(stream))
        assert np.concatenate([r for _, r in per_batch]).tolist() == rows
        assert all(t.schema == table.schema for t, _ in per_batch)


def test_the_serial_partition_reads_the_next_batch_while_routing_one_and_stops_with_its_caller():
    import threading

    read_second = threading.Event()

    def batches():
        yield "first", 0
        read_second.set()
        yield "second", 1
        raise OSError("the file ended early")

    ahead = partition._read_ahead(batches)
    assert next(ahead) == ("first", 0)
    assert read_second.wait(5)               # read while the caller still holds the first batch
    assert next(ahead) == ("second", 1)
    with pytest.raises(OSError, match="the file ended early"):   # the read's error, in the caller's thread
        next(ahead)

    def endless():
        for k in range(10**9):
            yield k, k

    before = threading.active_count()
    ahead = partition._read_ahead(endless)
    assert [next(ahead) for _ in range(3)] == [(0, 0), (1, 1), (2, 2)]
    ahead.close()                            # the caller stopped (an error routing a batch): the thread ends
    assert threading.active_count() == before


@pytest.mark.parametrize("serial", [True, False])
def test_the_file_is_read_in_a_thread_of_its_own_on_both_paths(tmp_path, serial):
    """The serial partition and a worker's range both read ahead (the batches come from another thread)."""
    import threading

    readers = set()

    def batches():
        readers.add(threading.current_thread())
        yield pa.record_batch({"pid": pa.array(["a", "b"]), "v": pa.array([1.0, 2.0])}), 0

    path = tmp_path / "all.bin"
    path.write_bytes(b"hashed only")
    if serial:
        part = partition.partition_file(path, tmp_path / "parts", "pid", batches)
        assert sorted(part.streams) == ["a", "b"]
    else:
        index, rows, _ = partition._write_range(tmp_path, "r000p", "pid", batches)
        assert sorted(index) == ["a", "b"] and rows == 2
    assert readers and threading.current_thread() not in readers
