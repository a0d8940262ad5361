"""Empatica E4 session folders: raw BVP (PPG), ACC, EDA and TEMP waveforms.

Each participant has a folder ``<root>/<participant_id>/`` as the E4 connect
export writes it: one CSV per signal, no header line; row 1 is the session
start in UTC Unix seconds, row 2 the sample rate in Hz (both repeated across
the three ACC columns), then one sample per row. ACC is in 1/64 g, EDA in
microsiemens, TEMP in degrees Celsius, BVP in arbitrary units.

The E4's own ``HR.csv`` (an on-device 10-s average) and ``IBI.csv`` are not
used: heart rate is derived from BVP peaks by sensor processing, so two heart
rate streams never double count. Their presence is recorded in lineage only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sensorpipe.core.inputs import RawSignal, UnitInput
from sensorpipe.core.refs import UnitRef
from sensorpipe.schema.registry import SourceSchema
from sensorpipe.sources.base import SourceAdapter, SourceError

#: file name -> (raw signal kind, native unit, expected number of columns)
SIGNAL_FILES = {
    "BVP.csv": ("ppg", "a.u.", 1),
    "ACC.csv": ("acc", "1/64 g", 3),
    "EDA.csv": ("eda", "uS", 1),
    "TEMP.csv": ("temp", "degC", 1),
}


class EmpaticaE4Adapter(SourceAdapter):
    """One E4 session folder per participant; raw waveforms go through sensor processing."""

    name = "empatica_e4"
    description = "Empatica E4 session folders (BVP 64 Hz, ACC 32 Hz in 1/64 g, EDA and TEMP 4 Hz)"
    time_convention = "UTC Unix seconds of the session start in row 1; samples evenly spaced at row 2's rate"
    raw_kinds = ('ppg', 'acc', 'eda', 'temp')
    drops = "HR.csv and IBI.csv (on-device derivations; heart rate comes from BVP so it is never counted twice)"

    @dataclass(frozen=True)
    class Options:
        segments: str | None = None  # CSV of labelled condition segments, relative to the source path

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(),
                            raw_signals=tuple(f"{k}:{v[0]}[{v[1]}]" for k, v in SIGNAL_FILES.items()))

    def list_units(self) -> list[UnitRef]:
        table = self.participants()
        units = []
        root = self.folder_root("one session folder per participant: <participant_id>/BVP.csv, ACC.csv, ...",
                                levels_up=2)
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            files = [folder / f for f in SIGNAL_FILES if (folder / f).exists()]
            if not files:
                continue
            pid = folder.name
            if pid not in table:
                raise SourceError(f"{folder}: participant {pid!r} is not in the participants table "
                                  f"{self.source.participants}; add a row with its IANA tz")
            units.append(self.unit_ref(table[pid], files))
        if not units:
            inside = any((root / f).exists() for f in SIGNAL_FILES)
            raise SourceError(f"source {self.source.name!r}: no E4 session folder (with BVP.csv, ACC.csv, ...) under "
                              f"{root}" + (f"; {root} is itself a session: give its parent folder {root.parent}, "
                                           f"where the folder name {root.name!r} is the participant id" if inside else ""))
        return units

    def read_unit(self, unit: UnitRef) -> UnitInput:
        signals = [read_e4_signal(Path(f)) for f in unit.files]
        return UnitInput(unit, [], signals)


def read_e4_signal(path: Path) -> RawSignal:
    """Read one E4 signal file; errors name the file and the row that is wrong."""
    kind, unit, n_cols = SIGNAL_FILES[path.name]
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty; an E4 {path.name} needs row 1 = start time (Unix s), "
                          f"row 2 = sample rate (Hz), then samples")
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                               convert_options=pacsv.ConvertOptions(
                                   column_types={f"f{i}": pa.float64() for i in range(n_cols)}))
    except pa.ArrowInvalid as e:
        raise SourceError(f"{path}: not an E4 {path.name} file ({str(e).splitlines()[0]}); expected "
                          f"{n_cols} numeric column(s): start time, sample rate, then samples") from None
    if table.num_columns != n_cols:
        raise SourceError(f"{path}: expected {n_cols} column(s), found {table.num_columns}")
    if table.num_rows < 2:
        raise SourceError(f"{path}: needs row 1 = start time (Unix s) and row 2 = sample rate (Hz); file has "
                          f"{table.num_rows} row(s)")
    data = np.column_stack([table.column(i).to_numpy(zero_copy_only=False) for i in range(n_cols)])
    start_s, rate_hz = float(data[0, 0]), float(data[1, 0])
    if not np.isfinite(start_s) or not 946684800 <= start_s <= 4102444800:
        raise SourceError(f"{path}, row 1: start time {data[0, 0]!r} is not a Unix time in seconds (2000-2100)")
    if not np.isfinite(rate_hz) or not 0 < rate_hz <= 10_000:
        raise SourceError(f"{path}, row 2: sample rate {data[1, 0]!r} Hz is not plausible")
    values = data[2:, 0] if n_cols == 1 else data[2:]
    return RawSignal(kind=kind, start_utc_ns=int(round(start_s * 1e9)), sample_rate_hz=rate_hz,
                     values=values, unit=unit, source_file=str(path))
