"""The report's figures place their titles, axis labels and row labels once, when they are built: a save no
longer measures every tick label of an axes to place them (most of the report's drawing time), and the SVG
written is the one matplotlib's automatic placement gives."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.axis import Axis

from sensorpipe.quality import report_plots
from sensorpipe.quality.report_sample import Heatmap


def _figures() -> dict[str, str]:
    edges = np.linspace(40.0, 180.0, 41)
    hist = report_plots.Histograms().draw("heart_rate", edges, {"train": (np.full(40, 1 / 40), 1200),
                                                                "test": (np.linspace(0, 0.05, 40), 300)})
    values = np.linspace(50, 150, 120 * 2).reshape(120, 2)
    mask = np.zeros((120, 2), bool)
    mask[30:50, 1] = True
    return {"histogram": hist,
            "bars": report_plots.bars("windows dropped by reason", ["gap", "too short"], [12, 3], "windows"),
            "window": report_plots.window(values, mask, ("heart_rate", "steps"), "s / train / k1"),
            "correlation": report_plots.correlation(("heart_rate", "steps"), np.array([[1.0, -0.4], [-0.4, 1.0]]))}


def test_a_save_measures_no_tick_label_to_place_the_axis_labels(monkeypatch):
    measured = []
    real = Axis._get_tick_boxes_siblings
    monkeypatch.setattr(Axis, "_get_tick_boxes_siblings", lambda self, *a, **k: measured.append(self) or
                        real(self, *a, **k))
    _figures()
    assert measured == []


@pytest.mark.parametrize("name", ["histogram", "bars", "window", "correlation"])
def test_the_fixed_places_are_the_automatic_ones(monkeypatch, name):
    fixed = _figures()[name]
    monkeypatch.setattr(report_plots, "_fixed_axis_labels", lambda ax, pt: None)
    monkeypatch.setattr(report_plots, "_title", lambda ax, text, fontsize=7: ax.set_title(text, fontsize=fontsize))
    assert fixed == _figures()[name]


def test_heatmap_rows_are_labelled_top_down_beside_the_first_panel():
    rows = ["s / aaaa1111", "s / bbbb2222", "t / cccc3333"]
    share = np.array([[0.5, 1.0], [0.1, np.nan], [0.0, 0.2]])
    svg = report_plots.heatmaps([Heatmap("Heart", ("heart_rate",), rows, share),
                                 Heatmap("Activity", ("steps",), rows, share[::-1])])
    ys = [float(re.search(rf'<text[^>]*y="([-\d.]+)"[^>]*>{re.escape(r)}</text>', svg).group(1)) for r in rows]
    assert ys == sorted(ys) and len(set(ys)) == 3       # once each, first row at the top
    assert all(svg.count(f">{r}<") == 1 for r in rows)


def test_heatmap_panels_are_one_per_group_left_to_right_each_with_its_day_ticks():
    rows = [f"s / p{k:07d}" for k in range(4)]
    share = np.linspace(0, 1, 4 * 12).reshape(4, 12)
    groups = ["Heart", "Activity", "Sleep"]
    svg = report_plots.heatmaps([Heatmap(g, ("x",), rows, share) for g in groups])
    xs = [float(re.search(rf'<text[^>]*x="([-\d.]+)"[^>]*>{g}</text>', svg).group(1)) for g in groups]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert svg.count("<image") == 3 and svg.count(">8</text>") == 3        # a picture and day 8 in each panel


def test_a_reused_histogram_canvas_draws_what_a_fresh_one_draws():
    """Lines and captions are updated, hidden and shown again from channel to channel: a channel with fewer
    splits after one with all three keeps nothing of it, and one with all three after it shows them again."""
    edges = np.linspace(0.0, 10.0, 41)
    every = {"train": (np.full(40, 1 / 40), 900), "validation": (np.linspace(0, 0.05, 40), 200),
             "test": (np.linspace(0.05, 0, 40), 100)}
    only_test = {"test": (np.full(40, 1 / 40), 5)}
    canvas = report_plots.Histograms()
    drawn = [canvas.draw("steps", edges, every), canvas.draw("heart_rate", edges, only_test),
             canvas.draw("steps", edges, every)]
    assert drawn[1] == report_plots.Histograms().draw("heart_rate", edges, only_test)
    assert drawn[2] == drawn[0] and "test 5<" in drawn[1] and "train" not in drawn[1]
