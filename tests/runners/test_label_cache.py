"""Editing a label side file (an activity log) invalidates the unit cache: labels and captions follow."""

from __future__ import annotations

import copy
import json

import sensorpipe
from sensorpipe.config import load_config
from sensorpipe.core.labels import BY_NAME
from sensorpipe.runners.driver import run_pipeline


def _activity_events(out_dir):
    ds = sensorpipe.open(out_dir)
    names = BY_NAME["activity"].names
    labels = sorted(names[ex["labels"]["activity"]] for s in ds.splits for ex in ds[s] if ex["labels"]["activity"] >= 0)
    events = sorted(e[3] for s in ds.splits for ex in ds[s] for e in json.loads(ex["events"]))
    return labels, events


def test_changed_activity_log_is_not_served_from_the_cache(copied_sources, base_config):
    cfg = copy.deepcopy(base_config)
    cfg["sources"] = [s for s in cfg["sources"] if s["name"] == "fitbit_cohort"]
    cfg["output"]["dir"] = str(copied_sources / "out")
    cfg["splits"] = {"train": 1.0, "validation": 0.0, "test": 0.0}
    run_pipeline(load_config(cfg, base_dir=str(copied_sources)))
    labels, events = _activity_events(copied_sources / "out")
    assert "walking" in labels and "walking" in events and "cycling" not in events
    log = copied_sources / "fitbit_cohort" / "activities.csv"
    log.write_text(log.read_text().replace("walking", "cycling"))
    run_pipeline(load_config(cfg, base_dir=str(copied_sources)), overwrite=True)   # new inputs, same label
    labels, events = _activity_events(copied_sources / "out")
    assert "walking" not in events and "cycling" in events and "cycling" in labels
