"""End to end on real exports: normalization keeps every observed minute, reports priors and clipped cells.

examples/real_mixed.yaml mixes real Garmin rides, a smartwatch dump, PLUX lab
recordings and format-faithful CGM / Apple Health / E4 samples. Its train
split never observes SpO2, respiratory rate or calories (the Apple Health
participant hashes into test), and the Apple Watch's walking minutes (30-60
steps/min) lie tens of train standard deviations from the train split's steps
(a resting E4 session and a ride's first minute): the two cases that used to
come back from ``denormalize`` as 0-and-1 fits and clip bounds. The tests
assert these premises first, so a change of split hashing cannot make them
pass vacuously.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import sensorpipe
from sensorpipe.access.faithfulness import check_dataset
from sensorpipe.cli import main
from sensorpipe.core.arrays import load_arrays
from sensorpipe.metadata.store import MetadataStore
from sensorpipe.runners.driver import run_pipeline
from sensorpipe.runners.stages import window_key

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "real_mixed.yaml"


def _config(out: Path, **normalization) -> dict:
    cfg = yaml.safe_load(EXAMPLE.read_text())
    for s in cfg["sources"]:  # the copy runs elsewhere: the example's relative paths made absolute
        s["path"] = str((EXAMPLE.parent / s["path"]).resolve())
        if s.get("participants"):
            s["participants"] = str((EXAMPLE.parent / s["participants"]).resolve())
    cfg["output"]["dir"] = str(out)
    cfg["normalization"] = normalization
    return cfg


def _observed_minutes(run) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Window key -> (values [W, C] before imputation and normalization, observed [W, C], source): pass 1's
    unit cache, the reference every stored record must return to."""
    out = {}
    for u in run.units:
        if not u.windows_kept:
            continue
        a = load_arrays(u.cache)
        for i, start in enumerate(a["start_utc_min"].tolist()):
            out[window_key(u.study, u.participant, int(start))] = (a["values"][i], a["observed"][i], u.study)
    return out


def _float32_bound(scale: np.ndarray, z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """How far a denormalized value may be from the observed one when only storage is lossy: the float32
    rounding of the normalized value (half a spacing of ``z``, times the scale) and of the result."""
    return scale * np.spacing(np.abs(z).astype(np.float32)) + np.spacing(np.abs(x).astype(np.float32))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return run_pipeline(_config(tmp_path_factory.mktemp("real_mixed") / "out"))


def test_denormalize_returns_every_observed_minute_of_real_exports(default_run):
    ds = sensorpipe.open(default_run.output_dir)
    norm, ref = ds.norm, _observed_minutes(default_run)
    scale, center = np.array(norm.scale), np.array(norm.center)
    assert set(norm.methods) <= {"zscore", "none"}        # identity transforms: the bound below applies as is
    checked, far = 0, np.zeros(len(ds.channels), np.int64)
    for split in ds.splits:
        for ex in ds[split]:
            x, observed, _ = ref[ex["key"]]
            assert np.array_equal(~ex["mask"], observed)
            got = ds.denormalize(ex["input"])
            o = observed
            err = np.abs(got.astype(np.float64) - x)
            assert (err[o] <= _float32_bound(np.broadcast_to(scale, x.shape)[o], ex["input"][o], x[o])).all(), \
                ex["key"]
            far += np.count_nonzero(o & (np.abs((x - center) / scale) > 10), axis=0)
            checked += int(o.sum())
    assert checked > 100
    # the premises: values far outside the train range (walking steps) and channels without train data
    j = ds.channels.index("steps")
    assert norm.source[j] == "train" and far[j] >= 5, "premise: Apple Watch steps far from the train split's"
    prior = {ch for ch, s in zip(ds.channels, norm.source) if s == "prior"}
    assert {"spo2", "respiratory_rate", "calories"} <= prior
    for ch in prior:
        c = sensorpipe.channels.get(ch)
        k = ds.channels.index(ch)
        assert (norm.center[k], norm.scale[k], norm.count[k]) == (c.prior_center, c.prior_scale, 0)


def test_captions_of_real_exports_are_faithful(default_run):
    report = check_dataset(default_run.version_dir)
    assert report.windows == default_run.windows_kept and report.claims > 50
    assert report.findings == []


def test_prior_channels_are_reported_and_recorded(default_run):
    ds = sensorpipe.open(default_run.output_dir)
    html = Path(default_run.report).read_text()
    assert "<h2>Warnings</h2>" in html
    test_minutes = next(s for s in MetadataStore(default_run.metadata_url).channel_stats(default_run.fingerprint,
                                                                                          split="test")
                        if s["channel"] == "spo2")["count"]
    assert test_minutes > 0
    minutes = f"{test_minutes:,} observed minute{'' if test_minutes == 1 else 's'}"
    assert (f"channel spo2 had no train observations ({minutes} in test); normalized with "
            f"the registry prior (97 +/- 2 %): zscore center 97, scale 2.") in html
    store = MetadataStore(default_run.metadata_url)
    rows = store.normalization(default_run.fingerprint)
    assert rows["spo2"]["fitted_on_split"] == "prior" and rows["heart_rate"]["fitted_on_split"] == "train"
    assert rows["sleep_stage"]["fitted_on_split"] in ("train", "fixed")
    q = {(m["scope"], m["name"]): m["value"] for m in store.quality(default_run.fingerprint)}
    assert q[("channel:spo2", "normalized_with_prior")] == 1
    assert ("channel:heart_rate", "normalized_with_prior") not in q
    assert not any(name.startswith("clipped_normalized") for _, name in q)      # clipping is off: nothing counted
    assert "normalization clipped" not in html and ds.norm.clips is False


def test_clipping_counts_every_clipped_cell_and_captions_state_the_stored_values(default_run, tmp_path):
    cfg = _config(tmp_path / "out", clip_sigma=10.0)
    run = run_pipeline(cfg)
    ds = sensorpipe.open(run.output_dir)
    center, scale = np.array(ds.norm.center), np.array(ds.norm.scale)
    clips = np.array([lo is not None for lo in ds.norm.clip_low])
    want: dict[str, dict[str, int]] = {}
    for key, (x, o, source) in _observed_minutes(run).items():   # counted independently, in float64
        n = np.count_nonzero(o & clips & (np.abs((x - center) / scale) > 10), axis=0)
        for j in np.flatnonzero(n):
            want.setdefault(source, {})[ds.channels[j]] = want.get(source, {}).get(ds.channels[j], 0) + int(n[j])
    assert want["apple_watch"]["steps"] >= 5, "premise: walking steps lie beyond 10 train SDs"
    assert {s: c for s, c in run.clipped_cells.items() if c} == want
    total = sum(n for c in want.values() for n in c.values())
    q = {(m["scope"], m["name"]): m["value"]
         for m in MetadataStore(run.metadata_url).quality(run.fingerprint)}
    assert q[("dataset", "clipped_normalized")] == total
    assert q[("study:apple_watch", "clipped_normalized:steps")] == want["apple_watch"]["steps"]
    for ch in ("steps", "heart_rate", "glucose"):
        assert q[(f"channel:{ch}", "clipped_normalized")] == sum(c.get(ch, 0) for c in want.values())
    assert ("channel:sleep_stage", "clipped_normalized") not in q            # `none` never clips
    html = Path(run.report).read_text()
    assert f"{sum(c.get('steps', 0) for c in want.values()):,} observed steps minutes" in html
    at_bound = 0   # the stored values of the clipped channels stay inside +/- clip_sigma
    for split in ds.splits:
        for ex in ds[split]:
            z = ex["input"][~ex["mask"] & clips]
            assert (np.abs(z) <= 10).all()
            at_bound += int(np.count_nonzero(np.abs(z) == 10))
    assert at_bound == total
    # captions describe what is stored: the checker (which reads only the records) agrees with every claim
    report = check_dataset(run.version_dir)
    assert report.claims > 50 and report.findings == []
    # the counts survive a re-run served from the encode cache (the version removed first: a re-run of an
    # intact version with the same fingerprint is a no-op that writes nothing)
    shutil.rmtree(run.version_dir)
    again = run_pipeline(cfg)
    assert not again.unchanged
    assert again.clipped_cells == run.clipped_cells


def test_missing_train_error_stops_the_run_naming_the_channels(tmp_path, capsys):
    cfg = _config(tmp_path / "out", missing_train="error")
    path = tmp_path / "real_mixed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sensorpipe run: error: normalization.missing_train")
    assert "respiratory_rate (zscore), spo2 (zscore)" in err and "calories" in err
    assert not (tmp_path / "out" / "real_mixed").exists()                      # nothing was written
