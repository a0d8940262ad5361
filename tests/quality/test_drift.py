"""Drift between versions (quality/drift.py): PSI and Wasserstein-1 from the stored quantiles, windows, labels."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.metadata.queries import open_store
from sensorpipe.metadata.tables import QUANTILE_LEVELS
from sensorpipe.quality import drift as d
from tests.quality.drift_cohort import two_versions


def test_psi_and_wasserstein_of_known_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(70, 8, 200_000), rng.normal(78, 8, 200_000)
    qa, qb = np.quantile(a, QUANTILE_LEVELS), np.quantile(b, QUANTILE_LEVELS)
    # PSI over the old deciles, computed from the samples themselves
    edges = np.quantile(a, np.arange(1, 10) / 10)
    sa = np.bincount(np.searchsorted(edges, a, side="left"), minlength=10) / a.size
    sb = np.bincount(np.searchsorted(edges, b, side="left"), minlength=10) / b.size
    exact = float(np.sum((sb - sa) * np.log(sb / sa)))
    assert d.psi(qa, qb) == pytest.approx(exact, rel=0.02)
    assert d.psi(qa, qa) == pytest.approx(0.0, abs=1e-12)
    # Wasserstein-1 of a pure shift is the shift (the extreme levels add the tails' noise)
    assert d.wasserstein(qa, qb) == pytest.approx(8.0, abs=0.1)


def test_psi_keeps_the_mass_of_a_repeated_value():
    # steps: half the minutes are 0; a version with no zeros has moved that half elsewhere
    old = np.quantile(np.r_[np.zeros(500), np.arange(1, 501)], QUANTILE_LEVELS)
    new = np.quantile(np.arange(1, 1001), QUANTILE_LEVELS)
    assert d.cdf(old, np.array([0.0]))[0] == pytest.approx(0.5, abs=0.011)   # 101 levels: 0.01 apart
    assert d.psi(old, new) > 1.0


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    first, second = two_versions(root, hr_shift_bpm=15.0)
    return root, first, second


def test_planted_heart_rate_shift_is_found_and_named(versions):
    root, first, second = versions
    store = open_store(root / "out")
    res = d.version_drift(store, "1.0.0", "2.0.0")
    assert (res.old_version, res.new_version, res.split) == ("1.0.0", "2.0.0", "all")
    hr, steps = res.channel("heart_rate"), res.channel("steps")
    assert hr.psi > 1.0 and hr.wasserstein == pytest.approx(15.0, abs=0.6)
    assert hr.mean_new - hr.mean_old == pytest.approx(15.0, abs=0.6)
    assert hr.wasserstein_std == pytest.approx(15.0 / 8.0, rel=0.1)
    assert steps.psi < 0.05 and steps.wasserstein < 0.3
    assert [c.channel for c in res.drifted(0.25)] == ["heart_rate"]
    windows = {w.split: (w.old, w.new) for w in res.windows}
    assert windows["all"] == (first.windows_kept, second.windows_kept)
    assert windows["train"] == (first.split_sizes["train"], second.split_sizes["train"])
    # per split too, and against itself nothing moved
    assert d.version_drift(store, "1.0.0", "2.0.0", split="train").channel("heart_rate").psi > 1.0
    same = d.version_drift(store, "2.0.0", "2.0.0")
    assert same.channel("heart_rate").psi == pytest.approx(0.0, abs=1e-12)
    assert same.channel("heart_rate").wasserstein == 0.0


def test_quantiles_are_stored_per_split_and_match_the_data(versions):
    root, first, second = versions
    store = open_store(root / "out")
    q = store.quantiles(second.fingerprint)
    assert {s for s, _ in q} == {"all"} | {s for s, n in second.split_sizes.items() if n}
    hr = np.asarray(q[("all", "heart_rate")])
    assert hr.size == len(QUANTILE_LEVELS)
    assert hr[50] == pytest.approx(85.0, abs=1.0)          # median of N(70 + 15, 8)
    assert hr[75] - hr[25] == pytest.approx(2 * 0.6745 * 8.0, rel=0.1)


def test_previous_version_is_the_published_one_before(versions):
    root, first, second = versions
    store = open_store(root / "out")
    prev = d.previous_version(store, "tiny", second.fingerprint, str(root / "out"))
    assert prev is not None and prev.fingerprint == first.fingerprint


def test_label_balance_is_counted_and_compared():
    from sensorpipe.quality.label_balance import count_label_windows

    counts = count_label_windows({"sex": np.array([0, 1, 1, -1]), "bmi": np.array([21.0, np.nan, 30.0, 25.0]),
                                  "sleep_stage_sequence": np.array([[-1, -1], [0, -1], [-1, -1], [2, 2]])})
    assert counts == {"label_windows:sex:female": 1, "label_windows:sex:male": 2, "label_windows:sex:missing": 1,
                      "label_windows:bmi:present": 3, "label_windows:bmi:missing": 1,
                      "label_windows:sleep_stage_sequence:present": 2,
                      "label_windows:sleep_stage_sequence:missing": 2}
    snap = lambda labels: d.VersionSnapshot("x", "1", "f", {}, [], {}, labels)   # noqa: E731
    res = d.drift(snap({"sex": {"female": 1, "male": 3}}), snap({"sex": {"female": 3, "male": 1}}))
    (sex,) = res.labels
    assert sex.old_share == {"female": 0.25, "male": 0.75} and sex.new_share == {"female": 0.75, "male": 0.25}
    assert sex.total_variation == pytest.approx(0.5)
