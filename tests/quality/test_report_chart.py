"""The report's missingness chart: an HTML table of CSS bars for the train split's channels, no plotting import."""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

from sensorpipe.metadata.records import ChannelStatRecord
from sensorpipe.quality.report import _missing_bars


def _stat(split: str, channel: str, missing: float) -> ChannelStatRecord:
    return ChannelStatRecord(split, channel, 10, 1.0, 0.5, 0.0, 2.0, missing)


def test_bars_show_each_train_channel_share():
    record = SimpleNamespace(channel_stats=[_stat("train", "heart_rate", 0.1), _stat("train", "steps", 0.625),
                                            _stat("train", "sleep_stage", 1.0), _stat("test", "spo2", 0.2)])
    html = _missing_bars(record)
    rows = re.findall(r"<tr><td>(\w+)</td><td class=\"bar\"><div style=\"width:([\d.]+)%\"></div></td><td>([\d.]+)%</td>",
                      html)
    assert rows == [("heart_rate", "10.0", "10.0"), ("steps", "62.5", "62.5"), ("sleep_stage", "100.0", "100.0")]


def test_no_train_channels_no_chart():
    assert _missing_bars(SimpleNamespace(channel_stats=[_stat("test", "spo2", 0.2)])) == ""


def test_the_report_imports_no_plotting_library():
    """The missingness table itself needs no plotting import (the report's figures are report_plots.py's)."""
    code = ("import sys\n"
            "from types import SimpleNamespace\n"
            "from sensorpipe.metadata.records import ChannelStatRecord\n"
            "from sensorpipe.quality.report import _missing_bars\n"
            "s = ChannelStatRecord('train', 'steps', 1, 0.0, 0.0, 0.0, 0.0, 0.5)\n"
            "assert _missing_bars(SimpleNamespace(channel_stats=[s])).startswith('<table')\n"
            "assert not any(m.startswith('matplotlib') for m in sys.modules), 'matplotlib imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
