"""Every claim of every window of the demo dataset holds, and planted false claims are caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import sensorpipe
from sensorpipe.captions.base import Claim, get_level
from sensorpipe.access.faithfulness import caption_config, check_dataset, record_batch
from sensorpipe.captions.faithfulness import check_window
from sensorpipe.captions.generator import claims_to_json


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> str:
    from sensorpipe.commands import demo

    root = tmp_path_factory.mktemp("demo")
    demo(str(root))
    return str(root / "out")


def test_every_claim_of_every_demo_window_holds(demo_dir):
    report = check_dataset(demo_dir)
    ds = sensorpipe.open(demo_dir)
    assert report.windows == sum(len(s) for s in ds.splits.values()) > 50
    assert report.findings == []
    # the demo exercises every claim family the levels can make from its channels and labels
    for kind in ("statistical:stats", "statistical:categories", "statistical:missing", "structural:increasing",
                 "structural:decreasing", "structural:stable", "structural:peak", "structural:drop",
                 "semantic:sleep", "semantic:activity_bout", "semantic:condition", "semantic:glucose_excursion"):
        assert report.by_kind.get(kind, 0) > 0, kind
    assert report.claims == sum(report.by_kind.values()) > 20 * report.windows


def _window(demo_dir, kind: str):
    """The first train window having a claim of ``kind``: (dataset, example, claims, CaptionConfig)."""
    ds = sensorpipe.open(demo_dir)
    cfg = caption_config(ds)
    for ex in ds["train"]:
        claims = [Claim.from_json(c) for c in json.loads(ex["caption_claims"])]
        if any(f"{c.level}:{c.kind}" == kind for c in claims):
            return ds, ex, claims, cfg
    raise AssertionError(f"no {kind} claim in the demo")


def _check(ds, ex, cfg, claims, texts=None):
    """Findings for the window with ``claims`` (texts re-rendered from them unless given)."""
    if texts is None:
        texts = {lvl: get_level(lvl)(cfg).render([c for c in claims if c.level == lvl]) for lvl in cfg.levels}
    return check_window(cfg, record_batch(ds, ex), texts, claims_to_json(claims), ex["key"])[1]


@pytest.mark.parametrize("kind, corrupt, reason", [
    ("statistical:stats", lambda d: d.update(mean=d["mean"] + 5 * 10 ** -d["decimals"] + 1), "mean"),
    ("statistical:stats", lambda d: d.update(n=d["n"] - 1), "observed minutes"),
    ("statistical:categories", lambda d: d["shares"].update({next(iter(d["shares"])): 100}), "shares"),
    ("structural:increasing", lambda d: d.update(v1=d["v1"] + 3), "value"),
    ("structural:peak", lambda d: d.update(start_min=d["start_min"] + d["bin_min"], end_min=d["end_min"] + d["bin_min"]),
     "times"),
    ("semantic:sleep", lambda d: d.update(start_min=d["start_min"] + 30, duration_min=d["duration_min"] - 30), "times"),
    ("semantic:activity_bout", lambda d: d.update(type="swimming"), "no activity bout"),
    ("semantic:glucose_excursion", lambda d: d.update(extreme_mgdl=d["extreme_mgdl"] - 25), "glucose event"),
    ("semantic:condition", lambda d: d.update(name="amusement"), "label event"),
])
def test_a_planted_false_claim_is_caught(demo_dir, kind, corrupt, reason):
    ds, ex, claims, cfg = _window(demo_dir, kind)
    assert _check(ds, ex, cfg, claims) == []
    bad = copy.deepcopy(claims)
    target = next(c for c in bad if f"{c.level}:{c.kind}" == kind)
    corrupt(target.data)
    findings = _check(ds, ex, cfg, bad)
    assert findings and all(f.kind == target.kind for f in findings)
    assert reason in findings[0].reason


def test_a_changed_trend_direction_is_caught(demo_dir):
    ds, ex, claims, cfg = _window(demo_dir, "structural:increasing")
    bad = copy.deepcopy(claims)
    target = next(c for c in bad if c.kind == "increasing")
    target.kind = "decreasing"
    target.data["v0"], target.data["v1"] = target.data["v1"], target.data["v0"]
    assert [f.kind for f in _check(ds, ex, cfg, bad)] == ["decreasing"]


def test_text_that_says_more_than_its_claims_is_caught(demo_dir):
    ds, ex, claims, cfg = _window(demo_dir, "statistical:stats")
    texts = {lvl: ex[f"caption_{lvl}"] for lvl in cfg.levels}
    assert _check(ds, ex, cfg, claims, texts) == []
    stats = next(c for c in claims if c.kind == "stats")
    level = get_level("statistical")(cfg)
    mean_text = level.fields(stats)["mean"]
    forged = dict(texts, statistical=texts["statistical"].replace(f" {mean_text} ", f" {mean_text}9 ", 1))
    assert forged != texts
    findings = _check(ds, ex, cfg, claims, forged)
    assert [(f.level, f.kind) for f in findings] == [("statistical", "text")]


def test_captions_ignore_imputed_minutes(demo_dir):
    """The stored window is imputed, but statistics equal those of the observed minutes alone."""
    ds, ex, claims, cfg = _window(demo_dir, "statistical:stats")
    values, mask = ds.denormalize(ex["input"]), ex["mask"]
    stats = next(c for c in claims if c.kind == "stats" and mask[:, ds.channels.index(c.data["channel"])].any())
    j = ds.channels.index(stats.data["channel"])
    observed = values[~mask[:, j], j]
    assert stats.data["n"] == observed.size < values.shape[0]
    assert stats.data["mean"] == pytest.approx(observed.mean(), abs=0.5 * 10 ** -stats.data["decimals"] + 1e-4)


def test_inspect_prints_caption_levels_and_claims(demo_dir):
    from sensorpipe.commands import inspect_window

    text = inspect_window(demo_dir, "train", 0)
    for lvl in ("statistical", "structural", "semantic"):
        assert f"caption ({lvl}): " in text
    claim_lines = [ln.strip() for ln in text.splitlines() if ln.startswith("  {")]
    ex = sensorpipe.open(demo_dir)["train"][0]
    assert [json.loads(ln) for ln in claim_lines] == json.loads(ex["caption_claims"])
    assert Path(demo_dir).exists()


def test_a_dataset_without_claims_gets_a_clear_error(monkeypatch, tmp_path):
    from types import SimpleNamespace

    import sensorpipe.access.dataset as access

    monkeypatch.setattr(access, "open_dataset", lambda path: SimpleNamespace(features={"caption": None},
                                                                             version_dir=tmp_path))
    with pytest.raises(ValueError, match="no caption_claims .* run the pipeline again"):
        check_dataset(str(tmp_path))
