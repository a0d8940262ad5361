"""Trend scores from per-first-bin reaches, the greedy picks and the stable stretch from reaches equal a
pair-by-pair reference."""

from __future__ import annotations

import math

import numpy as np

from sensorpipe.captions.segments import pairs, pick_segments, pick_stable, trend_scores


def _reference(x: list[float], d: float) -> tuple[list[float], list[float]]:
    """The definitions, one segment at a time (see :func:`trend_scores`)."""
    trend, stable = [], []
    for a, b in zip(*(v.tolist() for v in pairs(len(x)))):
        seg = x[a:b + 1]
        if any(math.isnan(v) for v in seg):
            trend.append(0.0)
            stable.append(0.0)
            continue
        steps = [q - p for p, q in zip(seg, seg[1:])]
        change = seg[-1] - seg[0]
        t = 0.0
        if change >= d and min(steps) >= -d / 2:
            t = change / d - 1e-3 * (b - a)
        elif -change >= d and max(steps) <= d / 2:
            t = -change / d - 1e-3 * (b - a)
        trend.append(t)
        stable.append(float(b - a) if b - a >= 3 and max(seg) - min(seg) <= d / 2 else 0.0)
    return trend, stable


def _greedy(score: list[float], nb: int, k: int, taken: list[tuple[int, int]]) -> list[tuple[int, int, float]]:
    pa, pb = (v.tolist() for v in pairs(nb))
    score = list(score)
    out = []

    def exclude(lo: int, hi: int) -> None:
        for p in range(len(score)):
            if pa[p] < hi and pb[p] > lo:
                score[p] = 0.0

    for lo, hi in taken:
        exclude(lo, hi)
    for _ in range(k):
        best = max(range(len(score)), key=lambda p: (score[p], -p))    # the first of equal scores
        out.append((pa[best], pb[best], score[best]))
        if score[best] > 0:
            exclude(pa[best], pb[best])
    return out


def test_scores_and_picks_equal_the_pair_by_pair_definitions():
    rng = np.random.default_rng(11)
    for trial in range(120):
        S, nb, k = int(rng.integers(1, 6)), int(rng.integers(3, 30)), int(rng.integers(0, 4))
        x = np.round(rng.random((S, nb)) * rng.integers(1, 40), int(rng.integers(0, 2)))   # rounded: ties
        if rng.random() < 0.5:
            x = np.cumsum(x - x.mean(), axis=1)                                            # long trends
        x[rng.random(x.shape) < rng.random() * 0.3] = np.nan
        delta = rng.integers(1, 10, S) * float(rng.choice([0.5, 1.0, 3.0]))
        trend = trend_scores(x, delta)
        picks = pick_segments(trend, nb, k)
        first, last, length = pick_stable(x, delta, picks)
        pa, pb = pairs(nb)
        for s in range(S):
            want_t, want_s = _reference(x[s].tolist(), float(delta[s]))
            assert trend[s].tolist() == want_t, (trial, s)
            want = _greedy(want_t, nb, k, [])
            got = [(int(pa[best[s]]), int(pb[best[s]]), float(val[s])) for best, val in picks]
            assert [w for w in want if w[2] > 0] == [g for g in got if g[2] > 0], (trial, s)
            assert [w[2] > 0 for w in want] == [g[2] > 0 for g in got]
            (a1, b1, v1), = _greedy(want_s, nb, 1, [(a, b) for a, b, v in want if v > 0])
            assert float(length[s]) == v1 and (v1 == 0 or (first[s], last[s]) == (a1, b1)), (trial, s)


def test_picks_without_the_keep_table_equal_the_table(monkeypatch):
    """Many bins (a short bin_min): the overlap table would be pairs squared; picks compare pairs per series."""
    from sensorpipe.captions import segments

    rng = np.random.default_rng(12)
    nb = 40
    x = np.cumsum(rng.normal(0, 3, (6, nb)), axis=1).round(0)
    x[rng.random(x.shape) < 0.05] = np.nan
    delta = np.full(6, 4.0)
    trend = trend_scores(x, delta)
    with_table = pick_segments(trend, nb, 3)
    stretch = pick_stable(x, delta, with_table)
    segments._pair_plan.cache_clear()
    monkeypatch.setattr(segments, "_KEEP_TABLE_MAX_PAIRS", 10)
    try:
        assert segments._pair_plan(nb)[-1] is None
        without = pick_segments(trend, nb, 3)
        assert all(np.array_equal(a, b) for p, q in zip(with_table, without) for a, b in zip(p, q))
        assert all(np.array_equal(a, b) for a, b in zip(stretch, pick_stable(x, delta, without)))
        assert sum(int((val > 0).sum()) for _, val in without) > 6      # real picks were compared
    finally:
        segments._pair_plan.cache_clear()


def test_reaches_stop_at_unknown_bins_and_reversals():
    x = np.array([[0.0, 10.0, 20.0, 14.0, 30.0, np.nan, 40.0, 50.0, 60.0, 60.0]])
    trend = trend_scores(x, np.array([10.0]))
    pa, pb = (v.tolist() for v in pairs(10))
    score = dict(zip(zip(pa, pb), trend[0].tolist()))
    assert score[(0, 2)] == 20.0 / 10.0 - 2e-3
    assert score[(0, 4)] == 0.0        # the step back 20 -> 14 is more than delta / 2
    assert score[(2, 4)] == 0.0        # bins 2..4 are not a 3-bin trend of 10 or more without that step back
    assert score[(0, 6)] == 0.0 and score[(4, 7)] == 0.0   # bin 5 is unknown
    assert score[(6, 9)] == 20.0 / 10.0 - 3e-3
    assert pick_stable(x, np.array([10.0]))[2].tolist() == [0.0]     # no 4 known bins within 5 of each other
    flat = np.array([[1.0, 2.0, 1.0, 2.0, 9.0, 9.0, 9.0, 9.0, 9.0]])
    assert [v.tolist() for v in pick_stable(flat, np.array([2.0]))] == [[4], [8], [4.0]]   # the longest
    index = {ab: p for p, ab in enumerate(zip(*(v.tolist() for v in pairs(9))))}
    taken = [(np.array([index[(5, 8)]]), np.array([1.0]))]                     # a pick over bins 5..8
    assert [v.tolist() for v in pick_stable(flat, np.array([2.0]), taken)] == [[0], [3], [3.0]]
