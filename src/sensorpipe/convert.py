"""``sensorpipe convert``: one adapter plus validation, written as the canonical observation table.

The table is the contract between adapters and the rest of the pipeline, and
useful on its own to turn a vendor export into a tidy file:

``participant_id, channel, t_utc (timestamp[ns, UTC]), value (float64, the
channel's unit), tz_offset_min (int16, the participant's offset in force),
source_file, source_row``

Raw waveforms appear as their minute features (``source_row`` is then the
index of the minute's first sample). Rows that fail validation go to
``<OUT>.quarantine.parquet`` next to it, with their reason (read it with
:func:`sensorpipe.read_quarantine`, which renders typed values as text); raw-waveform
minutes that fail (outside the plausible-time range, out of range) are counted
by ``<kind>_<reason>`` in the summary.

Paths given on the command line (inputs, ``--participants``, ``--options``)
are relative to the working directory, like any command's arguments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sensorpipe.config import ConfigError, SourceConfig, ValidationConfig, coerce
from sensorpipe.core.observations import Observations
from sensorpipe.core.timeparse import minute_offsets
from sensorpipe.processing import raw_features
from sensorpipe.schema.quarantine import QuarantineWriter
from sensorpipe.schema.validate import CHANNEL_NAMES, range_filter, validate_unit
from sensorpipe.sources.base import SourceError, get_adapter

OBSERVATION_SCHEMA = pa.schema([
    ("participant_id", pa.string()), ("channel", pa.string()), ("t_utc", pa.timestamp("ns", "UTC")),
    ("value", pa.float64()), ("tz_offset_min", pa.int16()), ("source_file", pa.string()), ("source_row", pa.int64()),
])


@dataclass
class ConvertResult:
    output: str
    quarantine: str
    rows_in: int = 0
    rows_accepted: int = 0
    raw_samples_in: int = 0
    per_channel: Counter = field(default_factory=Counter)
    per_reason: Counter = field(default_factory=Counter)
    raw_dropped: Counter = field(default_factory=Counter)   # raw-waveform minutes not emitted, by <kind>_<reason>

    def summary(self) -> str:
        lines = [f"wrote {self.output}: {sum(self.per_channel.values()):,} observations",
                 f"rows in {self.rows_in:,} = accepted {self.rows_accepted:,} + quarantined "
                 f"{sum(self.per_reason.values()):,}" + (f"; raw samples {self.raw_samples_in:,}" if self.raw_samples_in else "")]
        lines += [f"  {c:22} {n:>10,}" for c, n in sorted(self.per_channel.items())]
        if self.per_reason:
            lines.append(f"quarantine {self.quarantine}:")
            lines += [f"  {r:22} {n:>10,}" for r, n in sorted(self.per_reason.items())]
        if self.raw_dropped:
            lines.append("raw-waveform minutes not emitted:")
            lines += [f"  {r:22} {n:>10,}" for r, n in sorted(self.raw_dropped.items())]
        return "\n".join(lines)


def load_options(path: str | None) -> dict:
    """Adapter options from a YAML file (a mapping), or none."""
    if path is None:
        return {}
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"--options: {p} does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"--options: {p} must hold a mapping of the adapter's option keys")
    return data


def validation_options(plausible_from: str | None = None, plausible_until: str | None = None) -> ValidationConfig:
    """The validation section from ``--plausible-from`` / ``--plausible-until`` (ISO dates), checked like the
    pipeline config's ``validation.plausible_from`` / ``plausible_until``."""
    given = {k: coerce(dt.date, v, f"--{k.replace('_', '-')}")
             for k, v in (("plausible_from", plausible_from), ("plausible_until", plausible_until)) if v is not None}
    cfg = dataclasses.replace(ValidationConfig(), **given)
    cfg.validate("--plausible-from/--plausible-until")
    return cfg


def utc_offsets(t_utc_ns: np.ndarray, tz: str) -> np.ndarray:
    """Offset (minutes) in force at each instant, via the 15-minute block table of the span."""
    if not t_utc_ns.size:
        return np.zeros(0, np.int16)
    first = int(t_utc_ns.min()) // 60_000_000_000
    span = int(t_utc_ns.max()) // 60_000_000_000 - first + 1
    table = minute_offsets(first * 60_000_000_000, span, tz)
    return table[t_utc_ns // 60_000_000_000 - first]


def _source_config(adapter: str, path: Path, tz: str | None, participant: str | None,
                   options: dict, participants: str | None) -> SourceConfig:
    cls = get_adapter(adapter, "--source")
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    opts = dict(options)
    for flag, key, value in (("--tz", "tz", tz), ("--participant", "participant_id", participant)):
        if value is not None:
            if key not in fields:
                raise ConfigError(f"{flag}: adapter {adapter!r} has no {key!r} option (its options: {', '.join(sorted(fields))})")
            opts[key] = value
    return SourceConfig(name=adapter, adapter=adapter, path=str(path), participants=participants, options=opts)


def convert(adapter: str, paths: list[str], output: str, tz: str | None = None, participant: str | None = None,
            options: dict | None = None, participants: str | None = None,
            validation: ValidationConfig | None = None) -> ConvertResult:
    """Read ``paths`` with one adapter, validate, write the observation table and its quarantine.

    ``participants`` (like ``paths``) is relative to the working directory; ``validation`` gives the
    plausible-time range (default: the pipeline's, 2000-01-01 .. 2040-01-01).
    """
    validation = validation or ValidationConfig()
    if participants is not None:
        participants = str(Path(participants).expanduser().resolve())
    out = Path(output)
    q_path = out.with_name(out.stem + ".quarantine.parquet")
    result = ConvertResult(str(out), str(q_path))
    tables = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with QuarantineWriter(q_path) as quarantine:   # one unit's rows at a time; no half-written file on failure
        for p in paths:
            _convert_path(adapter, Path(p), tz, participant, options, participants, validation, result, tables,
                          quarantine)
    pq.write_table(pa.concat_tables(tables) if tables else OBSERVATION_SCHEMA.empty_table(), out)
    return result


def _convert_path(adapter: str, p: Path, tz: str | None, participant: str | None, options: dict | None,
                  participants: str | None, validation: ValidationConfig, result: ConvertResult, tables: list,
                  quarantine: QuarantineWriter) -> None:
    """One input path's units: counts into ``result``, observation tables into ``tables``, quarantined rows
    (stored form, :mod:`sensorpipe.schema.quarantine`) into ``quarantine``."""
    path = Path(p).resolve()
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    src = _source_config(adapter, path, tz, participant, options or {}, participants)
    ad = get_adapter(adapter)(src, str(path.parent))
    schema = ad.schema()
    for unit in ad.list_units():
        inp = ad.read_unit(unit)
        vr = validate_unit(inp, schema, validation)
        parts = [vr.observations]
        for sig in inp.raw_signals:
            kept, dropped = range_filter(raw_features.extract(sig).observations, validation)
            parts.append(kept)
            result.raw_dropped.update({f"{sig.kind}_{r}": n for r, n in dropped.items() if r != "clipped"})
        obs = Observations.concat(parts)
        result.rows_in += vr.rows_in
        result.rows_accepted += len(vr.observations)
        result.raw_samples_in += inp.n_raw_samples
        result.per_reason.update(vr.reason_counts)
        result.per_channel.update(_channel_counts(obs))
        tables.append(_observation_table(obs, unit.participant.participant_id, unit.participant.tz))
        quarantine.write(vr.stored_quarantine)


def _channel_counts(obs: Observations) -> dict[str, int]:
    codes, counts = np.unique(obs.channel, return_counts=True)
    return {CHANNEL_NAMES[c]: int(n) for c, n in zip(codes, counts)}


def _observation_table(obs: Observations, participant_id: str, tz: str) -> pa.Table:
    order = np.lexsort((obs.t_utc_ns, obs.channel))
    files = np.asarray(obs.files + [""], dtype=object)
    return pa.table({
        "participant_id": pa.array(np.full(len(obs), participant_id, dtype=object), pa.string()),
        "channel": pa.array(np.asarray(CHANNEL_NAMES, dtype=object)[obs.channel[order]], pa.string()),
        "t_utc": pa.array(obs.t_utc_ns[order], pa.timestamp("ns", "UTC")),
        "value": pa.array(obs.value[order], pa.float64()),
        "tz_offset_min": pa.array(utc_offsets(obs.t_utc_ns[order], tz), pa.int16()),
        "source_file": pa.array(files[obs.file_index[order]], pa.string()),
        "source_row": pa.array(obs.source_row[order], pa.int64()),
    }, schema=OBSERVATION_SCHEMA)
