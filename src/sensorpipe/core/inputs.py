"""What a source adapter reads for one unit: native rows (Arrow) and dense raw waveforms.

Native rows keep the file's own representation so validation can quarantine
them verbatim (their columns: ``sensorpipe.sources.base.NATIVE_COLUMNS``);
raw waveforms (PPG, ECG, accelerometer at Hz rates) are dense arrays with a
start time and a sample rate, turned into minute features by sensor
processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from sensorpipe.core.refs import UnitRef


@dataclass(frozen=True)
class RawSignal:
    """A dense waveform: ``values[i]`` was sampled at ``start_utc_ns + i / sample_rate_hz``.

    ``kind`` is one of the kinds with a feature extractor
    (:func:`sensorpipe.processing.raw_features.known_kinds`: ``ppg``, ``ecg``,
    ``resp``, ``acc``, ``eda``, ``temp``); ``values`` is ``(N,)`` or ``(N, 3)``
    for ``acc``; ``unit`` is the native unit (``g``, ``1/64 g``, ``m/s^2``,
    ``uS``, ``degC``, ``mV``, ``a.u.``).
    """

    kind: str
    start_utc_ns: int
    sample_rate_hz: float
    values: np.ndarray
    unit: str
    source_file: str


@dataclass
class UnitInput:
    """What an adapter read for one unit, before validation."""

    unit: UnitRef
    native: list[pa.Table]
    raw_signals: list[RawSignal] = field(default_factory=list)

    @property
    def n_raw_samples(self) -> int:
        return int(sum(s.values.shape[0] for s in self.raw_signals))
