"""Raw waveforms -> minute-level canonical observations: the public entry points.

The extractors live in :mod:`sensorpipe.processing.features` (one module per
signal kind plus the shared base); this module keeps the names the stages,
``convert`` and the plugin loader use: :func:`extract`, :func:`known_kinds`,
:func:`kind_channels`, :func:`register_extractor` and the registry dict
``EXTRACTORS`` (``kind -> class``).
"""

from __future__ import annotations

from sensorpipe.processing.features import (
    EXTRACTORS,
    FeatureExtractor,
    Features,
    MinuteFeatures,
    MinuteIndex,
    extract,
    kind_channels,
    known_kinds,
    register_extractor,
)
from sensorpipe.processing.features.acc import AccelerometerFeatures
from sensorpipe.processing.features.beats import BEAT_INTERVAL_S, BREATH_INTERVAL_S
from sensorpipe.processing.features.beats import (
    interval_rate_minutes as _interval_rate_minutes,
)
from sensorpipe.processing.features.ecg import EcgFeatures
from sensorpipe.processing.features.eda import EdaFeatures
from sensorpipe.processing.features.ppg import PpgFeatures
from sensorpipe.processing.features.resp import RespirationFeatures
from sensorpipe.processing.features.temp import SkinTemperatureFeatures

_EXTRACTORS = EXTRACTORS


def adapter_channels(adapter: type) -> tuple[str, ...]:
    """Every canonical channel a source format can feed: its rows' channels, then the minute features of the
    raw waveform kinds it yields (the adapter knows its kinds; which channels a kind's extractor emits is
    known here, a layer above the adapters)."""
    kinds = kind_channels()
    out = list(adapter.channels) + [c for k in adapter.raw_kinds for c in kinds.get(k, ())]
    return tuple(dict.fromkeys(out))
#: names of the single-channel extractors these classes replaced
EcgHeartRate, PpgHeartRate, Enmo, EdaLevel = EcgFeatures, PpgFeatures, AccelerometerFeatures, EdaFeatures
RespirationRate, SkinTemperature = RespirationFeatures, SkinTemperatureFeatures

__all__ = ["BEAT_INTERVAL_S", "adapter_channels", "BREATH_INTERVAL_S", "EXTRACTORS", "FeatureExtractor", "Features", "MinuteFeatures",
           "MinuteIndex", "_interval_rate_minutes", "extract", "kind_channels", "known_kinds", "register_extractor"]
