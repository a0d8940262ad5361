"""Peak memory of one participant's long recording: 1 Hz heart rate for ``--days`` days.

A unit of work is one person, so the longest recording sets the memory a
worker needs. This writes one participant's heart rate at 1 Hz (a chest strap
or a watch in workout mode all day: 86,400 rows a day, with a 2-hour gap each
night and a whole day missing each week) as a long-format Parquet file, then
times ``sensorpipe run`` on it as a separate process (local runner, so the
peak resident set of that process is the unit's) and reports its peak RSS,
read from the kernel's accounting of the child (``os.wait4`` in a small launcher,
``_measured.py``; the same number ``/usr/bin/time -v`` prints as "Maximum resident
set size").

    python benchmarks/bench_long_recording.py --days 90 365 730 [--chunk-days 30] [--with-cgm] [--dir .bench-long]

Each ``--days`` value is one run; the input is generated once per length and
reused. ``--chunk-days 0`` processes the participant unchunked. ``--with-cgm``
adds a Dexcom Clarity export of the same person over the same days (a reading
every 5 minutes, some ``Low``/``High``), a second source of one study: the
strap is streamed beside the CGM, which is read whole and fused on the grid.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from _measured import run_measured

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2023-01-02T00:00:00", "s")
DAY_S = 86_400
KEY = "0123456789abcdef0123456789abcdef"


def write_recording(path: Path, days: int, seed: int = 7) -> int:
    """One participant's 1 Hz heart rate for ``days`` days, written a day at a time; returns the rows."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([("participant", pa.string()), ("field", pa.string()), ("t_ms", pa.int64()),
                        ("value", pa.float64())])
    rows = 0
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as w:
        for d in range(days):   # one iteration per day: memory holds a day
            if d % 7 == 6:
                continue        # a day off each week
            s = np.arange(DAY_S, dtype=np.int64)
            s = s[(s < 2 * 3600) | (s >= 4 * 3600)]   # the strap charges from 02:00 to 04:00
            base = 62 + 18 * np.sin(2 * np.pi * (s / DAY_S - 0.3))
            hr = np.round(base + rng.normal(0, 4, s.size), 1)
            t_ms = (START.astype(np.int64) + d * DAY_S + s) * 1000
            n = s.size
            w.write_table(pa.table({"participant": pa.array(["p001"] * n), "field": pa.array(["hr"] * n),
                                    "t_ms": t_ms, "value": hr}, schema=schema))
            rows += n
    tmp.replace(path)
    return rows


def write_cgm(folder: Path, days: int, seed: int = 8) -> int:
    """The same participant's Dexcom Clarity export over the same days (5-minute readings, every 150th
    ``Low`` and every 170th ``High``) with its participants table; returns the readings."""
    sys.path.insert(0, str(ROOT / "src"))
    from sensorpipe.demo._clarity_writer import clarity_seconds, write_clarity_csv
    from sensorpipe.demo._synth_signals import utc_to_local

    rng = np.random.default_rng(seed)
    t = START.astype(np.int64) + 300 * np.arange(days * 288, dtype=np.int64)
    mgdl = 140 + 60 * np.sin(np.arange(t.size) / 30.0) + rng.normal(0, 8, t.size)
    mgdl[::150], mgdl[75::170] = 30.0, 450.0
    write_clarity_csv(folder / "p001.csv", utc_to_local(t + clarity_seconds(rng, t.size), "Europe/Berlin"), mgdl,
                      mmol=False, transmitter="8BENCH", first_name="X")
    (folder / "participants.csv").write_text("participant_id,tz\np001,Europe/Berlin\n")
    return int(t.size)


def config(root: Path, chunk_days: int | None, with_cgm: bool = False) -> dict:
    cfg = {
        "sources": [{"name": "strap", "adapter": "long_table", "path": str(root / "input"), "options": {
            "tz": "Europe/Berlin",
            "files": [{"glob": "*.parquet", "participant_column": "participant", "field_column": "field",
                       "time_column": "t_ms", "time_format": "epoch_ms", "value_column": "value"}],
            "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}}}],
        "channels": ["heart_rate"],
        "window": {"size_min": 1440, "stride_min": 1440, "alignment": "local_midnight", "max_missing_ratio": 0.8},
        "splits": {"train": 1.0, "validation": 0.0, "test": 0.0},
        "output": {"dir": str(root / "out"), "name": "long", "version": "1.0.0", "formats": ["array_record"]},
        "runner": {"name": "local"},
        "privacy": {"pseudonymize": True, "key_file": str(root / "pseudonym.key")},
    }
    if chunk_days is not None:
        cfg["limits"] = {"chunk_days": chunk_days}
    if with_cgm:   # one study: the strap and the CGM are one person's sources, fused onto one grid
        cfg["sources"][0]["study"] = "long"
        cfg["sources"].append({"name": "cgm", "adapter": "dexcom_clarity", "path": str(root / "cgm"),
                               "participants": str(root / "cgm" / "participants.csv"), "study": "long"})
        cfg["channels"] = ["heart_rate", "glucose", "glucose_censored"]
    return cfg


def run_once(root: Path, chunk_days: int | None, with_cgm: bool = False) -> tuple[float, float, int]:
    """(peak RSS in MiB, wall seconds, train windows written) of one ``sensorpipe run`` process."""
    cfg_path = root / "pipeline.yaml"
    cfg_path.write_text(yaml.safe_dump(config(root, chunk_days, with_cgm)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    cli = "import sys; from sensorpipe.cli import main; sys.exit(main())"
    log = root / "run.log"
    wall, peak_mib, returncode = run_measured([sys.executable, "-c", cli, "run", str(cfg_path)], log, env, root)
    out = log.read_text()
    if returncode:
        raise SystemExit(f"sensorpipe run failed ({returncode}):\n{out[-3000:]}")
    m = re.search(r"^windows\s+train ([\d,]+)", out, re.M)
    if not m:
        raise SystemExit(f"sensorpipe run printed no window counts:\n{out[-3000:]}")
    return peak_mib, wall, int(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, nargs="+", default=[90, 365, 730])
    ap.add_argument("--chunk-days", type=int, default=None,
                    help="limits.chunk_days for the run (default: the pipeline's default; 0: unchunked)")
    ap.add_argument("--with-cgm", action="store_true",
                    help="add a Dexcom Clarity CGM export of the same person (a second source, read whole)")
    ap.add_argument("--dir", default=".bench-long")
    args = ap.parse_args()
    base = Path(args.dir).resolve()
    print(f"machine      {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"chunk_days   {'default' if args.chunk_days is None else args.chunk_days}")
    print(f"sources      strap (1 Hz heart rate){' + cgm (Dexcom Clarity, 5 min)' if args.with_cgm else ''}")
    print(f"{'days':>6} {'rows':>12} {'windows':>8} {'peak RSS MiB':>13} {'wall s':>8}")
    for days in args.days:
        root = base / f"days-{days}"
        (root / "input").mkdir(parents=True, exist_ok=True)
        data = root / "input" / "hr.parquet"
        marker = root / "input" / ".rows"
        if not (data.exists() and marker.exists()):
            marker.write_text(str(write_recording(data, days)))
        rows = int(marker.read_text())
        if args.with_cgm:
            cgm_marker = root / "cgm" / ".rows"
            if not cgm_marker.exists():
                (root / "cgm").mkdir(exist_ok=True)
                cgm_marker.write_text(str(write_cgm(root / "cgm", days)))
            rows += int(cgm_marker.read_text())
        (root / "pseudonym.key").write_text(KEY)
        shutil.rmtree(root / "out", ignore_errors=True)
        rss, wall, windows = run_once(root, args.chunk_days, args.with_cgm)
        print(f"{days:>6} {rows:>12,} {windows:>8,} {rss:>13,.0f} {wall:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
