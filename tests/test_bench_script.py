"""Every benchmark script runs at a tiny size, so a signature change breaks the build, not the benchmark.

Each script in ``benchmarks/`` (``bench_*.py``) runs as users run it: a
whole ``python benchmarks/<script>.py`` process with ``src`` on the path, a
few seconds each. A new script without an entry in :data:`TINY` fails
:func:`test_every_benchmark_script_has_a_tiny_run`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH / "bench_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _script(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _rates(out: str) -> dict[str, float]:
    """The summary table of bench_loaders: reader name -> median examples/s."""
    table = out.split("median of the timed epochs", 1)[1]
    return {m.group(1).strip(): float(m.group(2).replace(",", ""))
            for m in re.finditer(r"^(\S[^\n]*?)\s{2,}([\d,]+) examples/s", table, re.M)}


def _tiny_pipeline(tmp):
    out = _script("bench_pipeline.py", "--participants", "2", "--days", "2", "--runner", "multiprocess",
                  "--workers", "2", "--layout", "single-file", "--quarantine-share", "0.2", "--dir", str(tmp)).stdout
    assert "runner       multiprocess" in out
    made = int(re.search(r"layout\s+single-file; ([\d,]+) rows made invalid", out).group(1).replace(",", ""))
    quarantined = int(re.search(r"invalid \(.*\); ([\d,]+) quarantined", out).group(1).replace(",", ""))
    rows = int(re.search(r"input\s+[\d,]+ observations \(([\d,]+) rows", out).group(1).replace(",", ""))
    assert made == quarantined and abs(made / rows - 0.2) < 1e-3
    assert list((tmp / "out" / "bench").glob("*/bench-train.array_record-*"))


def test_the_input_is_made_in_another_process_so_the_reported_peak_is_the_runs(tmp_path, monkeypatch):
    """bench_pipeline reports its own process's peak RSS as the run's driver: the cohort is generated (and
    laid out) in a child process, whose peak is not this one's."""
    mod = _bench()
    made_in = tmp_path / "made-in"
    real = mod.synthetic.write_minute_cohort

    def write(*args, **kwargs):
        made_in.write_text(str(os.getpid()))
        return real(*args, **kwargs)

    monkeypatch.setattr(mod.synthetic, "write_minute_cohort", write)
    folder, invalid = mod._laid_out_elsewhere(tmp_path / "bench", 1, 1, 0, "single-file", 0.1)
    assert int(made_in.read_text()) != os.getpid()
    assert list((folder / "fitbit_cohort" / "minute").glob("*.parquet")) and sum(invalid.values()) > 0


def _tiny_loaders(tmp):
    out = _script("bench_loaders.py", "--participants", "2", "--days", "3", "--repeats", "1", "--dir",
                  str(tmp)).stdout
    rates = _rates(out)
    expected = {"raw ArrayRecord bytes (limit)", "sensorpipe.open() random access", "torch DataLoader, 0 workers",
                "torch DataLoader, 1 workers", "torch DataLoader, 2 workers", "grain DataLoader, 0 workers",
                "grain DataLoader, 2 workers", "tf.data from ArrayRecord"}
    assert set(rates) == expected and all(r > 0 for r in rates.values()), out
    n = int(re.search(r"split train: (\d+) examples of \(1440, 9\)", out).group(1))
    assert n >= 2
    t = {w: rates[f"torch DataLoader, {w} workers"] for w in (0, 1, 2)}
    line = re.search(r"torch 2 workers / 1 worker: ([\d.]+)x; 2 workers / in-process: ([\d.]+)x", out)
    assert float(line.group(2)) == pytest.approx(t[2] / t[0], abs=0.01)


def _tiny_features(tmp):
    out = _script("bench_features.py", "--hours", "1").stdout
    minutes = re.search(r"sensorpipe wall .*'ppg_minute_values': (\d+), 'acc_minute_values': (\d+)", out)
    assert 50 <= int(minutes.group(2)) <= 60 * 9   # 60 minutes, ACC values per minute per feature
    assert re.search(r"neurokit2 wall\s+[\d.]+ s", out) and "sensorpipe / baseline wall time:" in out


def _tiny_metadata(tmp):
    out = _script("bench_metadata.py", "2000").stdout
    assert re.findall(r"record_run #(\d) with 2000 lineage rows: [\d.]+ s", out) == ["1", "2", "3"]


def _tiny_quarantine(tmp):
    """Both shares on a 2 x 1 cohort: rows in as generated, about 35 % of them quarantined at the second."""
    out = _script("bench_quarantine.py", "--participants", "2", "--days", "1", "--shares", "0", "0.35",
                  "--repeat", "1", "--dir", str(tmp)).stdout
    rows = re.findall(r"^this\s+2x1\s+(\d+)%\s+([\d,]+)\s+([\d,]+)\s+([\d.]+) s .* \d+-(\d+) MiB$", out, re.M)
    assert [r[0] for r in rows] == ["0", "35"]
    per_day = 1440 * 12 + 1440                         # 5-s heart rate and minute steps
    assert all(int(r[2].replace(",", "")) == 2 * per_day for r in rows)
    quarantined = [int(r[1].replace(",", "")) for r in rows]
    assert quarantined[0] == 0 and 0.3 < quarantined[1] / (2 * per_day) < 0.4
    assert all(float(r[3]) > 0 and int(r[4]) > 50 for r in rows)


def _tiny_start(tmp):
    """One timed run; the import breakdown names the stage that loads each heavy library."""
    out = _script("bench_start.py", "--repeat", "1", "--dir", str(tmp)).stdout
    m = re.search(r"this tree\s+min ([\d.]+) s, median ([\d.]+) s", out)
    assert m and 0 < float(m.group(1)) <= float(m.group(2))
    importer = dict(re.findall(r"^\s+(\S+)\s+[\d.]+ ms\s+(.+)$", out, re.M))
    # the libraries come in with the stages that need them, not at start-up
    assert importer["scipy.signal"].startswith(("captions/segments.py:", "captions/_scipy_signal.py:"))
    assert importer["tensorflow_datasets"].startswith("storage/")
    assert importer["sqlalchemy"].startswith(("runners/driver.py:", "quality/", "metadata/"))
    assert importer["sqlalchemy"].endswith("via metadata/store.py")
    assert list((tmp / "out" / "bench").glob("*/bench-train.array_record-*"))


def _tiny_long_recording(tmp):
    """Three days of 1 Hz heart rate, streamed in 1-day chunks and whole: the same windows, a peak RSS each."""
    rows = {}
    for chunk in ("1", "0"):
        out = _script("bench_long_recording.py", "--days", "3", "--chunk-days", chunk, "--dir", str(tmp)).stdout
        assert f"chunk_days   {chunk}" in out
        days, n, windows, rss, wall = re.search(r"^\s+3\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)$", out,
                                                 re.M).group(0).split()
        rows[chunk] = (int(n.replace(",", "")), int(windows.replace(",", "")))
        assert 100 < int(rss.replace(",", "")) < 4000 and float(wall) > 0
    assert rows["1"] == rows["0"] == (3 * 79_200, rows["0"][1]) and rows["0"][1] >= 2
    assert list((tmp / "days-3" / "out" / "long").glob("*/long-train.array_record-*"))
    out = _script("bench_long_recording.py", "--days", "3", "--chunk-days", "1", "--with-cgm", "--dir", str(tmp)).stdout
    assert "+ cgm (Dexcom Clarity, 5 min)" in out   # the strap's file is reused; the CGM adds 3 days of readings
    n, windows = re.search(r"^\s+3\s+([\d,]+)\s+([\d,]+)\s", out, re.M).groups()
    assert int(n.replace(",", "")) == 3 * 79_200 + 3 * 288 and int(windows) == rows["0"][1]
    assert (tmp / "days-3" / "cgm" / "p001.csv").stat().st_size > 3 * 288 * 50


def _tiny_vs_baseline(tmp):
    """--vs-baseline on the baseline's own 1 x 2 file: both sides make the same day windows; the printed
    ratio is the quotient of the printed minimums."""
    out = _script("bench_pipeline.py", "--vs-baseline", "--participants", "1", "--days", "2", "--runner", "local",
                  "--layout", "single-file", "--repeats", "1", "--dir", str(tmp)).stdout
    base = float(re.search(r"pandas baseline\s+min\s+([\d.]+) s", out).group(1))
    ours = float(re.search(r"sensorpipe run\s+min\s+([\d.]+) s", out).group(1))
    ratio = float(re.search(r"baseline / sensorpipe = ([\d.]+)", out).group(1))
    assert ratio == pytest.approx(base / ours, abs=0.01 + 0.01 * ratio)
    split = re.search(r"windows\s+baseline (\d+); sensorpipe train (\d+), validation (\d+), test (\d+)", out)
    assert int(split.group(1)) == 2 == sum(int(split.group(i)) for i in (2, 3, 4)), out
    assert re.search(r"in ([\d,]+) = accepted \1 \+ quarantined 0", out), out


def _tiny_rss(tmp):
    """Two sizes of one layout and share: a peak per size, the growth between them, and the verdict."""
    out = _script("bench_rss.py", "--participants", "2", "1", "--days", "1", "--repeat", "1", "--layouts",
                  "single-file", "--shares", "0.35", "--dir", str(tmp)).stdout
    row = re.search(r"^single-file\s+35%\s+(\d+) MiB\s+(\d+) MiB\s+([+-][\d.]+)%\s+(met|NOT met)$", out, re.M)
    assert row, out
    small, large, growth = int(row.group(1)), int(row.group(2)), float(row.group(3))
    assert small > 50 and large > 50 and growth == pytest.approx(100 * (large / small - 1), abs=0.6)
    if abs(growth - 10) > 0.06:   # the verdict uses the exact peaks, the printed growth is rounded to 0.1 %
        assert (row.group(4) == "met") == (growth <= 10)
    assert "1 x 1" in out and "2 x 1" in out and (tmp / "rss1").is_dir() and (tmp / "rss2").is_dir()


def _tiny_beam(tmp):
    """The beam runner in process (in_memory) against the local runner: same shards, its bytes per pipeline."""
    out = _script("bench_beam.py", "--participants", "2", "--days", "2", "--runners", "local", "beam-in-memory",
                  "--dir", str(tmp)).stdout
    assert re.search(r"^\[0\] local \(this process\)\s+wall\s+[\d.]+ s", out, re.M), out
    assert "[0] beam (DirectRunner, in_memory, 2 worker(s))" in out, out
    volumes = re.search(r"pass 1: prepare\s+items_bytes ([\d,]+), side_input_bytes ([\d,]+), results_bytes ([\d,]+), "
                        r"combine_input_bytes ([\d,]+)", out)
    assert volumes and all(int(g.replace(",", "")) > 0 for g in volumes.groups()), out
    assert "counters " in out and "units_prepared 2" in out and "shards identical across runners: True" in out


TINY = {
    "bench_beam.py": _tiny_beam,
    "bench_pipeline.py": _tiny_pipeline,
    "bench_loaders.py": _tiny_loaders,
    "bench_features.py": _tiny_features,
    "bench_metadata.py": _tiny_metadata,
    "bench_quarantine.py": _tiny_quarantine,
    "bench_start.py": _tiny_start,
    "bench_long_recording.py": _tiny_long_recording,
    "bench_rss.py": _tiny_rss,
}


def test_every_benchmark_script_has_a_tiny_run():
    assert sorted(p.name for p in BENCH.glob("bench_*.py")) == sorted(TINY)
    assert not [p.name for p in BENCH.glob("*.py") if not p.name.startswith(("bench_", "_"))]


@pytest.mark.parametrize("name", sorted(TINY))
def test_benchmark_script_runs_at_a_tiny_size(name, tmp_path):
    TINY[name](tmp_path)


@pytest.mark.skipif(not (ROOT.parent / "shared" / "benchmarks" / "lsm_baseline.py").exists(),
                    reason="the peer baseline lives in the shared checkout beside the repository (CI has it)")
def test_vs_baseline_times_both_sides_on_the_same_input(tmp_path):
    _tiny_vs_baseline(tmp_path)


def test_vs_baseline_without_the_baseline_script_says_where_it_looked(tmp_path):
    proc = _script("bench_pipeline.py", "--vs-baseline", "--baseline", str(tmp_path / "nowhere.py"), "--dir",
                   str(tmp_path), check=False)
    assert proc.returncode == 2
    assert f"the peer baseline {tmp_path / 'nowhere.py'} does not exist" in proc.stderr
    assert "pass --baseline PATH" in proc.stderr and "Traceback" not in proc.stderr


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


@pytest.mark.skipif(sys.platform != "linux", reason="Linux keeps a process's peak RSS across exec")
def test_measured_peak_rss_is_the_command_s_not_the_benchmark_s(tmp_path):
    """A benchmark that holds memory (a generated cohort) does not lend it to the command it measures: started
    directly, ``python -c pass`` reads as large as its parent; through ``_measured.run_measured`` it is small."""
    import numpy as np

    spec = importlib.util.spec_from_file_location("_measured", BENCH / "_measured.py")
    measured = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measured)
    held = np.ones(40_000_000)                 # 305 MiB, resident
    direct = subprocess.Popen([sys.executable, "-c", "pass"])
    inherited_mib = os.wait4(direct.pid, 0)[2].ru_maxrss / 1024
    wall_s, peak_mib, returncode = measured.run_measured([sys.executable, "-c", "print('ran')"], tmp_path / "log")
    assert held.sum() == 40_000_000
    assert inherited_mib > 300 and peak_mib < 100 and returncode == 0 and 0 < wall_s < 60
    assert (tmp_path / "log").read_text() == "ran\n"
