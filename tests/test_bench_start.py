"""The start-up benchmark script runs (one timed run): it must not break silently, and its import breakdown
names the stage that loads each heavy library."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_start", ROOT / "benchmarks" / "bench_start.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_start_times_the_run_and_names_who_imports_what(tmp_path, capsys):
    assert _bench().main(["--repeat", "1", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    m = re.search(r"this tree\s+min ([\d.]+) s, median ([\d.]+) s", out)
    assert m and 0 < float(m.group(1)) <= float(m.group(2))
    importer = dict(re.findall(r"^\s+(\S+)\s+[\d.]+ ms\s+(.+)$", out, re.M))
    # the libraries come in with the stages that need them, not at start-up
    assert importer["scipy.signal"].startswith("captions/segments.py:")
    assert importer["tensorflow_datasets"].startswith("storage/")
    assert importer["sqlalchemy"].startswith(("runners/driver.py:", "quality/", "metadata/"))
    assert importer["sqlalchemy"].endswith("via metadata/store.py")
    assert list((tmp_path / "out" / "bench").glob("*/bench-train.array_record-*"))
