"""The report's missingness chart: a PNG of the train split's channels, drawn without pyplot."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from types import SimpleNamespace

from sensorpipe.metadata.records import ChannelStatRecord
from sensorpipe.quality.report import _missing_plot


def _stat(split: str, channel: str, missing: float) -> ChannelStatRecord:
    return ChannelStatRecord(split, channel, 10, 1.0, 0.5, 0.0, 2.0, missing)


def test_chart_is_a_png_sized_by_the_train_channels():
    record = SimpleNamespace(channel_stats=[_stat("train", "heart_rate", 0.1), _stat("train", "steps", 0.6),
                                            _stat("train", "sleep_stage", 1.0), _stat("test", "spo2", 0.2)])
    html = _missing_plot(record)
    assert html.startswith('<img alt="missingness per channel" src="data:image/png;base64,')
    png = base64.b64decode(html.split("base64,")[1].rstrip('">'))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])          # IHDR: 7 x (0.3 per train channel + 1) in at 90 dpi
    assert (width, height) == (630, round((0.3 * 3 + 1) * 90))


def test_no_train_channels_no_chart():
    assert _missing_plot(SimpleNamespace(channel_stats=[_stat("test", "spo2", 0.2)])) == ""


def test_chart_leaves_pyplot_and_the_backend_alone():
    """A report written in a notebook must not switch the user's matplotlib backend or load pyplot."""
    code = ("import sys, matplotlib\n"
            "from types import SimpleNamespace\n"
            "from sensorpipe.metadata.records import ChannelStatRecord\n"
            "from sensorpipe.quality.report import _missing_plot\n"
            "matplotlib.rcParams['backend'] = 'svg'\n"
            "s = ChannelStatRecord('train', 'steps', 1, 0.0, 0.0, 0.0, 0.0, 0.5)\n"
            "assert _missing_plot(SimpleNamespace(channel_stats=[s])).startswith('<img')\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n"
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n")
    subprocess.run([sys.executable, "-c", code], check=True)
