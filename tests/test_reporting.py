"""The report's window sample, read by a run from its record spills before the shards exist
(reporting.SpilledWindows), is the sample read from the written shards: the same windows, in the same order,
with the same values, so the report a run draws beside its shards is the one `sensorpipe report` rebuilds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import sensorpipe.access.decode as decode
import sensorpipe.reporting as reporting
from sensorpipe.reporting import SpilledWindows, sample_windows

from .runners.tiny_cohort import config, write_cohort, write_yaml

PEOPLE = ("p1", "p2", "p3", "p4", "p5", "p6")


def _noting_spills(monkeypatch) -> list[SpilledWindows]:
    """Every :class:`SpilledWindows` a run builds, in the list returned."""
    seen: list[SpilledWindows] = []
    real = SpilledWindows.of.__func__

    def noting(cls, *args):
        seen.append(real(cls, *args))
        return seen[-1]

    monkeypatch.setattr(SpilledWindows, "of", classmethod(noting))
    return seen


def _assert_same_sample(from_spills, from_shards) -> None:
    for a, b in zip(from_spills, from_shards, strict=True):
        assert (a.split, a.study, a.participant, a.key, a.start_utc_s, a.tz_offset_min) == \
               (b.split, b.study, b.participant, b.key, b.start_utc_s, b.tz_offset_min)
        assert a.values.dtype == b.values.dtype and np.array_equal(a.values, b.values, equal_nan=True)
        assert a.mask.dtype == bool and np.array_equal(a.mask, b.mask)


def _run(tmp_path: Path, monkeypatch, **sections) -> tuple[object, list[SpilledWindows]]:
    from sensorpipe.runners.driver import run_pipeline

    seen = _noting_spills(monkeypatch)
    write_cohort(tmp_path / "data", PEOPLE)
    for pid in PEOPLE:     # an hour missing in each person's first window: masked minutes among the observed
        f = tmp_path / "data" / f"{pid}.csv"
        lines = f.read_text().splitlines(keepends=True)
        f.write_text("".join(lines[:100] + lines[160:]))
    cfg = config(tmp_path, tmp_path / "data", splits={"train": 0.5, "validation": 0.25, "test": 0.25}, **sections)
    return run_pipeline(write_yaml(tmp_path / "p.yaml", cfg)), seen


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "protobuf"])
def test_the_sample_from_the_spills_is_the_sample_from_the_shards(tmp_path, monkeypatch, compiled):
    # fewer windows than a split holds, so the sample stops inside a person's spill
    monkeypatch.setattr(reporting, "SAMPLE_WINDOWS", {"train": 5, "validation": 3, "test": 2})
    if not compiled:
        monkeypatch.setattr(decode, "_compile_c", lambda layout: None)
    result, seen = _run(tmp_path, monkeypatch)
    (spilled,) = seen
    assert sum(len(spills) > 1 for _, spills in spilled.splits) >= 1       # a split of several people's spills
    from_spills = spilled.sample()
    from_shards, channels, fingerprint = sample_windows(result.version_dir)
    assert (channels, fingerprint) == (spilled.channels, result.fingerprint)
    assert [w.split for w in from_spills].count("train") == 5 and len(from_spills) == len(from_shards) >= 7
    _assert_same_sample(from_spills, from_shards)
    assert any(np.isfinite(w.values).any() and w.mask.any() for w in from_spills)   # values and gaps both compared


def test_the_sample_from_the_spills_on_several_sources_per_person(copied_sources, monkeypatch):
    """The demo's studies: a wearable, a CGM every 5 minutes and a lab recording fused per person, a cohort with
    labels, pseudonymized; several channels, a split of several studies."""
    from sensorpipe.runners.driver import run_pipeline

    seen = _noting_spills(monkeypatch)
    result = run_pipeline(str(copied_sources / "pipeline.yaml"), runner="local")
    (spilled,) = seen
    from_spills = spilled.sample()
    from_shards, channels, _ = sample_windows(result.version_dir)
    assert channels == spilled.channels and len(channels) > 5
    assert len({w.study for w in from_spills}) >= 3 and len(from_spills) == sum(result.split_sizes.values())
    _assert_same_sample(from_spills, from_shards)


def _section(page: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">.*?</section>', page, re.S)
    assert found, anchor
    return found.group(0)


def test_the_runs_window_sections_are_the_ones_rebuilt_from_the_shards(tmp_path, monkeypatch):
    """The run draws its window sections from the spills; `sensorpipe report` reads the written shards."""
    result, seen = _run(tmp_path, monkeypatch)
    assert seen
    drawn = Path(result.report).read_text()
    rebuilt = reporting.regenerate(result.output_dir, output=str(tmp_path / "again.html")).read_text()
    for anchor in ("missingness", "correlation", "examples"):
        assert _section(drawn, anchor) == _section(rebuilt, anchor)
    assert _section(drawn, "examples").count("<svg") >= 1 and "<svg" in _section(drawn, "missingness")
