"""The run's warnings (runners/run_warnings.py): a channel no source provides, an empty or small split; each
reaches the CLI summary and the HTML report, and ``open()`` gives the empty split as an empty ``Split``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import sensorpipe
from sensorpipe.commands import summarize
from sensorpipe.config import load_config
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.runners.run_warnings import split_warnings, unprovided_channel_warnings
from sensorpipe.sources.base import make_adapter
from tests.runners.tiny_cohort import config, write_cohort

RATIOS = SimpleNamespace(train=0.8, validation=0.1, test=0.1)


def _units(splits: list[str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(study="s", participant=f"p{i}", split=s, windows_kept=2) for i, s in enumerate(splits)]


def test_three_participants_cannot_fill_three_splits_and_the_fix_is_named():
    got = split_warnings(RATIOS, 1, _units(["train"] * 3))
    assert [w.split(" ", 2)[1] for w in got] == ["'validation'", "'test'"]
    assert got[1].startswith("split 'test' is empty (minimum 1: run.min_split_participants): 3 participants "
                             "cannot fill 3 splits at train 0.8 / validation 0.1 / test 0.1 (test expects 0.3); "
                             "set splits: {train: 0.55, validation: 0.1, test: 0.35}")


def test_two_participants_are_told_to_train_on_everyone():
    (w, _) = split_warnings(RATIOS, 1, _units(["train", "train"]))
    assert "2 participants cannot fill 3 splits" in w
    assert w.endswith("set splits: {train: 1, validation: 0, test: 0} to train on everyone, or add participants")


def test_a_split_below_the_configured_minimum_warns_and_a_zero_ratio_split_does_not():
    ratios = SimpleNamespace(train=0.5, validation=0.5, test=0.0)
    units = _units(["train"] * 6 + ["validation"] * 2)
    assert split_warnings(ratios, 1, units) == []
    (w,) = split_warnings(ratios, 3, units)
    assert w.startswith("split 'validation' has 2 participants (minimum 3: run.min_split_participants)")
    assert "expects 4.0" in w and "change splits.salt" in w
    # a unit without windows is no participant of its split
    assert split_warnings(ratios, 1, units[:6] + [SimpleNamespace(study="s", participant="x", split="validation",
                                                                   windows_kept=0)])[0].startswith(
        "split 'validation' is empty")


def test_a_channel_no_source_provides(tmp_path):
    cfg = load_config(config(tmp_path, tmp_path / "d", channels=["heart_rate", "glucose", "distance"]))
    adapters = [make_adapter(s, cfg.base_dir) for s in cfg.sources]
    got = unprovided_channel_warnings(cfg.channels, adapters)
    assert [w.split(" ", 2)[1] for w in got] == ["'glucose'", "'distance'"]
    assert got[0] == ("channel 'glucose' is configured but no source can provide it (sources: tiny (long_table)): "
                      "every window has it missing; remove it from channels, or add a source that records it")
    assert unprovided_channel_warnings(("heart_rate",), adapters) == []


@pytest.fixture(scope="module")
def warned_run(tmp_path_factory):
    """Three people, the default 0.8/0.1/0.1 split and a channel no source has."""
    root = tmp_path_factory.mktemp("warned")
    write_cohort(root / "d")
    cfg = config(root, root / "d", channels=["heart_rate", "distance"],
                 splits={"train": 0.8, "validation": 0.1, "test": 0.1})
    return run_pipeline(cfg)


def test_the_run_warns_in_its_result_summary_and_report(warned_run):
    r = warned_run
    assert r.split_sizes["train"] > 0 and r.split_sizes["validation"] == r.split_sizes["test"] == 0
    assert len(r.warnings) == 3 and r.warnings[0].startswith("channel 'distance' is configured but no source")
    assert [w.split(" ", 2)[1] for w in r.warnings[1:]] == ["'validation'", "'test'"]
    assert all("3 participants cannot fill 3 splits" in w for w in r.warnings[1:])
    text = summarize(r)
    assert [ln[len("warning   "):] for ln in text.splitlines() if ln.startswith("warning   ")] == r.warnings
    import html

    report = open(r.report).read()
    assert all(html.escape(w) in report for w in r.warnings)


def test_open_gives_an_empty_split_not_a_key_error(warned_run):
    ds = sensorpipe.open(warned_run.output_dir)
    test = ds["test"]
    assert len(test) == 0 and list(test) == [] and test[0:5] == []
    assert repr(test) == "Split('test', 0 windows, empty: the run put no participant in it (see the run's warnings))"
    assert "test=0" in repr(ds) and len(ds["train"]) == warned_run.split_sizes["train"]
    with pytest.raises(IndexError):
        test[0]
    assert list(test.stream()) == [] and len(test.filter(dataset="tiny")) == 0
    with pytest.raises(KeyError, match="no split 'tset'; this dataset has: train, validation, test"):
        ds["tset"]


def test_a_configured_minimum_of_participants(tmp_path):
    write_cohort(tmp_path / "d")
    r = run_pipeline(config(tmp_path, tmp_path / "d", run={"min_split_participants": 4}))
    assert r.warnings == ["split 'train' has 3 participants (minimum 4: run.min_split_participants): 3 participants "
                          "cannot fill 1 splits at train 1 / validation 0 / test 0; set splits: {train: 1, "
                          "validation: 0, test: 0} to train on everyone, or add participants"]
