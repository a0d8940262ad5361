"""The report's sections from recorded numbers: histograms read off the stored quantiles, labels from the
pass-1 label counts, alerts first, drift from quality/drift.py, and the whole page's sections."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np

from sensorpipe.metadata.records import (AlertRecord, ChannelStatRecord, FileRowsRecord, QualityRecord,
                                         QuantileRecord, RunRecord)
from sensorpipe.metadata.tables import QUANTILE_LEVELS
from sensorpipe.quality import report_sections as sections
from sensorpipe.quality.drift import VersionSnapshot, drift
from sensorpipe.quality.report import SECTIONS, ReportExtras, render

UNIFORM = [100 * p for p in QUANTILE_LEVELS]          # quantiles of U(0, 100)


def test_histogram_shares_follow_the_quantiles_and_keep_the_tails_in_the_end_bins():
    np.testing.assert_allclose(sections.histogram_shares(UNIFORM, np.linspace(0, 100, 11)), [0.1] * 10, atol=1e-12)
    shares = sections.histogram_shares(UNIFORM, np.linspace(20, 80, 7))
    np.testing.assert_allclose(shares, [0.3, 0.1, 0.1, 0.1, 0.1, 0.3], atol=1e-12)
    assert abs(shares.sum() - 1) < 1e-12
    # a value held over many levels (zero steps up to p60) keeps that mass in its bin, plus half the linear
    # step to the next level (1 step/min at p61)
    steps = [0.0] * 61 + list(np.linspace(1, 40, 40))
    assert abs(sections.histogram_shares(steps, np.linspace(-0.5, 39.5, 41))[0] - 0.605) < 1e-9


def _record(**kw) -> RunRecord:
    base = dict(run_id="r1", started_at="", finished_at="", runner="local", workers=1, status="succeeded",
                dataset_name="d", dataset_version="1.0.0", fingerprint="f" * 16, code_version="c",
                config_json=json.dumps({"channels": ["steps", "heart_rate"]}), output_dir="/nowhere",
                split_sizes={"test": 2, "train": 8})
    base.update(kw)
    return RunRecord(**base)


def test_labels_section_shows_coverage_and_balance_over_all_kept_windows():
    q = [QualityRecord("dataset", "label_windows:sex:female", 3), QualityRecord("dataset", "label_windows:sex:male", 1),
         QualityRecord("dataset", "label_windows:sex:missing", 1)]
    text = sections.labels(_record(quality=q))
    assert "<td>sex</td><td>4</td><td>80.0%</td><td>female 3 (75%), male 1 (25%)</td>" in text
    assert text.count("<svg") == 1
    assert "no kept window carries a label" in sections.labels(_record())


def test_alerts_come_first_with_rule_value_and_threshold():
    a = AlertRecord("drift_psi", "channel:heart_rate", 0.61, 0.25, "heart_rate drifted: PSI 0.61 > 0.25")
    page = render(_record(alerts=[a]))
    assert page.index('id="alerts"') < page.index('id="channels"')
    assert "<strong>drift_psi</strong> (channel:heart_rate): heart_rate drifted: PSI 0.61 &gt; 0.25 " \
           "(value 0.61, threshold 0.25)" in page
    assert 'id="alerts"' not in render(_record())


def _versioned(version: str, shift: float) -> RunRecord:
    stats = [ChannelStatRecord(s, "heart_rate", 1000, 70 + shift, 10, 40, 120, 0.1) for s in ("train", "test")]
    quant = [QuantileRecord(s, "heart_rate", json.dumps([50 + shift + 40 * p for p in QUANTILE_LEVELS]))
             for s in ("train", "test", "all")]
    return _record(dataset_version=version, fingerprint=version * 4, channel_stats=stats, quantiles=quant)


def test_the_page_holds_every_section_and_the_drift_names_the_channel():
    old, new = _versioned("1.0.0", 0.0), _versioned("1.1.0", 8.0)
    d = drift(VersionSnapshot.of_record(old), VersionSnapshot.of_record(new))
    files = [FileRowsRecord("src", "src:abc", 10, 7, 3)]
    page = render(dataclasses.replace(new, file_rows=files), extras=ReportExtras(drift=d))
    for anchor, _ in SECTIONS:
        assert f'id="{anchor}"' in page, anchor
    drift_html = page[page.index('id="drift"'):page.index('id="details"')]
    row = re.search(r"<tr><td>heart_rate</td><td>([\d.]+)</td><td>([\d.]+)</td>", drift_html)
    assert float(row.group(1)) > 0.25 and abs(float(row.group(2)) - 8.0) < 1e-6      # PSI, W1 in bpm
    assert "<td>src:abc</td><td>10</td><td>7</td><td>3</td><td>yes</td>" in page
    channels_html = page[page.index('id="channels"'):page.index('id="missingness"')]
    assert channels_html.count("<svg") == 1 and "<td>train</td><td>58.4</td>" in channels_html   # p1: 58 + 40 x 0.01


def test_example_windows_shorter_than_a_bin_and_partly_observed_are_drawn():
    """A lab recording's 1-minute window (shorter than the 5-minute bins) and a channel seen only in a
    window's last, partial bin are drawn, not a numpy reduction error."""
    from sensorpipe.quality import report_plots

    one = report_plots.window(np.array([[72.0, 4.1]]), np.array([[False, False]]), ("heart_rate", "eda_level"),
                              "wfdb_lab 1 min")
    assert one.startswith("<svg") and "heart_rate 72 to 72 bpm" in one
    values = np.arange(12, dtype=float).reshape(6, 2)
    mask = np.ones((6, 2), bool)
    mask[5, 1] = False                       # eda observed only in minute 6: past the one full 5-minute bin
    mask[:, 0] = False
    svg = report_plots.window(values, mask, ("heart_rate", "eda_level"), "partial")
    assert "eda_level 0 to 0 uS" in svg and "heart_rate 4 to 4 bpm" in svg   # minutes 1-5: mean 4
