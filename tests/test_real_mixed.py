"""examples/real_mixed.yaml: seven formats (four with real recordings) in one dataset via `sensorpipe run`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

import sensorpipe
from sensorpipe.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "real_mixed.yaml"


def test_real_mixed_example_runs(tmp_path, capsys):
    cfg = yaml.safe_load(EXAMPLE.read_text())
    for s in cfg["sources"]:  # the copy lives elsewhere: make the example's relative paths absolute
        s["path"] = str((EXAMPLE.parent / s["path"]).resolve())
        if s.get("participants"):
            s["participants"] = str((EXAMPLE.parent / s["participants"]).resolve())
    cfg["output"]["dir"] = str(tmp_path / "out")
    path = tmp_path / "real_mixed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "= accepted" in out
    ds = sensorpipe.open(tmp_path / "out")
    per_dataset = Counter(ex["dataset"] for s in ds.splits for ex in ds[s])
    assert len(cfg["sources"]) == 7
    assert len(per_dataset) >= 5, per_dataset
    # the real recordings made it: Garmin rides, the watch dump, the PLUX EDF
    assert {"garmin_rides", "wrist_ppg_watch", "edf_lab"} <= set(per_dataset)
    from sensorpipe.metadata.store import MetadataStore

    store = MetadataStore(f"sqlite:///{tmp_path / 'out' / 'metadata.db'}")
    version = store.list_versions()[0]
    q = {(m["scope"], m["name"]): m["value"] for m in store.quality(version["fingerprint"])}
    for s in cfg["sources"]:   # rows reconcile for every source
        name = s["name"]
        assert q[(name, "rows_in")] == q[(name, "rows_accepted")] + q[(name, "rows_quarantined")]
    assert q[("bitalino_lab", "raw_samples_in")] > 30_000      # read, though too short for a minute
