"""Raw waveforms -> minute-level canonical channels: one extractor per signal kind.

``ppg`` (heart rate, HRV, signal quality), ``ecg`` (heart rate, HRV),
``acc`` (ENMO, MAD, steps, intensity, zero-crossing rate), ``eda`` (tonic
level, response rate), ``resp`` (breathing rate) and ``temp`` (skin
temperature). Each registers itself; the registry finds them by walking this
package on first use (no list to keep). :func:`extract` is the
entry point (``sensorpipe.processing.raw_features`` re-exports it).
"""

from sensorpipe.processing.features.base import (
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

__all__ = ["EXTRACTORS", "FeatureExtractor", "Features", "MinuteFeatures", "MinuteIndex", "extract",
           "kind_channels", "known_kinds", "register_extractor"]
