"""Garmin activity files (FIT, TCX, GPX): the ``garmin_activity`` adapter and its private readers.

A package because the format takes three modules: :mod:`.activity` (the
adapter, the FIT reader and the per-file sport bouts), :mod:`._xml` (TCX and
GPX) and :mod:`._common` (a decoded track to native rows).
"""

from sensorpipe.sources.garmin.activity import GarminActivityAdapter, file_sport_bouts, read_fit

__all__ = ["GarminActivityAdapter", "file_sport_bouts", "read_fit"]
