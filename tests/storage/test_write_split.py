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
