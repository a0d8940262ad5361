"""Shards of one split: every record once, in order, in the shard its size assigns; empty shards exist too."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.storage.writer import RecordSpill, shard_assignment, write_split


def _records(sizes: list[int]) -> list[bytes]:
    return [bytes([i % 251]) * n for i, n in enumerate(sizes)]


@pytest.mark.parametrize("fmt", ["array_record", "tfrecord"])
def test_records_in_order_across_shards_with_an_empty_one_between(tmp_path, fmt):
    sizes = [10, 1000, 10]          # target 300: 3 shards, the big record pushes the last one past shard 1
    n, shard_of = shard_assignment(np.array(sizes), 300)
    assert n == 3 and shard_of.tolist() == [0, 0, 2]
    spills = [RecordSpill.write(str(tmp_path / "spill" / "a"), _records(sizes[:2])),
              RecordSpill.write(str(tmp_path / "spill" / "b"), _records(sizes)[2:])]
    lengths, total = write_split(tmp_path, "ds", "train", spills, fmt, "none", 300)
    assert lengths == [2, 0, 1] and total == sum(sizes)
    files = sorted(tmp_path.glob(f"ds-train.{fmt}-*"))
    assert [f.name[-14:] for f in files] == ["00000-of-00003", "00001-of-00003", "00002-of-00003"]
    if fmt == "array_record":
        from array_record.python.array_record_module import ArrayRecordReader

        got = []
        for f in files:
            r = ArrayRecordReader(str(f), "readahead_buffer_size:0")
            got.append(list(r.read_all()) if r.num_records() else [])
            r.close()
        assert got == [_records(sizes)[:2], [], _records(sizes)[2:]]
    else:
        assert files[1].stat().st_size == 0 and files[0].stat().st_size > files[2].stat().st_size


def test_trailing_shards_without_records_are_written_empty(tmp_path):
    sizes = [5, 5, 5000]            # the last record alone is past the others' shards
    n, shard_of = shard_assignment(np.array(sizes), 1700)
    spill = RecordSpill.write(str(tmp_path / "spill" / "a"), _records(sizes))
    lengths, _ = write_split(tmp_path, "ds", "test", [spill], "tfrecord", "none", 1700)
    assert len(lengths) == n == len(list(tmp_path.glob("ds-test.tfrecord-*"))) and sum(lengths) == 3
    assert lengths == np.bincount(shard_of, minlength=n).tolist()


def test_one_shard_writer_is_open_at_a_time(tmp_path, monkeypatch):
    """Memory stays one shard's writer whatever the split's size: a writer closes before the next opens."""
    from sensorpipe.storage import writer

    open_now, most = [0], [0]
    real = writer._TFRecordWriter

    class Counting(real):
        def __init__(self, path: str) -> None:
            super().__init__(path)
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])

        def close(self) -> None:
            super().close()
            open_now[0] -= 1

    monkeypatch.setattr(writer, "_TFRecordWriter", Counting)
    sizes = [100] * 40
    spill = RecordSpill.write(str(tmp_path / "spill" / "a"), _records(sizes))
    lengths, _ = write_split(tmp_path, "ds", "train", [spill], "tfrecord", "none", 450)
    assert len(lengths) == 9 and sum(lengths) == 40
    assert most[0] == 1 and open_now[0] == 0


@pytest.mark.parametrize("fmt", ["array_record", "tfrecord"])
def test_shards_written_one_job_each_in_any_order_are_the_same_files(tmp_path, fmt):
    """The multiprocess runner writes a split's shards on several workers at once: each shard reads only its
    records (spill boundaries inside a shard too), and the order of the jobs changes no byte."""
    from sensorpipe.storage.writer import plan_split, write_shard

    sizes = [40, 7, 300, 12, 90, 5, 61, 200, 33, 18]
    spills = [RecordSpill.write(str(tmp_path / "spill" / name), _records(sizes)[a:b])
              for name, a, b in [("a", 0, 3), ("b", 3, 4), ("c", 4, 9), ("d", 9, 10)]]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    serial.mkdir(), parallel.mkdir()
    lengths, total = write_split(serial, "ds", "train", spills, fmt, "none", 250)
    plan = plan_split("train", spills, 250)
    assert plan.shard_lengths == lengths == [3, 2, 3, 2] and plan.num_bytes == total == sum(sizes)
    assert [(s.start, s.stop) for s in plan.shards] == [(0, 3), (3, 5), (5, 8), (8, 10)]
    for shard in reversed(plan.shards):
        write_shard(parallel, "ds", fmt, "none", plan, shard)
    names = sorted(p.name for p in serial.iterdir())
    assert names == sorted(p.name for p in parallel.iterdir()) and len(names) == 4
    assert all((serial / n).read_bytes() == (parallel / n).read_bytes() for n in names)


def test_a_spill_reads_a_range_of_its_records(tmp_path):
    records = _records([3, 9, 1, 4, 7])
    spill = RecordSpill.write(str(tmp_path / "a"), records)
    assert list(spill.records(1, 4)) == records[1:4] and list(spill.records(4, None)) == records[4:]
    assert list(spill.records(2, 2)) == [] and list(spill) == records
