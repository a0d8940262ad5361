"""BIOPAC AcqKnowledge ``.acq`` recordings (lab ECG, EDA, respiration): read with ``bioread``.

``bioread`` (MIT, the maintained reader of every AcqKnowledge revision from
3.x to 5.x, compressed or not) gives each channel's label, unit, rate (the
file's base rate over the channel's frequency divider) and scaled values.
Files become units as in the EDF adapter (``participant_from``: ``stem``,
``folder`` or ``table``; see :mod:`sensorpipe.sources._toolkit.lab_recording`).

Channels: labels are matched, case-insensitively, against ``options.kinds``.
The defaults prefer BIOPAC's module names (``EKG - ECG100C``, ``EDA -
GSR100C``, ``RESP - RSP100C``) and take a generic ``ECG*``/``EDA*`` label only
when no module name matches, so a calculated channel such as ``EDA filtered,
differentiated`` is never taken for the raw signal when the raw one is there.
ECG is scaled to mV, EDA must be in microsiemens (``microsiemen(s)``,
``μsiemens`` and ``uS`` all are); other kinds keep the file's unit.

Time: AcqKnowledge 4.4 and later write an *append* marker (``Segment 1``) at
sample 0 whose creation time is the acquisition start in UTC; that places
the recording. A file with several appended segments (recording paused and
resumed) is split at its append markers, each segment starting at its own
marker's time, because the samples are concatenated without the pause.
Older files carry no clock time: give their local wall-clock start in
``options.start_times`` (file name or path relative to the source path ->
``YYYY-MM-DDThh:mm:ss``), placed in the participant's zone with the EDF rules;
a file with neither is an error naming it.
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
DEFAULT_KINDS = {"ecg": ("EKG - *", "ECG - *", "ECG*", "EKG*"), "eda": ("EDA - *", "GSR - *", "EDA*", "GSR*"),
                 "resp": ("RESP - *", "RSP*", "Resp*"), "temp": ("TEMP - *", "SKT*", "Temp*"),
                 "ppg": ("PPG - *", "PPG*", "Pleth*", "PULSE*")}
_NS = 10**9
MAX_CHANNELS = 256              # MP160: 16 analog + 16 digital + calculation channels; far above any real file
MIN_CHANNEL_HEADER_BYTES = 250  # each channel's header in the file (AcqKnowledge 3.x-5.x: 252 bytes or more)


class BiopacAcqAdapter(LabRecordingAdapter):
    """AcqKnowledge files read with bioread; raw waveforms go through sensor processing."""

    name = "biopac_acq"
    description = "BIOPAC AcqKnowledge .acq recordings, 3.x-5.x (ECG, EDA, respiration, temperature, PPG by label)"
    time_convention = ("acquisition start = creation time (UTC) of the append marker at sample 0 (AcqKnowledge "
                       "4.4+), one per appended segment; older files: options.start_times, local wall clock in the "
                       "participant's zone; samples evenly spaced at each channel's rate")
    raw_kinds = ("ecg", "resp", "eda", "temp", "ppg")
    drops = ("channels whose label matches no kind (EMG, calculated channels, stimulus inputs, ...) and further "
             "matches of a kind already taken; event markers other than segment starts; the journal (free text)")

    @dataclass(frozen=True)
    class Options(TimedLabOptions):
        default_kinds: ClassVar[dict[str, tuple[str, ...]]] = DEFAULT_KINDS
        glob: str = "**/*.acq"
        kinds: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KINDS))

    def read_recording(self, path: Path, who: Participant) -> _recording_start.Recording:
        import bioread

        with path.open("rb") as fh:
            head = fh.read(64)
        if len(head) < 64:
            raise SourceError(f"{path}: {len(head)} bytes, too short for an AcqKnowledge header; export it again")
        self._check_channel_count(path)
        try:
            data = bioread.read_file(str(path))
        except Exception as e:  # noqa: BLE001  bioread raises struct/value/index/zlib errors on damaged files
            raise SourceError(f"{path}: bioread cannot read it ({type(e).__name__}: {str(e)[:120]}); the file is "
                              f"damaged, truncated or not an AcqKnowledge .acq") from None
        try:
            signals, shift_ns = self._signals(data, path, who)
        except SourceError:
            raise
        except (TypeError, AttributeError, ValueError, IndexError, ZeroDivisionError, OverflowError) as e:
            # bioread logs some damage and returns a file with missing parts instead of raising
            raise SourceError(f"{path}: the AcqKnowledge file is damaged ({type(e).__name__}: {str(e)[:120]}); "
                              f"export it again") from None
        return _recording_start.Recording("biopac", signals, shift_ns)

    @staticmethod
    def _check_channel_count(path: Path) -> None:
        """Refuse a graph header whose channel count the file cannot hold: bioread would build that many
        headers at each of thousands of offsets while it scans a damaged file (minutes, gigabytes)."""
        from bioread.header_reader import GraphHeaderReader

        try:
            with path.open("rb") as fh:
                n = int(GraphHeaderReader.bootstrap(fh).channel_count)
        except Exception as e:  # noqa: BLE001  bioread raises struct/value/index errors on a damaged header
            raise SourceError(f"{path}: the AcqKnowledge graph header is damaged ({type(e).__name__}: "
                              f"{str(e)[:120]}); export the file again") from None
        if not 0 < n <= MAX_CHANNELS or n * MIN_CHANNEL_HEADER_BYTES > path.stat().st_size:
            raise SourceError(f"{path}: the AcqKnowledge graph header gives {n} channels, which the file "
                              f"({path.stat().st_size} bytes) cannot hold; the file is damaged: export it again")

    def _signals(self, data, path: Path, who: Participant) -> tuple[list[RawSignal], int]:
        base_rate = float(data.samples_per_second)
        labels = [str(c.name).strip() for c in data.channels]
        chosen = choose(labels, self.options.kinds)
        unused = [lab for i, lab in enumerate(labels) if i not in chosen.values()]
        if unused:
            log.info("%s: channels not used: %s", path, ", ".join(unused))
        segments, shift_ns = self._segments(data, base_rate, path, who)
        signals = []
        for kind, i in sorted(chosen.items()):
            ch = data.channels[i]
            rate = base_rate / float(ch.frequency_divider)
            if not np.isfinite(rate) or rate <= 0:
                raise SourceError(f"{path}: channel {labels[i]!r} has sample rate {rate}; the header is damaged")
            values = np.asarray(ch.data, np.float64)
            unit = self.options.units.get(labels[i], str(ch.units).strip())
            values, unit = in_unit(values, kind, unit, labels[i], path)
            for (lo_base, hi_base, start_ns) in segments:
                lo, hi = -(-lo_base // ch.frequency_divider), -(-hi_base // ch.frequency_divider)
                lo_ns = start_ns + round((lo * ch.frequency_divider - lo_base) / base_rate * _NS)
                if hi > lo:
                    signals.append(RawSignal(kind, lo_ns, rate, values[lo:hi], unit, str(path)))
        return signals, shift_ns

    def _segments(self, data, base_rate: float, path: Path, who: Participant) -> tuple[list[tuple[int, int, int]], int]:
        """``[(first base sample, end base sample, start UTC ns)]`` per appended segment, and the repeat shift."""
        n_base = max((int(c.point_count) * int(c.frequency_divider) for c in data.channels), default=0)
        appends = sorted((int(m.sample_index), m.date_created_utc) for m in data.event_markers
                         if m.type_code == "apnd" and 0 <= int(m.sample_index) < max(n_base, 1))
        if appends and appends[0][0] == 0 and all(t is not None for _, t in appends):
            bounds = [s for s, _ in appends] + [n_base]
            return [(bounds[k], bounds[k + 1], _utc_ns(t)) for k, (_, t) in enumerate(appends)
                    if bounds[k + 1] > bounds[k]], 0
        wall = self.configured_start(path)
        if wall is None:
            raise SourceError(f"{path}: no acquisition time in the file (AcqKnowledge before 4.4 writes none); give "
                              f"its local start in sources[{self.source.name}].options.start_times: "
                              f"{{{path.name!r}: 'YYYY-MM-DDThh:mm:ss'}}")
        start_ns = _recording_start.local_start_ns(wall, who.tz, str(path))
        return [(0, n_base, start_ns)], _recording_start.repeat_shift_ns(wall, who.tz)


def _utc_ns(t: dt.datetime) -> int:
    t = t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000
