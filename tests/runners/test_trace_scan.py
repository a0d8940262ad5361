"""``wipeout --verify``'s search: across block edges, whole-token raw ids, and inside compressed Parquet."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from sensorpipe.runners import trace_scan
from sensorpipe.runners.trace_scan import scan_traces

PSEUDONYM = "0123456789abcdef"


def test_matches_across_blocks_and_only_whole_raw_ids(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_scan, "BLOCK_BYTES", 7)       # the pseudonym spans three blocks
    (tmp_path / "a.bin").write_bytes(b"xxxxx" + PSEUDONYM.encode() + b"yy p7 zz")
    (tmp_path / "b.bin").write_bytes(b"xxxxxp77 p7x 0p7")      # p7 only inside longer tokens
    (tmp_path / "c.bin").write_bytes(b"p7")
    report = scan_traces(tmp_path, PSEUDONYM, {"p7"})
    assert report.hits == [("a.bin", "pseudonym"), ("a.bin", "raw id"), ("c.bin", "raw id")]
    assert not report.ok and report.files_scanned == 3 and "3 trace(s) found" in report.text()


def test_finds_text_that_parquet_stores_compressed(tmp_path):
    # the last value is compressed as back-references to the parts before it: no byte run holds it whole
    parts = [PSEUDONYM[:10], PSEUDONYM[10:], f"zz{PSEUDONYM[:10]}|{PSEUDONYM[10:]}"]
    pq.write_table(pa.table({"participant_id": parts + [PSEUDONYM]}), tmp_path / "q.parquet",
                   compression="zstd", use_dictionary=False)
    assert PSEUDONYM.encode() not in (tmp_path / "q.parquet").read_bytes()
    assert scan_traces(tmp_path, PSEUDONYM).hits == [("q.parquet", "pseudonym")]
    assert scan_traces(tmp_path, "fedcba9876543210").ok
