"""Shared fixtures: a small, realistic multi-source cohort and one pipeline run over it.

Built once per test session (a few seconds) and reused read-only; tests that
change inputs copy the sources first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from sensorpipe.demo import synthetic

KEY = "0123456789abcdef0123456789abcdef"


def build_sources(root: Path, days: int = 3) -> dict:
    """Write the four demo formats at test size; return the pipeline config mapping."""
    synthetic.write_minute_cohort(root / "fitbit_cohort", 4, days, seed=11)
    synthetic.write_metabolic_study(root / "metabolic_study", 3, days, seed=12, start_date="2024-03-08")
    synthetic.write_e4_study(root / "stress_lab", 2, 3.0, seed=13)
    synthetic.write_outcome_cohort(root / "covid_cohort", 2, days, seed=14)
    (root / "pseudonym.key").write_text(KEY)
    cfg = synthetic.pipeline_config()
    cfg["output"]["target_shard_mb"] = 0.5
    cfg["output"]["dir"] = "out"
    cfg["splits"] = {"train": 0.5, "validation": 0.25, "test": 0.25}
    return cfg


def write_config(root: Path, cfg: dict, name: str = "pipeline.yaml") -> Path:
    path = root / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _registries_restored():
    """A class a test defines registers itself (``__init_subclass__``): every registry is restored after the test."""
    from contextlib import ExitStack

    from sensorpipe.registry import REGISTRIES

    with ExitStack() as stack:
        for reg in list(REGISTRIES.values()):
            stack.enter_context(reg.scoped())
        yield


@pytest.fixture(scope="session")
def sources_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    cfg = build_sources(root)
    write_config(root, cfg)
    return root


@pytest.fixture(scope="session")
def base_config(sources_dir) -> dict:
    return yaml.safe_load((sources_dir / "pipeline.yaml").read_text())


@pytest.fixture(scope="session")
def local_run(sources_dir):
    """One local run over the shared sources (read-only for tests)."""
    from sensorpipe.runners.driver import run_pipeline

    return run_pipeline(str(sources_dir / "pipeline.yaml"), runner="local")


@pytest.fixture
def copied_sources(sources_dir, tmp_path) -> Path:
    """A private copy of the sources (without outputs) that a test may modify."""
    dst = tmp_path / "src"
    shutil.copytree(sources_dir, dst, ignore=shutil.ignore_patterns("out", "out*"))
    return dst
