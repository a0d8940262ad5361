"""A tiny long-table cohort (heart rate and steps every minute, four people, two days) whose heart rate can be
shifted: two runs of it make two versions with a planted drift (quality/drift.py, the drift alert)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sensorpipe.runners.driver import run_pipeline

MINUTES = np.arange(np.datetime64("2024-05-02T00:00"), np.datetime64("2024-05-04T00:00"))
PEOPLE = ("p1", "p2", "p3", "p4")


def write_cohort(data: Path, hr_shift_bpm: float = 0.0, seed: int = 3) -> None:
    """One CSV per person: heart rate ~ N(70, 8) bpm (+ ``hr_shift_bpm``), steps ~ Poisson(4), each minute."""
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for pid in PEOPLE:
        hr = np.round(rng.normal(70.0, 8.0, MINUTES.size) + hr_shift_bpm, 1)
        steps = rng.poisson(4.0, MINUTES.size)
        lines = [f"{m}:00Z,hr,{h}\n{m}:00Z,steps,{s}" for m, h, s in zip(MINUTES, hr, steps)]
        (data / f"{pid}.csv").write_text("t,signal,value\n" + "\n".join(lines) + "\n")


def config(data: Path, out: Path, version: str, **sections) -> dict:
    spec = {"glob": "*.csv", "field_column": "signal", "time_column": "t", "time_format": "iso",
            "value_column": "value"}
    cfg = {"sources": [{"name": "tiny", "adapter": "long_table", "path": str(data), "options": {
               "tz": "UTC", "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"},
                                       "steps": {"channel": "steps", "unit": "count"}}, "files": [spec]}}],
           "channels": ["heart_rate", "steps"], "window": {"size_min": 720, "stride_min": 720, "alignment": "none"},
           "output": {"dir": str(out), "name": "tiny", "version": version, "target_shard_mb": 0.05},
           "privacy": {"pseudonymize": False}, "splits": {"train": 0.5, "validation": 0.25, "test": 0.25}}
    cfg.update(sections)
    return cfg


def two_versions(root: Path, hr_shift_bpm: float = 15.0, **sections):
    """Run 1.0.0 over the cohort, then 2.0.0 over it with heart rate shifted; returns both RunResults."""
    data, out = root / "data", root / "out"
    write_cohort(data)
    first = run_pipeline(config(data, out, "1.0.0", **sections), runner="local")
    write_cohort(data, hr_shift_bpm)
    return first, run_pipeline(config(data, out, "2.0.0", **sections), runner="local")
