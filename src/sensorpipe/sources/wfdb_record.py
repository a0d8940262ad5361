"""PhysioNet WFDB records (a ``.hea`` header with its ``.dat`` signal files): read with ``wfdb``.

``wfdb`` (MIT, PhysioNet's own Python package) reads every storage format
(8, 16, 212, 310, 311, 24, 32, FLAC-compressed 508-516) and multi-segment
records, and returns physical values with invalid samples as NaN. One record
is one recording; its header file is what the source globs (``**/*.hea``), so
a record's signal files may be named anything the header says. Records become
units as in the EDF adapter (``participant_from``: ``stem``, ``folder`` or
``table``; see :mod:`sensorpipe.sources._toolkit.lab_recording`).

Channels: signal names are matched, case-insensitively, against
``options.kinds``; the ECG defaults include the lead names PhysioNet databases
use instead of ``ECG`` (``MLII``, ``V1``-``V6``, ``I``, ``II``, ``III``,
``aVR``/``aVL``/``aVF``), tried in that order. ECG is scaled to mV from the
header's units (``uV``, ``mV``, ``V``); a signal with no unit in the header
is WFDB's default, mV. EDA must convert to uS and temperature to degC.

Time: the header's base time and date are the local wall clock of the
recording (WFDB has no zone field), placed in the participant's zone with the
EDF rules. Many PhysioNet records have no base date: give their local start
in ``options.start_times`` (record name or header path relative to the source
path -> ``YYYY-MM-DDThh:mm:ss``); a record with neither is an error naming it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from sensorpipe.core.inputs import RawSignal
from sensorpipe.core.refs import Participant
from sensorpipe.sources._toolkit import recording_start as _recording_start
from sensorpipe.sources._toolkit.lab_recording import TimedLabOptions, LabRecordingAdapter, choose, in_unit
from sensorpipe.sources.base import SourceError

log = logging.getLogger(__name__)
ECG_LEADS = ("ECG*", "EKG*", "MLII", "ML*", "II", "V1", "V2", "V3", "V4", "V5", "V6", "I", "III", "aVR", "aVL", "aVF")
DEFAULT_KINDS = {"ecg": ECG_LEADS, "eda": ("EDA*", "GSR*"), "resp": ("Resp*", "RESP*", "Thor*", "Abdo*"),
                 "temp": ("Temp*",), "ppg": ("PLETH*", "PPG*")}


class WfdbAdapter(LabRecordingAdapter):
    """WFDB records read with the wfdb package; raw waveforms go through sensor processing."""

    name = "wfdb"
    description = "PhysioNet WFDB records (.hea + .dat, all storage formats; ECG leads, EDA, respiration, PPG by name)"
    time_convention = ("header base date + base time = local wall clock of the recording, in the participant's "
                       "zone (options.start_times for records without a base date); samples evenly spaced at the "
                       "record's frequency")
    raw_kinds = ("ecg", "resp", "eda", "temp", "ppg")
    drops = ("signals whose name matches no kind (ABP, EEG, EMG, ...) and further matches of a kind already taken; "
             "annotation files (.atr, .qrs, ...); header comments (age, sex, diagnoses)")

    @dataclass(frozen=True)
    class Options(TimedLabOptions):
        default_kinds: ClassVar[dict[str, tuple[str, ...]]] = DEFAULT_KINDS
        glob: str = "**/*.hea"
        kinds: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KINDS))

    def read_recording(self, path: Path, who: Participant) -> _recording_start.Recording:
        import wfdb

        try:
            header = wfdb.rdheader(str(path.with_suffix("")))
        except Exception as e:  # noqa: BLE001  wfdb raises value/index/OS errors on damaged headers
            raise SourceError(f"{path}: not a readable WFDB header ({type(e).__name__}: {str(e)[:120]})") from None
        files = sorted({str(f) for f in (header.file_name or []) if f})
        try:
            record = wfdb.rdrecord(str(path.with_suffix("")))
        except Exception as e:  # noqa: BLE001  wfdb raises value/index/OS/struct errors on damaged records
            raise SourceError(f"{path}: wfdb cannot read the record from its signal file(s) {', '.join(files)} "
                              f"({type(e).__name__}: {str(e)[:120]}); a signal file is missing, truncated or "
                              f"damaged") from None
        rate = float(record.fs or 0)
        if not np.isfinite(rate) or rate <= 0:
            raise SourceError(f"{path}: the header gives sampling frequency {record.fs!r}; fix the header")
        labels = [str(n).strip() for n in (record.sig_name or [])]
        signal = record.p_signal
        if signal is None or signal.ndim != 2 or signal.shape[1] != len(labels):
            raise SourceError(f"{path}: the record holds no physical signal matching its {len(labels)} header "
                              f"lines; the signal file is damaged")
        chosen = choose(labels, self.options.kinds)
        unused = [lab for i, lab in enumerate(labels) if i not in chosen.values()]
        if unused:
            log.info("%s: signals not used: %s", path, ", ".join(unused))
        wall = self._start(record, path)
        start_ns = _recording_start.local_start_ns(wall, who.tz, str(path))
        signals = []
        for kind, i in sorted(chosen.items()):
            unit = self.options.units.get(labels[i], str((record.units or [""] * len(labels))[i] or "mV").strip())
            values, unit = in_unit(np.asarray(signal[:, i], np.float64), kind, unit, labels[i], path)
            signals.append(RawSignal(kind, start_ns, rate, values, unit, str(path)))
        return _recording_start.Recording("wfdb", signals, _recording_start.repeat_shift_ns(wall, who.tz))

    def _start(self, record, path: Path) -> dt.datetime:
        if record.base_date is not None:
            return dt.datetime.combine(record.base_date, record.base_time or dt.time(0))
        wall = self.configured_start(path) or self.configured_start(path.with_suffix(""))
        if wall is None:
            raise SourceError(f"{path}: the header has no base date, so the record cannot be placed in time; give "
                              f"its local start in sources[{self.source.name}].options.start_times: "
                              f"{{{path.stem!r}: 'YYYY-MM-DDThh:mm:ss'}}")
        return wall
