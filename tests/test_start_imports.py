"""Import discipline of a fresh ``sensorpipe`` process: the heavy libraries load when a stage needs them.

Starting the CLI and building the run plan (which registers the caption levels,
adapters and label processors) must not import scipy.signal (captions' peak
finding, ~0.6 s), TensorFlow Datasets (the writer), SQLAlchemy (the metadata
step), matplotlib or NeuroKit2: a multiprocess run's driver does this before
its first workers start, and ``sensorpipe run bad.yaml`` should fail fast.
Checked in a subprocess (a clean ``sys.modules``), not by timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from sensorpipe.demo import synthetic

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("scipy.signal", "tensorflow_datasets", "sqlalchemy", "matplotlib", "neurokit2")

_PROBE = """
import json, sys
heavy = {heavy!r}
import sensorpipe.cli, sensorpipe.commands, sensorpipe.runners.driver
from sensorpipe.runners.plan import load_plan

args = sensorpipe.cli.build_parser().parse_args(["run", sys.argv[1]])
cfg = load_plan(args.config).config
before = sorted(m for m in heavy if m in sys.modules)
registered = "sensorpipe.captions.structural" in sys.modules
pandas_loaded = "pandas" in sys.modules
import sensorpipe.runners._warm   # what pass 2 and the run's tail load: every heavy library the run needs
after = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({{"levels": list(cfg.captions.levels), "registered": registered, "pandas": pandas_loaded,
                  "before": before,
                  "after": after}}))
"""


def _one_day_config(tmp_path: Path) -> Path:
    synthetic.write_minute_cohort(tmp_path / "fitbit_cohort", 1, 1, seed=0)
    cfg = {
        "sources": [synthetic.pipeline_config()["sources"][0]],
        "channels": ["heart_rate", "steps", "sleep_stage"],
        "window": {"size_min": 1440, "stride_min": 1440},
        "captions": {"levels": ["statistical", "structural", "semantic"]},   # validated: registers the levels
        "output": {"dir": str(tmp_path / "out"), "name": "start"},
        "privacy": {"pseudonymize": True, "key_file": str(tmp_path / "pseudonym.key")},
    }
    (tmp_path / "pseudonym.key").write_text("start-test-key-0123456789")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_cli_and_config_load_import_no_heavy_library(tmp_path):
    config = _one_day_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), str(config)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "structural" in seen["levels"]      # the level whose peak finding needs scipy.signal is configured
    assert seen["registered"]                  # ... and its module was imported by the run plan's checks
    # pass 1 needs pandas (pyarrow imports it at its first pa.array): the stages import it, so a multiprocess
    # run's forked (or forkserver-preloaded) workers inherit it instead of each importing it at its first unit
    assert seen["pandas"]
    assert seen["before"] == [], f"imported before any stage ran: {seen['before']}"
    # the probe is not vacuous: the warm-up module loads the run's heavy libraries under these names
    assert {"scipy.signal", "tensorflow_datasets", "sqlalchemy"} <= set(seen["after"])


def test_a_whole_cli_process_leaves_a_complete_version(tmp_path):
    """``sensorpipe run`` as its own process, through interpreter exit (the CLI freezes the objects still alive
    before exit instead of having the collector walk them): the published version, its metadata and the
    report are all there afterwards."""
    from sensorpipe.commands import list_versions

    config = _one_day_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "sensorpipe.cli", "run", str(config)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "windows   train 1, validation 0, test 0" in proc.stdout
    out = tmp_path / "out"
    versions = list_versions(str(out)).splitlines()
    assert len(versions) == 2 and versions[1].split()[:3] == ["start", "1.0.0", "published"]
    assert list((out / "start" / "1.0.0").glob("start-train.array_record-*"))
    assert (out / "report.html").stat().st_size > 1000
