"""A tiny long-table cohort (heart rate every minute for two days per person) for cache and failure tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

MINUTES = np.arange(np.datetime64("2024-05-02T00:00"), np.datetime64("2024-05-04T00:00"))


def rows(pid: str, shift: int = 0) -> list[str]:
    return [f"{m}:00Z,hr,{60 + (i * 7 + len(pid) + shift) % 13}" for i, m in enumerate(MINUTES)]


def write_cohort(data: Path, pids: tuple[str, ...] = ("p1", "p2", "p3"), shared: bool = False) -> None:
    """One CSV per person (``<pid>.csv``, no participant column), or one shared file with a participant column."""
    data.mkdir(parents=True, exist_ok=True)
    if shared:
        body = [f"{pid},{r}" for pid in pids for r in rows(pid)]
        (data / "all.csv").write_text("participant,t,signal,value\n" + "\n".join(body) + "\n")
    else:
        for pid in pids:
            (data / f"{pid}.csv").write_text("t,signal,value\n" + "\n".join(rows(pid)) + "\n")


def config(root: Path, data: Path, out: str = "out", shared: bool = False, **sections) -> dict:
    spec = {"glob": "*.csv", "field_column": "signal", "time_column": "t", "time_format": "iso",
            "value_column": "value", **({"participant_column": "participant"} if shared else {})}
    cfg = {"sources": [{"name": "tiny", "adapter": "long_table", "path": str(data), "options": {
               "tz": "Europe/Berlin", "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}, "files": [spec]}}],
           "channels": ["heart_rate"], "window": {"size_min": 720, "stride_min": 720, "alignment": "none"},
           "output": {"dir": str(root / out), "name": "tiny", "target_shard_mb": 0.05},
           "privacy": {"pseudonymize": False}, "splits": {"train": 1.0, "validation": 0.0, "test": 0.0}}
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def shard_bytes(version_dir: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(version_dir).iterdir())
            if ".array_record-" in p.name or ".tfrecord-" in p.name}
