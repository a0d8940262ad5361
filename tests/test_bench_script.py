"""The pipeline benchmark script runs (tiny cohort): `make bench` must not break silently."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "benchmarks" / "bench_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("extra", [["--runner", "local"], ["--runner", "local", "--cold"]])
def test_bench_prints_throughput_and_the_runner(tmp_path, capsys, extra):
    assert _bench().main(["--participants", "2", "--days", "2", "--dir", str(tmp_path), *extra]) == 0
    out = capsys.readouterr().out
    obs = int(re.search(r"input\s+([\d,]+) observations", out).group(1).replace(",", ""))
    assert obs > 10_000 and "runner       local (this process)" in out
    rate = float(re.search(r"throughput\s+([\d.]+) M observations/s total", out).group(1))
    wall = float(re.search(r"wall\s+([\d.]+) s", out).group(1))
    # both printed rounded to 0.01: the rate lies between the bounds the wall's rounding allows
    assert obs / (wall + 0.005) / 1e6 - 0.005 <= rate <= obs / max(wall - 0.005, 1e-3) / 1e6 + 0.005
    assert ("with imports" in out) != ("--cold" in extra)
    assert list((tmp_path / "out" / "bench").glob("*/bench-train.array_record-*"))
