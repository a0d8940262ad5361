"""The quarantine benchmark script runs (tiny cohort), so a changed signature breaks the build, not the benchmark."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quarantine_prints_rows_wall_and_rss_per_share(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_quarantine", ROOT / "benchmarks" / "bench_quarantine.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--participants", "2", "--days", "1", "--shares", "0", "0.35", "--repeat", "1",
                     "--dir", str(tmp_path)]) == 0
    rows = re.findall(r"^this\s+2x1\s+(\d+)%\s+([\d,]+)\s+([\d,]+)\s+([\d.]+) s .* \d+-(\d+) MiB$", capsys.readouterr().out,
                      re.M)
    assert [r[0] for r in rows] == ["0", "35"]
    per_day = 1440 * 12 + 1440                         # 5-s heart rate and minute steps
    assert all(int(r[2].replace(",", "")) == 2 * per_day for r in rows)
    quarantined = [int(r[1].replace(",", "")) for r in rows]
    assert quarantined[0] == 0 and 0.3 < quarantined[1] / (2 * per_day) < 0.4
    assert all(float(r[3]) > 0 and int(r[4]) > 50 for r in rows)
