"""A tiny cohort (two people, one day, 6-hour windows) and helpers for the version lifecycle tests.

One run takes well under a second in process, about three as a ``sensorpipe run`` subprocess.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sensorpipe.demo import synthetic

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="package")
def tiny_sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    synthetic.write_minute_cohort(root / "fitbit_cohort", 2, 1, seed=0)
    (root / "pseudonym.key").write_text("versions-test-key-0123456789")
    return root


def tiny_config(root: Path, out: Path, name: str = "pipeline.yaml", version: str = "1.0.0",
                release_notes: str = "", source_options: dict | None = None, window: dict | None = None) -> Path:
    """Write a config over ``root``'s sources into ``out``; ``release_notes`` changes the fingerprint only."""
    source = synthetic.pipeline_config()["sources"][0]
    if source_options:
        source["options"]["files"][0].update(source_options)
    cfg = {
        "sources": [source],
        "channels": ["heart_rate", "steps"],
        "window": {"size_min": 360, "stride_min": 360, **(window or {})},
        "splits": {"train": 0.5, "validation": 0.25, "test": 0.25},
        "output": {"dir": str(out), "name": "tiny", "version": version, "release_notes": release_notes},
        "privacy": {"pseudonymize": True, "key_file": str(root / "pseudonym.key")},
    }
    path = root / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (byte-identity of a version)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """``sensorpipe ARGS`` as its own process."""
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]),
            **(env or {})}
    return subprocess.run([sys.executable, "-m", "sensorpipe.cli", *args], env=full, capture_output=True,
                          text=True, timeout=timeout)
