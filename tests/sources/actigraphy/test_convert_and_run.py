"""Every actigraphy format through the CLI: `sensorpipe convert` to Parquet and `sensorpipe run` to windows."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import yaml

from sensorpipe.cli import main
from tests.sources.actigraphy._common import DUMMY

#: adapter, dummy folder, channels, (accepted observations, quarantined rows), observed activity minutes
CASES = [
    ("actiwatch_awd", "awd", ("activity_counts", "light"), (1079, 1), 240 + 120),
    ("actigraph_agd", "agd", ("activity_counts", "steps", "light", "on_wrist"), (1434, 0), 60),
    ("actigraph_agd", "agd_capsense", ("activity_counts", "steps", "light", "on_wrist"), (2269, 1), 120),
    ("motionwatch_mtn", "mtn", ("activity_counts", "light"), (960, 0), 120),
    ("actiware_csv", "actiware", ("activity_counts", "light", "on_wrist"), (1108, 2), 120 + 89 + 60),
    ("acttrust_txt", "acttrust", ("activity_counts", "light", "on_wrist"), (1080, 0), 180),
]


@pytest.mark.parametrize("adapter, folder, channels, rows, _", CASES, ids=[c[1] for c in CASES])
def test_convert_writes_every_accepted_observation(tmp_path, capsys, adapter, folder, channels, rows, _):
    src = DUMMY / folder
    out = tmp_path / "obs.parquet"
    assert main(["convert", "--source", adapter, str(src), "--participants", str(src / "participants.csv"),
                 "-o", str(out)]) == 0
    obs = pq.read_table(out)
    assert obs.num_rows == rows[0]
    assert set(obs.column("channel").to_pylist()) == set(channels)
    quarantined = tmp_path / "obs.quarantine.parquet"
    assert (pq.read_table(quarantined).num_rows if quarantined.exists() else 0) == rows[1]


@pytest.mark.parametrize("adapter, folder, channels, _, activity_minutes", CASES, ids=[c[1] for c in CASES])
def test_run_builds_windows_holding_every_activity_minute(tmp_path, adapter, folder, channels, _, activity_minutes):
    """Hour windows tiling each recording (stride = size, no missing limit): their observed activity_counts
    minutes are exactly the recording's minutes."""
    import sensorpipe

    src = DUMMY / folder
    cfg = {"sources": [{"name": "acti", "adapter": adapter, "path": str(src),
                        "participants": str(src / "participants.csv")}],
           "channels": list(channels),
           "window": {"size_min": 60, "stride_min": 60, "max_missing_ratio": 1.0},
           "splits": {"train": 1.0, "validation": 0.0, "test": 0.0},
           "output": {"dir": str(tmp_path / "out"), "name": "acti"},
           "privacy": {"pseudonymize": False}}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    ds = sensorpipe.open(str(tmp_path / "out" / "acti"))
    train = ds["train"]
    assert len(train) > 0
    observed = sum(int((~train[i]["mask"][:, 0]).sum()) for i in range(len(train)))
    assert observed == activity_minutes
