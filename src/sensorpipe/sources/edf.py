"""EDF and EDF+ recordings (polysomnography, lab and Holter recorders): raw ECG, EDA, respiration, temperature, PPG.

Read with ``pyedflib`` (the maintained EDFlib binding). One file is one
recording; files are grouped into units by participant:

- ``participant_from: stem`` (default): the file stem is the participant id;
- ``folder``: the top folder under the source path (``<path>/<pid>/...``);
- ``table``: the participants table's ``file`` column, one or more file paths
  relative to the source path separated by ``;`` (a file no row names is an
  error naming it).

The source path may also be one recording file: it is then read alone, as if
it were the only file of its folder.

The header's patient field (name, birth date, sex) is personal data: it is
never read into the output, the ids or the error messages.

Channels: each signal label is matched, case-insensitively, against
``options.kinds`` (kind -> label patterns; defaults ``ECG*, EKG*`` -> ecg,
``EDA*, GSR*`` -> eda, ``Resp*, Thor*, Abdo*`` -> resp, ``Temp*`` -> temp,
``Pleth*, PPG*`` -> ppg). A kind takes the first label that matches, trying
the patterns in their order, so a recording with thoracic and abdominal belts
gives one respiration signal (no minute counted twice); the other matches and
the unmatched labels (EEG, EMG, SpO2, ...) are not used (logged). The EDF+
annotation channel is not a signal.

Values: physical = (digital - dmin) * (pmax - pmin) / (dmax - dmin) + pmin
from each signal's header. The unit is the header's physical dimension: ECG in
``uV``/``mV``/``V`` is scaled to mV; EDA must convert to uS and temperature to
degC (:mod:`sensorpipe.units`), else the file is an error naming the channel
(``options.units`` overrides a label's unit). A sample at the digital minimum
or maximum is clipped by the recorder (the true value lies beyond the range):
with ``saturated: nan`` (default) it becomes NaN, which does not count as
coverage; ``keep`` keeps the clipped value.

Time: EDF's start date and time (``dd.mm.yy`` / ``hh.mm.ss``, EDF+ adds the
4-digit year and a sub-second start in the first annotation) are the local
wall clock where the recording was made; the format has no zone or offset
field, and EDF+ defines no time-zone annotation, so the participant's IANA
zone (participants table, else ``options.tz``) places it, with the DST rules
of :mod:`sensorpipe.sources._toolkit.recording_start` (fall-back: first occurrence,
or the second where the first would overlap an earlier recording of the same
equipment; skipped hour: an error naming the file). Samples are evenly spaced at each
signal's rate from that start. Discontinuous EDF+D files are refused (their
records are not evenly spaced); convert them to EDF+C or split them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from sensorpipe.core.inputs import RawSignal
from sensorpipe.core.refs import Participant
from sensorpipe.sources._toolkit import recording_start as _recording_start
from sensorpipe.sources._toolkit.lab_recording import LabOptions, LabRecordingAdapter, choose, in_unit
from sensorpipe.sources.base import SourceError

log = logging.getLogger(__name__)
DEFAULT_KINDS = {"ecg": ("ECG*", "EKG*"), "eda": ("EDA*", "GSR*"), "resp": ("Resp*", "Thor*", "Abdo*"),
                 "temp": ("Temp*",), "ppg": ("Pleth*", "PPG*")}


class EdfAdapter(LabRecordingAdapter):
    """EDF/EDF+ files read with pyedflib; raw waveforms go through sensor processing."""

    name = "edf"
    description = "EDF / EDF+ recordings (ECG, EDA, respiration, temperature, PPG channels matched by label)"
    time_convention = ("header start date + time = local wall clock of the recording, in the participant's zone; "
                       "samples evenly spaced at each signal's rate")
    raw_kinds = ('ecg', 'resp', 'eda', 'temp')
    drops = ("the patient field (PII); signals whose label matches no kind (EEG, EOG, EMG, SpO2, ...) and "
             "further matches of a kind already taken; EDF+ annotations")

    @dataclass(frozen=True)
    class Options(LabOptions):
        default_kinds: ClassVar[dict[str, tuple[str, ...]]] = DEFAULT_KINDS
        glob: str = "**/*.edf"
        kinds: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KINDS))
        #: a sample at the recorder's digital minimum or maximum: NaN (the true value lies beyond) or kept
        saturated: Literal["nan", "keep"] = "nan"

    def read_recording(self, path: Path, who: Participant) -> _recording_start.Recording:
        return read_recording(path, who.tz, self.options)


def read_edf(path: Path, tz: str, options: EdfAdapter.Options | None = None) -> list[RawSignal]:
    """The matched signals of one EDF/EDF+ file, in physical units and UTC (see the module docstring)."""
    return read_recording(path, tz, options).signals


def read_recording(path: Path, tz: str, options: EdfAdapter.Options | None = None) -> _recording_start.Recording:
    """One file as a :class:`~sensorpipe.sources._toolkit.recording_start.Recording` (the header's equipment names the
    recorder)."""
    import pyedflib

    options = options or EdfAdapter.Options()
    with path.open("rb") as fh:
        head = fh.read(256)
    if len(head) < 256 or not head.startswith(b"0       "):
        raise SourceError(f"{path}: not an EDF file (an EDF header starts with '0' and is at least 256 bytes); "
                          f"export the recording as EDF or EDF+")
    if head[192:197] == b"EDF+D":
        raise SourceError(f"{path}: an EDF+D (discontinuous) recording; its data records are not evenly spaced: "
                          f"convert it to EDF+C or split it into continuous files")
    _check_size(path, head)
    try:
        reader = pyedflib.EdfReader(str(path))
    except (OSError, ValueError) as e:
        raise SourceError(f"{path}: pyedflib cannot read it ({e}); the file is damaged, truncated or not EDF") from None
    try:
        try:
            start = reader.getStartdatetime()
        except ValueError as e:
            raise SourceError(f"{path}: the header's start date/time is invalid ({e})") from None
        labels = [str(x).strip() for x in reader.getSignalLabels()]
        chosen = choose(labels, options.kinds)
        unused = [lab for i, lab in enumerate(labels) if i not in chosen.values()]
        if unused:
            log.info("%s: signals not used: %s", path, ", ".join(unused))
        start_ns = _recording_start.local_start_ns(start, tz, str(path))
        signals = [_signal(reader, i, kind, labels[i], start_ns, path, options) for kind, i in sorted(chosen.items())]
        return _recording_start.Recording(str(reader.getEquipment()).strip(), signals,
                                          _recording_start.repeat_shift_ns(start, tz))
    finally:
        reader.close()


def _check_size(path: Path, head: bytes) -> None:
    """The file size the header promises (EDFlib prints and refuses a mismatch; this says it in the error).

    Fixed header: 256 bytes, with the number of data records at bytes
    236-244 and of signals at 252-256; then 256 bytes per signal, whose
    samples-per-record fields (8 bytes each) start at ``256 + 216 * ns``;
    then the records, 2 bytes per sample.
    """
    try:
        n_records, ns = int(head[236:244].decode("ascii")), int(head[252:256].decode("ascii"))
        with path.open("rb") as fh:
            fh.seek(256 + 216 * ns)
            per_record = [int(fh.read(8).decode("ascii")) for _ in range(ns)]
    except (UnicodeDecodeError, ValueError) as e:
        raise SourceError(f"{path}: the EDF header is damaged ({e})") from None
    if n_records < 0 or ns <= 0:
        return  # -1 records: still being written; EDFlib decides
    expected = 256 * (ns + 1) + 2 * n_records * sum(per_record)
    size = path.stat().st_size
    if size != expected:
        raise SourceError(f"{path}: {size} bytes, but its header describes {expected} ({n_records} records of "
                          f"{sum(per_record)} samples); the file is truncated or damaged")


def _signal(reader, i: int, kind: str, label: str, start_ns: int, path: Path,
            options: EdfAdapter.Options) -> RawSignal:
    rate = float(reader.getSampleFrequency(i))
    if not np.isfinite(rate) or rate <= 0:
        raise SourceError(f"{path}: signal {label!r} has sample rate {rate}; the header is damaged")
    dmin, dmax = float(reader.getDigitalMinimum(i)), float(reader.getDigitalMaximum(i))
    pmin, pmax = float(reader.getPhysicalMinimum(i)), float(reader.getPhysicalMaximum(i))
    if dmax <= dmin or pmax == pmin:
        raise SourceError(f"{path}: signal {label!r} has digital range {dmin:g}..{dmax:g} and physical range "
                          f"{pmin:g}..{pmax:g}; the header is damaged")
    digital = reader.readSignal(i, digital=True).astype(np.float64)
    values = (digital - dmin) * ((pmax - pmin) / (dmax - dmin)) + pmin
    if options.saturated == "nan":
        values[(digital <= dmin) | (digital >= dmax)] = np.nan
    unit = options.units.get(label, str(reader.getPhysicalDimension(i)).strip())
    values, unit = in_unit(values, kind, unit, label, path)
    return RawSignal(kind, start_ns, rate, values, unit, str(path))
