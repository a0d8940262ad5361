"""The report's figures drawn from the written windows: missingness per participant and local day, channel
correlation over minutes observed together, and the example window per study."""

from __future__ import annotations

import numpy as np

from sensorpipe.quality.report_sample import (MIN_PAIRED_MINUTES, SampleWindow, correlation, examples, heatmaps,
                                              summarize)

W = 1440
CH = ("heart_rate", "steps")          # caption groups Heart and Activity
DAY0 = 1709856000                     # 2024-03-08 00:00 UTC


def _win(pid: str, start: int, hr_min: int, steps_min: int, study: str = "s", tz: int = 0,
         values: np.ndarray | None = None, split: str = "train") -> SampleWindow:
    """A day window whose first ``hr_min`` heart-rate and ``steps_min`` steps minutes are observed."""
    mask = np.ones((W, 2), bool)
    mask[:hr_min, 0] = False
    mask[:steps_min, 1] = False
    v = np.zeros((W, 2), np.float32) if values is None else values.astype(np.float32)
    return SampleWindow(split, study, pid, f"{study}/{pid}/{start}", start, tz, np.where(mask, np.nan, v), mask)


def test_heatmap_is_the_observed_share_per_participant_and_day_of_participation():
    ws = [_win("aaaa1111", DAY0, 720, 0), _win("aaaa1111", DAY0 + 86400, 1440, 360),
          _win("bbbb2222", DAY0 + 2 * 86400, 144, 1440)]          # b starts two days later: its day 1 is column 0
    maps, shown, seen = heatmaps(ws, CH)
    by = {m.group: m for m in maps}
    assert (shown, seen) == (2, 2) and by["Heart"].channels == ("heart_rate",)
    assert by["Heart"].rows == ["s / aaaa1111", "s / bbbb2222"]
    np.testing.assert_allclose(by["Heart"].share, [[0.5, 1.0], [0.1, np.nan]])
    np.testing.assert_allclose(by["Activity"].share, [[0.0, 0.25], [1.0, np.nan]])


def test_heatmap_days_are_local_days():
    """A window from local noon (UTC 10:00 at +120 min) covers two local days, half each."""
    w = _win("cccc3333", DAY0 + 10 * 3600, 1440, 720, tz=120)
    (heart, activity), _, _ = heatmaps([w], CH)
    np.testing.assert_allclose(heart.share, [[1.0, 1.0]])
    np.testing.assert_allclose(activity.share, [[1.0, 0.0]])


def test_heatmap_shares_are_bit_identical_to_per_minute_accumulation():
    """The per-day bincounts give exactly what adding each minute with np.add.at gave (the earlier code)."""
    rng = np.random.default_rng(3)
    chans = ("heart_rate", "hrv_rmssd", "steps", "calories", "sleep_stage")
    ws = []
    for k in range(30):
        mask = rng.random((W, len(chans))) < rng.random()
        ws.append(SampleWindow("train", f"s{k % 2}", f"p{k % 7:07d}", f"k{k}", DAY0 + int(rng.integers(0, 90)) * 43200,
                               int(rng.choice([-300, 0, 60, 330])), np.zeros((W, len(chans)), np.float32), mask))
    maps, _, _ = heatmaps(ws, chans)
    people = sorted({(w.study, w.participant) for w in ws})
    for m in maps:
        cols = [chans.index(c) for c in m.channels]
        obs = np.zeros((len(people), 60))
        tot = np.zeros_like(obs)
        first: dict = {}
        for w in ws:
            r = people.index((w.study, w.participant))
            day = (w.start_utc_s // 60 + w.tz_offset_min + np.arange(W)) // 1440
            rel = day - first.setdefault(r, int(day[0]))
            keep = (rel >= 0) & (rel < 60)
            np.add.at(obs[r], rel[keep], (~w.mask[:, cols]).sum(axis=1)[keep])
            np.add.at(tot[r], rel[keep], len(cols))
        want = np.where(tot > 0, obs / np.maximum(tot, 1), np.nan)[:, :m.share.shape[1]]
        assert np.array_equal(m.share, want, equal_nan=True) and np.isfinite(m.share).sum() > 30


def test_correlation_uses_only_minutes_both_channels_observe():
    hr = np.linspace(50, 150, W)
    up = _win("p", DAY0, 600, 600, values=np.c_[hr, 2 * hr + 1])               # r = +1 over 600 shared minutes
    r, n = correlation([up], 2)
    assert n[0, 1] == n[1, 0] == 600 and n[0, 0] == 600
    np.testing.assert_allclose(r, [[1, 1], [1, 1]], atol=1e-9)
    down = _win("p", DAY0, 900, 300, values=np.c_[hr, -3 * hr])                 # 300 shared minutes, r = -1
    r, n = correlation([down], 2)
    assert n[0, 1] == 300 and abs(r[0, 1] + 1) < 1e-9
    # noise in the heart-rate minutes steps does not observe changes nothing: they are not paired
    noisy = hr.copy()
    noisy[300:] = np.random.default_rng(0).normal(size=W - 300)
    r2, _ = correlation([_win("p", DAY0, 900, 300, values=np.c_[noisy, -3 * hr])], 2)
    assert abs(r2[0, 1] + 1) < 1e-9
    few, n = correlation([_win("p", DAY0, 900, MIN_PAIRED_MINUTES - 1, values=np.c_[hr, hr])], 2)
    assert n[0, 1] == MIN_PAIRED_MINUTES - 1 and np.isnan(few[0, 1])


def test_examples_are_each_studys_best_observed_window_and_the_summary_counts_splits():
    ws = [_win("p1", DAY0, 100, 100, study="a"), _win("p2", DAY0, 1400, 1400, study="a", split="test"),
          _win("p3", DAY0, 10, 0, study="b")]
    assert [w.participant for w in examples(ws)] == ["p2", "p3"]
    s = summarize(ws, CH)
    assert (s.windows, s.by_split, s.channels) == (3, {"train": 2, "test": 1}, CH)
    assert [h.group for h in s.heatmaps] == ["Heart", "Activity"] and s.corr.shape == (2, 2)


def test_correlation_is_bit_identical_to_per_window_products():
    """The batched products give exactly what one window at a time gave (the earlier code), also where the
    windows are not all one length (a batch holds windows of one shape)."""
    rng = np.random.default_rng(5)
    ws = []
    for k in range(21):
        length = W if k % 7 else 60                       # a short window now and then: a batch of its own
        values = rng.normal(70, 12, (length, 3)).astype(np.float32)
        mask = rng.random((length, 3)) < 0.3
        ws.append(SampleWindow("train", "s", f"p{k}", f"k{k}", DAY0, 0, np.where(mask, np.nan, values), mask))
    n_want, sx, sxx, sxy = (np.zeros((3, 3)) for _ in range(4))
    for w in ws:
        o = (~w.mask).astype(np.float64)
        x = np.where(w.mask, 0.0, np.nan_to_num(w.values.astype(np.float64)))
        n_want += o.T @ o
        sx += x.T @ o
        sxx += (x * x).T @ o
        sxy += x.T @ x
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sx / n_want, sx.T / n_want
        want = (sxy / n_want - mx * my) / np.sqrt((sxx / n_want - mx ** 2) * (sxx.T / n_want - my ** 2))
    r, n = correlation(ws, 3)
    assert np.array_equal(n, n_want) and np.array_equal(r, np.clip(want, -1, 1))
