"""The AES-GCM container of privacy/sealed.py: round trips at every chunk boundary, random access, and one
clear error for a missing key, a wrong key, a cut file, reordered chunks and an edited header."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sensorpipe.privacy.sealed import (HEADER_BYTES, MAGIC, TAG_BYTES, SealedFileError, SealedReader, SealedWriter,
                                       is_sealed)

KEY = b"quarantine-test-key-0123456789abcdef"
LOG2 = 6        # 64-byte chunks: every boundary case with a few bytes
CHUNK = 1 << LOG2


def _seal(path, data: bytes, piece: int = 7, key: bytes = KEY) -> None:
    w = SealedWriter(path, key, chunk_log2=LOG2)
    for i in range(0, len(data), piece):
        assert w.write(data[i:i + piece]) == len(data[i:i + piece])
    assert w.tell() == len(data)
    w.close()


@pytest.mark.parametrize("n", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 3])
def test_round_trip_at_every_chunk_boundary(tmp_path, n):
    data = os.urandom(n)
    _seal(tmp_path / "f", data)
    raw = (tmp_path / "f").read_bytes()
    chunks = max(1, -(-n // CHUNK))
    assert raw[:8] == MAGIC and raw[8] == 1 and raw[9] == LOG2
    assert len(raw) == HEADER_BYTES + n + chunks * TAG_BYTES
    with SealedReader(tmp_path / "f", KEY) as r:
        assert r.size == n and r.read() == data
        r.seek(n // 3)
        assert r.read(CHUNK + 5) == data[n // 3:n // 3 + CHUNK + 5]
        r.seek(-min(n, 2), os.SEEK_END)
        assert r.read() == data[n - min(n, 2):]


def test_same_plaintext_seals_differently_per_file(tmp_path):
    _seal(tmp_path / "a", b"x" * 100)
    _seal(tmp_path / "b", b"x" * 100)
    a, b = (tmp_path / "a").read_bytes(), (tmp_path / "b").read_bytes()
    assert a[10:HEADER_BYTES] != b[10:HEADER_BYTES] and a[HEADER_BYTES:] != b[HEADER_BYTES:]
    assert b"x" * 16 not in a


def test_parquet_streams_through_and_reads_back(tmp_path):
    table = pa.table({"row": np.arange(20_000), "text": [f"original text {i}" for i in range(20_000)]})
    sink = SealedWriter(tmp_path / "t.parquet", KEY, chunk_log2=12)
    with pq.ParquetWriter(sink, table.schema) as w:
        w.write_table(table, row_group_size=5_000)
    sink.close()
    assert is_sealed(tmp_path / "t.parquet")
    assert b"original text" not in (tmp_path / "t.parquet").read_bytes()
    with SealedReader(tmp_path / "t.parquet", KEY) as r:
        assert pq.read_table(r).equals(table)
    with SealedReader(tmp_path / "t.parquet", KEY) as r:   # random access: one row group, footer first
        assert pq.ParquetFile(r).read_row_group(2).column("row").to_pylist() == list(range(10_000, 15_000))


def test_no_key_wrong_key_cut_reordered_and_edited_are_refused(tmp_path):
    f = tmp_path / "f"
    _seal(f, os.urandom(3 * CHUNK + 10))
    with pytest.raises(SealedFileError, match=r"f is encrypted \(AES-GCM\); give the key it was written with"):
        SealedReader(f, None)
    broken = "cannot be decrypted with this key (chunk {} of {} fails authentication): a wrong " \
             "privacy.quarantine_key_file, or the file was altered or cut"
    with pytest.raises(SealedFileError, match=broken.format(4, 4).replace("(", r"\(").replace(")", r"\)")):
        SealedReader(f, b"another-key-0123456789abcdef0123456789")
    raw = f.read_bytes()
    step = CHUNK + TAG_BYTES
    cases = {
        "cut": raw[:-TAG_BYTES - 3],                                         # the final chunk is short
        "dropped final": raw[:HEADER_BYTES + 3 * step],                      # a non-final chunk now ends the file
        "reordered": raw[:HEADER_BYTES] + raw[HEADER_BYTES + step:HEADER_BYTES + 2 * step]
                     + raw[HEADER_BYTES:HEADER_BYTES + step] + raw[HEADER_BYTES + 2 * step:],
        "edited header": raw[:12] + bytes([raw[12] ^ 1]) + raw[13:],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SealedFileError, match="cannot be decrypted with this key"):
            with SealedReader(tmp_path / name, KEY) as r:
                r.read()
    (tmp_path / "v9").write_bytes(raw[:8] + b"\x09" + raw[9:])
    with pytest.raises(SealedFileError, match="container version 9, this sensorpipe reads version 1"):
        SealedReader(tmp_path / "v9", KEY)
