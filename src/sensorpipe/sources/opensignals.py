"""OpenSignals text files (PLUX biosignalsplux and BITalino recorders): raw ECG, EDA, respiration, ACC, TEMP, BVP.

Layout, as OpenSignals (r)evolution writes it: line 1 ``# OpenSignals Text
File Format``; line 2 ``# `` followed by a JSON object with one entry per
device (keyed by its MAC address) holding ``sampling rate``, ``column`` (e.g.
``nSeq, I1, I2, O1, O2, A2`` on a BITalino, ``nSeq, DI, CH1`` on a
biosignalsplux), ``label`` and ``sensor`` (one per analog column: ``ECG``,
``EDA``, ``EDABITREV``, ``RESPIRATION``, ``XYZ``, ...), ``resolution`` (bits;
a BITalino lists nSeq and the digital columns first), ``device``, ``date``
(``2016-6-11``) and ``time`` (``7:3:47.29``: fields are not zero padded, so
the part after the dot is read as whole milliseconds); line 3 ``#
EndOfHeader``; then one tab-separated row per sample (CRLF or LF, often with a
trailing tab). A file recorded from several devices puts their columns side by
side, in the devices' ``position`` order.

Participants: files matching ``options.glob`` under the source path; a file in
a sub-folder belongs to the participant named by its top folder
(``<path>/<participant_id>/...``), a file directly in the path to its stem.
The source path may also be one recording file (its stem names the participant).

Time: ``date`` + ``time`` is the acquisition start as a local wall clock with
no zone; it is placed in the participant's IANA zone (participants table, else
``options.tz``) by :mod:`sensorpipe.sources._toolkit.recording_start` (fall-back hour:
the first occurrence, or the second where the first would overlap an earlier
recording by the same devices; a start in the skipped spring-forward hour is
an error naming the file). On PLUX devices ``nSeq`` counts samples from that start and
files cut by OpenSignals keep it (the biosignalsnotebooks sample
``supine_1min.txt`` starts at nSeq 30000), so a sample is at ``start + nSeq /
rate``; lost samples (nSeq jumps) become NaN gaps. Some versions wrap the
counter (at 2**15: 32767 -> 0); a wrap continues the count. A BITalino's
``nSeq`` is 4-bit (0-15): its first row is at the start and a jump modulo 16
is taken as the fewest lost samples.

Values: raw ADC counts are converted with the manufacturer's transfer
functions, with ``n`` the channel's resolution in bits and ``x = ADC / 2**n``.
The device family decides VCC and gains: ``bitalino*`` devices are BITalino
(r)evolution (VCC 3.3 V); ``biosignalsplux``, ``channeller``, ``bioplux``,
``virtual_plux`` and the other PLUX names in :data:`PLUX_DEVICES` are the PLUX
family (VCC 3.0 V); any other device name is an error until
``options.device_families`` names its family. Sources: the BITalino
(r)evolution sensor datasheets (ECG, EDA, PZT, TMP, ACC; also in Pedro Gomes'
``opensignalsreader``, BSD-3) and PLUX's ``biosignalsnotebooks`` 0.6.14
``conversion.raw_to_phy`` (MIT), which covers both families.

- ecg (mV): ``(x - 0.5) * VCC / G * 1000``, G = 1100 (BITalino), 1019 (PLUX).
- eda (uS): ``x * VCC / 0.132`` (BITalino), ``x * VCC / 0.12`` (PLUX).
- resp (% of full scale, PZT/RIP belts): ``(x - 0.5) * 100``.
- temp (degC): BITalino ``TMP`` (a TMP36-type sensor, 10 mV/degC above
  0.5 V): ``(x * VCC - 0.5) * 100`` with the board's 3.3 V (not checked
  against a datasheet: biosignalsnotebooks uses 3.0 V here and
  opensignalsreader leaves VCC out); PLUX ``TEMP`` and BITalino ``NTC`` (a 10 kOhm thermistor): ``R = 1e4
  x / (1 - x)`` ohm, then Steinhart-Hart ``1 / (a0 + a1 ln R + a2 (ln R)**3) -
  273.15`` with a0, a1, a2 = 1.12764514e-3, 2.34282709e-4, 8.77303013e-8.
- acc (g): ``2 (ADC - Cmin) / (Cmax - Cmin) - 1``, where Cmin and Cmax are the
  accelerometer's readings at -1 g and +1 g: ``options.acc_calibration``, else
  PLUX's defaults (BITalino 400 / 608 at 10 bits, PLUX 28000 / 38000 at 16
  bits, scaled to the channel's resolution). Three ACC channels of one device
  form one 3-axis signal.
- ppg (a.u.): raw counts (the heart-rate extractor is scale- and polarity-free).

The classic BITalino board (before (r)evolution) had another EDA circuit and
is not told apart by the header: its EDA would be wrong. Files whose header
says ``"convertedValues": 1`` already hold these units and are not converted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sensorpipe.config import ConfigError
from sensorpipe.core.inputs import RawSignal, UnitInput
from sensorpipe.core.refs import UnitRef
from sensorpipe.schema.registry import SourceSchema
from sensorpipe.sources._toolkit import recording_start as _recording_start
from sensorpipe.sources._toolkit.opensignals_header import (FIRST_LINE, PLUX_DEVICES, SENSOR_KINDS, Channel, Device,
                                                          Header, read_header)
from sensorpipe.sources.base import SourceAdapter, SourceError

log = logging.getLogger(__name__)
KIND_UNITS = {"ecg": "mV", "eda": "uS", "resp": "%", "temp": "degC", "acc": "g", "ppg": "a.u."}
_NTC_A = (1.12764514e-3, 2.34282709e-4, 8.77303013e-8)


class OpenSignalsAdapter(SourceAdapter):
    """OpenSignals .txt recordings; raw waveforms go through sensor processing."""

    name = "opensignals"
    description = "OpenSignals text files from PLUX biosignalsplux / BITalino (ECG, EDA, respiration, ACC, TEMP, BVP)"
    time_convention = ("header date + time = acquisition start, local wall clock in the participant's zone; "
                       "sample = start + nSeq / sampling rate (BITalino: row order, 4-bit nSeq for gaps)")
    raw_kinds = ('ecg', 'resp', 'eda', 'temp', 'acc', 'ppg')
    drops = ("digital I/O columns (I1, I2, O1, O2, DI) and sensors with no minute feature (EMG, EEG, EOG, LUX, "
             "SpO2, RAW, ...: logged per file); ACC channels not in a group of three")

    @dataclass(frozen=True)
    class Options:
        glob: str = "**/*.txt"
        tz: str | None = None
        #: (Cmin, Cmax) ADC counts of the accelerometer at the channel's resolution (default: PLUX's)
        acc_calibration: tuple[float, ...] | None = None
        #: extra or overriding sensor name -> kind (ecg, eda, resp, acc, temp, ppg, or "ignore")
        sensors: dict[str, str] = field(default_factory=dict)
        #: header device name -> transfer-function family (bitalino | plux), for devices not known here
        device_families: dict[str, Literal["bitalino", "plux"]] = field(default_factory=dict)

        def validate(self, path: str) -> None:
            if self.acc_calibration is not None and (len(self.acc_calibration) != 2
                                                     or self.acc_calibration[0] >= self.acc_calibration[1]):
                raise ConfigError(f"{path}.acc_calibration: give [Cmin, Cmax] with Cmin < Cmax (ADC counts at -1 g "
                                  f"and +1 g)")
            for name, kind in self.sensors.items():
                if kind not in KIND_UNITS and kind != "ignore":
                    raise ConfigError(f"{path}.sensors.{name}: {kind!r} is not one of "
                                      f"{', '.join(KIND_UNITS)} or ignore")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(),
                            raw_signals=tuple(f"{s}:{k}[{KIND_UNITS[k]}]" for s, k in sorted(SENSOR_KINDS.items())))

    def list_units(self) -> list[UnitRef]:
        root, paths = self.files_matching(self.options.glob)
        table = self.participants()
        files: dict[str, list[Path]] = {}
        for p in paths:
            rel = p.relative_to(root)
            pid = rel.parts[0] if len(rel.parts) > 1 else p.stem
            files.setdefault(pid, []).append(p)
        if not files:
            raise SourceError(f"source {self.source.name!r}: no file matches {self.options.glob!r} under {root}")
        return [self.unit_ref(_recording_start.participant(pid, table, self.options.tz, str(fs[0]),
                                                           self.source.participants), fs)
                for pid, fs in sorted(files.items())]

    def read_unit(self, unit: UnitRef) -> UnitInput:
        recordings = [read_recording(Path(f), unit.participant.tz, self.options) for f in unit.files]
        return UnitInput(unit, [], _recording_start.without_overlaps(recordings))


def read_samples(path: Path, header: Header) -> np.ndarray:
    """The sample rows as float64 ``(n, n_columns)``; a bad row raises SourceError naming its line."""
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows=header.n_lines,
                                                                    autogenerate_column_names=True),
                               parse_options=pacsv.ParseOptions(delimiter="\t"))
    except pa.ArrowInvalid as e:
        if str(e).startswith("Empty CSV file"):
            raise SourceError(f"{path}: the header has no samples after it") from None
        raise _bad_line(path, header, str(e)) from None
    n = header.n_columns
    cols = table.columns
    if len(cols) == n + 1 and cols[-1].null_count == len(cols[-1]):
        cols = cols[:-1]  # the trailing tab OpenSignals writes
    if len(cols) != n:
        raise SourceError(f"{path}: rows have {len(cols)} columns but the header describes {n}; the header and the "
                          f"data do not belong together")
    try:
        return np.column_stack([c.cast(pa.float64()).to_numpy() for c in cols])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise _bad_line(path, header, str(e)) from None


def _bad_line(path: Path, header: Header, msg: str) -> SourceError:
    """Find the first malformed data line (error path only: a plain scan of the file)."""
    with path.open("rb") as fh:
        for no, raw in enumerate(fh, start=1):
            if no <= header.n_lines:
                continue
            cells = raw.decode("utf-8", errors="replace").rstrip("\r\n").split("\t")
            if cells and cells[-1] == "":
                cells = cells[:-1]
            if not cells or cells == [""]:
                continue
            if len(cells) != header.n_columns or not all(_is_number(c) for c in cells):
                return SourceError(f"{path}, line {no}: expected {header.n_columns} tab-separated numbers, got "
                                   f"{raw[:80]!r}; the file is damaged or was cut off mid-line (delete that line)")
    return SourceError(f"{path}: the samples cannot be read ({msg.splitlines()[0]})")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_opensignals(path: Path, tz: str, options: OpenSignalsAdapter.Options | None = None) -> list[RawSignal]:
    """Every usable signal of one file, converted and timed (see the module docstring)."""
    return read_recording(path, tz, options).signals


def read_recording(path: Path, tz: str,
                   options: OpenSignalsAdapter.Options | None = None) -> _recording_start.Recording:
    """One file as a :class:`~sensorpipe.sources._toolkit.recording_start.Recording` (its devices' MACs name the recorder)."""
    options = options or OpenSignalsAdapter.Options()
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty; an OpenSignals export starts with {FIRST_LINE!r}")
    header = read_header(path, options.sensors, options.device_families)
    data = read_samples(path, header)
    out = []
    shift = 0
    for dev in header.devices:
        if not dev.family and not dev.converted and any(c.kind for c in dev.channels):
            raise SourceError(f"{path}, line 2: device {dev.mac} is a {dev.device!r}, whose transfer functions are "
                              f"unknown; set options.device_families.{dev.device} to bitalino or plux (known: "
                              f"bitalino*, {', '.join(sorted(PLUX_DEVICES))})")
        start_ns = _recording_start.local_start_ns(dev.start, tz, str(path))
        shift = max(shift, _recording_start.repeat_shift_ns(dev.start, tz))
        offset, index = _sample_index(data[:, dev.nseq_column], dev, path, header.n_lines)
        first_ns = start_ns + int(round(offset * 1e9 / dev.rate_hz))
        accs = [c for c in dev.channels if c.kind == "acc"]
        unused = [f"{c.label} ({c.sensor})" for c in dev.channels if c.kind is None] + \
                 [f"{c.label} (ACC)" for c in accs[len(accs) - len(accs) % 3:]]
        if unused:
            log.info("%s: device %s: not used (no minute feature): %s", path, dev.mac, ", ".join(unused))
        for ch in dev.channels:
            if ch.kind is None or ch.kind == "acc":
                continue
            values = data[:, ch.column] if dev.converted else _convert(data[:, ch.column], ch, dev.family, options)
            out.append(RawSignal(ch.kind, first_ns, dev.rate_hz, _place(values, index), KIND_UNITS[ch.kind],
                                 str(path)))
        for i in range(0, len(accs) - len(accs) % 3, 3):
            xyz = np.column_stack([data[:, c.column] if dev.converted else _convert(data[:, c.column], c, dev.family,
                                                                                   options) for c in accs[i:i + 3]])
            out.append(RawSignal("acc", first_ns, dev.rate_hz, _place(xyz, index), "g", str(path)))
    return _recording_start.Recording("+".join(d.mac for d in header.devices), out, shift)


def _sample_index(nseq: np.ndarray, dev: Device, path: Path, n_header: int) -> tuple[int, np.ndarray | None]:
    """(nSeq of the first row for PLUX, else 0; each row's position in a gap-filled array, or None if no gaps)."""
    if not np.all(np.isfinite(nseq)) or not np.all(nseq == np.round(nseq)):
        raise SourceError(f"{path}: the nSeq column holds non-integers; the file is damaged")
    seq = nseq.astype(np.int64)
    if dev.family == "bitalino":
        step = np.diff(seq) % 16
        step[step == 0] = 16   # a full wrap: 16 samples later, the fewest lost consistent with the counter
        offset = 0
    else:
        step = np.diff(seq)
        offset = int(seq[0]) if seq.size else 0
        if (step <= 0).any():  # the counter wraps (at 2**15 in some OpenSignals versions)
            modulus = 1 << int(seq.max()).bit_length()
            step %= modulus
            back = np.flatnonzero(step == 0)
            if back.size or seq.min() < 0:
                i = int(back[0]) if back.size else int(np.argmin(seq)) - 1
                raise SourceError(f"{path}, line {n_header + i + 2}: nSeq goes from {seq[i]} to {seq[i + 1]}; a "
                                  f"PLUX sample counter only counts up (wrapping to 0), so rows were repeated, "
                                  f"reordered or edited")
    if seq.size < 2 or np.all(step == 1):
        return offset, None
    index = np.r_[0, np.cumsum(step)]
    if index[-1] > 16 * seq.size + 1_000_000:
        raise SourceError(f"{path}: nSeq jumps over {int(index[-1]) - seq.size} missing samples; the file is damaged")
    return offset, index


def _place(values: np.ndarray, index: np.ndarray | None) -> np.ndarray:
    """Values at their sample positions, NaN where samples were lost."""
    if index is None:
        return values
    out = np.full((int(index[-1]) + 1,) + values.shape[1:], np.nan)
    out[index] = values
    return out


def _convert(adc: np.ndarray, ch: Channel, family: str, options: OpenSignalsAdapter.Options) -> np.ndarray:
    """ADC counts -> physical unit (table in the module docstring)."""
    x = adc / 2.0 ** ch.resolution
    vcc = 3.3 if family == "bitalino" else 3.0
    if ch.kind == "ecg":
        return (x - 0.5) * vcc / (1100.0 if family == "bitalino" else 1019.0) * 1000.0
    if ch.kind == "eda":
        return x * vcc / (0.132 if family == "bitalino" else 0.12)
    if ch.kind == "resp":
        return (x - 0.5) * 100.0
    if ch.kind == "temp":
        if family == "bitalino" and ch.sensor != "NTC":
            return (x * vcc - 0.5) * 100.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ln_r = np.log(1e4 * x / (1.0 - x))
            return 1.0 / (_NTC_A[0] + _NTC_A[1] * ln_r + _NTC_A[2] * ln_r ** 3) - 273.15
    if ch.kind == "acc":
        if options.acc_calibration is not None:
            c_min, c_max = options.acc_calibration
        elif family == "bitalino":
            c_min, c_max = 400.0 / 2.0 ** (10 - ch.resolution), 608.0 / 2.0 ** (10 - ch.resolution)
        else:
            c_min, c_max = 28000.0 / 2.0 ** (16 - ch.resolution), 38000.0 / 2.0 ** (16 - ch.resolution)
        return 2.0 * (adc - c_min) / (c_max - c_min) - 1.0
    return adc.astype(np.float64)  # ppg: raw counts
