"""Example sensorpipe plugin: a window at the top of every ``every_h``-th UTC hour."""

from dataclasses import dataclass

import numpy as np

from sensorpipe.processing.windowing import WindowingStrategy


class TopOfHour(WindowingStrategy):
    """Starts at 00:00, 02:00, ... UTC (every_h: 2); cutting, filters and drop counts are sensorpipe's."""

    name = "top_of_hour"

    @dataclass(frozen=True)
    class Options:  # filled from window.options, checked like any config section
        every_h: int = 2

    def starts(self, grid, unit):
        minute = grid.start_minute + np.arange(grid.n_minutes)
        return np.flatnonzero(minute % (60 * self.options.every_h) == 0)
