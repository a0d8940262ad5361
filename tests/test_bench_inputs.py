"""The benchmark's input layouts (benchmarks/_inputs.py): same rows either way, the asked share invalid."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _inputs import LongColumns, write_layout  # noqa: E402

COLS = LongColumns(participant="user_id", field="metric", time="timestamp_ms", value="value")


def _sources(tmp_path, n_per=1000):
    paths = []
    for p in range(3):
        t = pa.table({"user_id": [f"u{p}"] * n_per, "metric": ["heart_rate", "steps"] * (n_per // 2),
                      "timestamp_ms": np.arange(n_per, dtype=np.int64) * 60_000, "value": np.full(n_per, 70.0 + p)})
        paths.append(tmp_path / f"u{p}.parquet")
        pq.write_table(t, paths[-1])
    return paths


def _rows(folder):
    t = pa.concat_tables([pq.read_table(f) for f in sorted(folder.glob("*.parquet"))])
    return sorted(zip(*(t.column(c).to_pylist() for c in ("user_id", "metric", "timestamp_ms", "value"))),
                  key=repr)


@pytest.mark.parametrize("share", [0.0, 0.35])
def test_both_layouts_hold_the_same_rows_with_the_share_invalid(tmp_path, share):
    src = _sources(tmp_path)
    one = write_layout(src, tmp_path / "one", "single-file", share, 7, COLS)
    each = write_layout(src, tmp_path / "each", "per-participant", share, 7, COLS)
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["all.parquet"]
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["u0.parquet", "u1.parquet", "u2.parquet"]
    assert one == each and sum(one.values()) == round(share * 1000) * 3
    rows = _rows(tmp_path / "one")
    assert rows == _rows(tmp_path / "each") and len(rows) == 3000
    assert sum(r[3] == -999.0 for r in rows) == one["sentinel_value"]
    assert sum(r[1] == "altitude" for r in rows) == one["unknown_field"]
    assert sum(r[2] is None for r in rows) == one["missing_time"]
    if share:
        # the kinds take turns within each source batch: 117 + 117 + 116 of its 350, three batches
        assert one == {"sentinel_value": 351, "unknown_field": 351, "missing_time": 348}
    else:
        assert rows == _rows(tmp_path)   # unchanged copies of the sources


def test_a_bad_layout_or_share_is_refused(tmp_path):
    with pytest.raises(ValueError, match="layout 'one': use one of per-participant, single-file"):
        write_layout([], tmp_path / "x", "one", 0.0, 0, COLS)
    with pytest.raises(ValueError, match=r"quarantine share 1.5: give a fraction in \[0, 1\)"):
        write_layout([], tmp_path / "x", "single-file", 1.5, 0, COLS)
