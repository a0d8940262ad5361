"""Skin temperature -> its minute mean in degC (any rate; degF and other units via :mod:`sensorpipe.units`)."""

from __future__ import annotations

import numpy as np

from sensorpipe.processing.features.base import (
    FeatureExtractor,
    Features,
    MinuteIndex,
    minute_mean,
)
from sensorpipe.units import convert


class SkinTemperatureFeatures(FeatureExtractor):
    kind = "temp"
    channels = ("skin_temperature",)

    def features(self, sig, index: MinuteIndex) -> Features:
        x = convert(np.asarray(sig.values, np.float64).ravel(), sig.unit, "degC")
        mean, support = minute_mean(x, index.minute, index.n_minutes)
        return Features({"skin_temperature": mean}, support)
