"""Normalization in the run record and report: clipped-cell metrics, prior warnings, the normalization table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sensorpipe.config import NormalizationConfig, build_dataclass
from sensorpipe.metadata.records import ChannelStatRecord
from sensorpipe.processing.normalize import FitStats, NormParams
from sensorpipe.quality.record import normalization_metrics, normalization_records
from sensorpipe.quality.report import _clipped_cell, _warnings

CHANNELS = ("heart_rate", "spo2", "sleep_stage")


def _norm(**cfg) -> NormParams:
    """heart_rate and sleep_stage observed in train, spo2 never."""
    c = build_dataclass(NormalizationConfig, cfg, "normalization")
    x = np.stack([np.linspace(60, 90, 100), np.full(100, np.nan), np.tile([0.0, 1.0], 50)], axis=1)
    obs = ~np.isnan(x)
    return NormParams.fit(CHANNELS, FitStats.of(x.astype(np.float32), obs, CHANNELS, c), c)


def _q(metrics) -> dict[tuple[str, str], float]:
    return {(m.scope, m.name): m.value for m in metrics}


def test_metrics_count_clipped_cells_per_channel_source_and_dataset_only_when_clipping():
    result = SimpleNamespace(clipped_cells={"watch": {"heart_rate": 3}, "cgm": {}, "ride": {"heart_rate": 2,
                                                                                            "spo2": 5}})
    q = _q(normalization_metrics(_norm(clip_sigma=4.0), result))
    assert q[("dataset", "clipped_normalized")] == 10
    assert q[("study:watch", "clipped_normalized:heart_rate")] == 3 and q[("study:ride", "clipped_normalized:spo2")] == 5
    assert q[("channel:heart_rate", "clipped_normalized")] == 5 and q[("channel:spo2", "clipped_normalized")] == 5
    assert ("channel:sleep_stage", "clipped_normalized") not in q          # `none` is never clipped
    assert q[("channel:spo2", "normalized_with_prior")] == 1
    assert ("channel:heart_rate", "normalized_with_prior") not in q
    off = _q(normalization_metrics(_norm(), SimpleNamespace(clipped_cells={"watch": {}})))
    assert off == {("channel:spo2", "normalized_with_prior"): 1}             # clipping off: nothing to count


def test_report_warns_about_prior_channels_and_clipped_values():
    norm = _norm(clip_sigma=4.0)
    records = normalization_records(norm)
    assert [r.fitted_on_split for r in records] == ["train", "prior", "train"]
    q = _q(normalization_metrics(norm, SimpleNamespace(clipped_cells={"ride": {"heart_rate": 1, "spo2": 1234}})))
    stats = [ChannelStatRecord("train", "spo2", 0, np.nan, np.nan, np.nan, np.nan, 1.0),
             ChannelStatRecord("test", "spo2", 1, 95.0, 0.0, 95.0, 95.0, 0.9),
             ChannelStatRecord("validation", "spo2", 40, 96.0, 1.0, 94.0, 98.0, 0.5)]
    html = _warnings(SimpleNamespace(normalization=records, channel_stats=stats), q)
    assert html.startswith("<h2>Warnings</h2>") and html.count("<li>") == 2
    assert ("channel spo2 had no train observations (1 observed minute in test, 40 observed minutes in "
            "validation); normalized with the registry prior (97 +/- 2 %): zscore center 97, scale 2.") in html
    assert "normalization clipped 1 observed heart_rate minute, 1,234 observed spo2 minutes to the clip range" in html
    assert _clipped_cell(q, "spo2") == 1234 and _clipped_cell(q, "sleep_stage") == "not clipped"
    quiet = _norm(per_channel={"spo2": "none"})                 # nothing from the prior, nothing clipped
    assert _warnings(SimpleNamespace(normalization=normalization_records(quiet), channel_stats=stats),
                     _q(normalization_metrics(quiet, SimpleNamespace(clipped_cells={})))) == ""
