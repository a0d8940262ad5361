"""Caption levels on hand-made windows: what each states, in local time, from observed minutes only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sensorpipe.captions.base import CaptionLevel, Claim, register_caption_level
from sensorpipe.captions.faithfulness import check_window
from sensorpipe.captions.generator import CaptionGenerator
from sensorpipe.config import CaptionConfig, ConfigError, build_dataclass
from sensorpipe.runners.plan import resolve_caption_levels
from sensorpipe.core.windows import WindowBatch

W = 1440
CHANNELS = ("heart_rate", "steps", "sleep_stage", "glucose", "on_wrist", "skin_temperature")


def _batch(n: int = 1, local_min=None, events=None) -> WindowBatch:
    values = np.full((n, W, len(CHANNELS)), 1000.0, np.float32)     # what imputation would put in unobserved cells
    observed = np.zeros((n, W, len(CHANNELS)), bool)
    lm = np.tile(np.arange(W), (n, 1)) if local_min is None else np.tile(local_min, (n, 1))
    return WindowBatch(values=values, observed=observed, channels=CHANNELS, local_min=lm,
                       events=events or [[] for _ in range(n)])


def _set(batch, ch, start, end, value, i=0):
    j = CHANNELS.index(ch)
    batch.values[i, start:end, j] = value
    batch.observed[i, start:end, j] = True


def _claims(batch, cfg=None, keys=None):
    cfg = cfg or CaptionConfig()
    caps = CaptionGenerator(cfg).generate(batch, keys or [f"w{i}" for i in range(len(batch))])
    return caps, [[Claim.from_json(c) for c in json.loads(c.claims_json)] for c in caps]


def _holds(batch, caps, cfg=None):
    cfg = cfg or CaptionConfig()
    for i, cap in enumerate(caps):
        n, findings = check_window(cfg, batch.window(i), cap.texts, cap.claims_json)
        assert n and findings == []


def test_statistical_uses_observed_minutes_and_lists_thin_channels_as_missing():
    b = _batch()
    _set(b, "heart_rate", 0, 600, 60.0)
    _set(b, "heart_rate", 600, 720, 90.0)
    _set(b, "skin_temperature", 0, 40, 33.0)         # 40 of 1440 min < 5 %: missing, no numbers from 40 minutes
    caps, (claims,) = _claims(b)
    stats = next(c for c in claims if c.kind == "stats")
    assert stats.data == {"channel": "heart_rate", "group": "Heart", "n": 720, "decimals": 0, "mean": 65.0,
                          "min": 60.0, "max": 90.0, "std": 11.0}      # the 1000s in unobserved minutes never count
    missing = next(c for c in claims if c.kind == "missing")
    assert missing.data["channels"] == ["steps", "sleep_stage", "on_wrist", "skin_temperature", "glucose"]  # by group
    assert missing.data["observed_min"] == [0, 0, 0, 40, 0]
    assert "skin temperature" in caps[0].texts["statistical"] and "33" not in caps[0].texts["statistical"]
    _holds(b, caps)


def test_structural_trend_peak_and_threshold_in_local_time():
    b = _batch()
    bins = [60] * 9 + [70, 80, 90] + [100] * 6 + [60] * 18            # 36 bins of 40 min
    for k, v in enumerate(bins):
        _set(b, "heart_rate", 40 * k, 40 * (k + 1), float(v))
    _set(b, "heart_rate", 40 * 30, 40 * 31, 65.0)                    # a 5-bpm bump: below the 10-bpm threshold
    caps, (claims,) = _claims(b)
    by_kind = {}
    for c in claims:
        by_kind.setdefault(c.kind, []).append(c.data)
    rise = by_kind["increasing"][0]
    assert (rise["t0"], rise["t1"], rise["v0"], rise["v1"], rise["threshold"]) == ("05:20", "08:40", 60.0, 100.0, 10.0)
    fall = by_kind["decreasing"][0]
    assert (fall["v0"], fall["v1"]) == (100.0, 60.0) and fall["t1"] == "12:40"
    assert [(p["v"], p["t0"] >= "08:00", p["t1"] <= "12:00") for p in by_kind["peak"]] == [(100.0, True, True)]
    assert all(p["v"] != 65.0 for p in by_kind.get("peak", []))       # the sub-threshold bump is not a peak
    assert any(s["v"] == 60.0 for s in by_kind["stable"])
    assert "rose from 60 to 100 bpm between 05:20 and 08:40" in caps[0].texts["structural"] or \
        "05:20 to 08:40 (60 to 100 bpm)" in caps[0].texts["structural"] or \
        "between 05:20 and 08:40, heart rate climbed from 60 to 100 bpm" in caps[0].texts["structural"].lower()
    _holds(b, caps)


def test_times_are_local_clock_across_a_dst_change():
    # local midnight start; at 02:00 the clock jumps to 03:00 (spring forward): minute 180 reads 04:00
    local = np.where(np.arange(W) < 120, np.arange(W), np.arange(W) + 60)
    b = _batch(local_min=local)
    _set(b, "sleep_stage", 0, 360, 2.0)               # asleep until real minute 360 = 07:00 local
    _set(b, "sleep_stage", 360, 400, 0.0)
    caps, (claims,) = _claims(b)
    sleep = next(c for c in claims if c.kind == "sleep")
    assert (sleep.data["t0"], sleep.data["t1"], sleep.data["duration_min"]) == ("00:00", "07:00", 360)
    assert "6 h" in caps[0].texts["semantic"]
    _holds(b, caps)


def test_semantic_events_sleep_bouts_off_wrist_glucose_and_labels():
    events = [[(595, 640, "activity", "running"), (1000, 1030, "condition", "stress")]]
    b = _batch(events=events)
    _set(b, "sleep_stage", 0, 420, 2.0)
    _set(b, "sleep_stage", 180, 190, 0.0)             # a 10-min awakening is bridged (<= 15 min)
    _set(b, "steps", 420, 1440, 5.0)
    _set(b, "steps", 600, 625, 80.0)
    _set(b, "steps", 610, 611, 30.0)                  # a 1-min pause inside the bout is bridged (<= 2 min)
    _set(b, "steps", 900, 915, 90.0)                  # 15 min: too short for a bout
    _set(b, "on_wrist", 0, W, 1.0)
    _set(b, "on_wrist", 1200, 1260, 0.0)
    gl = np.full(W, np.nan)
    gl[::5] = 110.0
    gl[300:330:5] = 60.0                              # six readings below 70: 30 min
    ok = ~np.isnan(gl)
    b.values[0, ok, CHANNELS.index("glucose")] = gl[ok]
    b.observed[0, ok, CHANNELS.index("glucose")] = True
    caps, (claims,) = _claims(b)
    sem = [(c.kind, c.data["t0"], c.data["t1"]) for c in claims if c.level == "semantic"]
    assert ("sleep", "00:00", "07:00") in sem
    bout = next(c.data for c in claims if c.kind == "activity_bout")
    assert (bout["t0"], bout["t1"], bout["type"], bout["steps"]) == ("10:00", "10:25", "running", 24 * 80 + 30)
    assert [c for c in sem if c[0] == "activity_bout"] == [("activity_bout", "10:00", "10:25")]
    assert ("off_wrist", "20:00", "21:00") in sem
    assert ("condition", "16:40", "17:10") in sem
    assert not any(k == "label_event" for k, _, _ in sem)       # the running label is said once, as the bout's type
    hypo = next(c.data for c in claims if c.kind == "glucose_excursion")
    assert hypo["event"] == "hypo" and hypo["extreme_mgdl"] == 60.0 and hypo["t0"] == "05:00"
    assert "running" in caps[0].texts["semantic"] and "stress" in caps[0].texts["semantic"]
    _holds(b, caps)


def test_paraphrases_vary_between_windows_but_not_between_runs():
    b = _batch(n=24)
    for i in range(24):
        _set(b, "heart_rate", 0, W, 60.0 + i, i)
    keys = [f"src/p/{i}" for i in range(24)]
    first, claims = _claims(b, keys=keys)
    again, _ = _claims(b, keys=keys)
    assert [c.claims_json for c in first] == [c.claims_json for c in again]
    assert [c.texts for c in first] == [c.texts for c in again]
    templates = {c.template for cl in claims for c in cl if c.kind == "stats"}
    assert templates == {0, 1, 2}
    other, _ = _claims(b, cfg=CaptionConfig(seed=7), keys=keys)
    assert [c.texts for c in other] != [c.texts for c in first]


def test_levels_are_registered_components_chosen_by_config():
    @register_caption_level   # subclassing registered it already: the decorator is a no-op
    class Coverage(CaptionLevel):
        name = "coverage_note"
        templates = {"coverage": ("{pct} of the minutes were observed",)}

        def claims(self, batch):
            return [[Claim(self.name, "coverage", {"pct": f"{batch.observed[i].any(axis=1).mean():.0%}"})]
                    for i in range(len(batch))]

        def check(self, claim, batch):
            return None

    cfg = build_dataclass(CaptionConfig, {"levels": ["statistical", "coverage_note"]}, "captions")
    b = _batch()
    _set(b, "heart_rate", 0, 720, 70.0)
    caps, _ = _claims(b, cfg=cfg)
    assert list(caps[0].texts) == ["statistical", "coverage_note"]
    assert caps[0].texts["coverage_note"] == "50% of the minutes were observed."
    with pytest.raises(ConfigError, match=r"captions.levels\[1\]: unknown caption level 'nope'"):
        resolve_caption_levels(build_dataclass(CaptionConfig, {"levels": ["statistical", "nope"]}, "captions"))
    with pytest.raises(ConfigError, match="captions.structural.min_change.pulse: unknown channel"):
        build_dataclass(CaptionConfig, {"structural": {"min_change": {"pulse": 3}}}, "captions")


def test_claims_hold_on_values_with_float32_denormalization_noise():
    """A record's values come back from normalization with ~1e-6 relative noise: a CGM reading of exactly
    70 mg/dL may read 69.99999. Captions and checker both see values quantized to 1e-4, so thresholds agree."""
    b = _batch()
    gl = np.full(W, np.nan)
    gl[::5] = 110.0
    gl[300:330:5] = [69.0, 68.0, 66.0, 67.0, 65.0, 64.0]      # a 30-min hypoglycaemic event ...
    gl[330:350:5] = 70.0                                      # ... ended by readings of exactly 70 mg/dL
    ok = ~np.isnan(gl)
    j = CHANNELS.index("glucose")
    b.values[0, ok, j] = gl[ok]
    b.observed[0, ok, j] = True
    _set(b, "steps", 600, 640, 60.0)                          # exactly the bout threshold
    caps, (claims,) = _claims(b)
    hypo = next(c.data for c in claims if c.kind == "glucose_excursion")
    assert (hypo["t0"], hypo["t1"]) == ("05:00", "05:30")
    noisy = b.window(0)
    noisy.values = (b.values * np.float32(1 - 2e-7)).astype(np.float32)   # 70 -> 69.999986, 60 -> 59.999988
    assert (noisy.values[0, ok, j] < gl[ok].astype(np.float32)).all()
    n, findings = check_window(CaptionConfig(), noisy, caps[0].texts, caps[0].claims_json)
    assert n and findings == []
