"""The recording device of a native table: model, epoch length and serial, kept in the table's schema metadata.

Some channels mean something only per device: an Actiwatch activity count is
no ActiGraph count, and a 15-s epoch sums to other minute counts than a 60-s
one. An adapter that knows the device of a file says so on each native table
it reads from that file (:func:`with_device`); the runner lists them per unit
and source (:func:`devices_of`), and the metadata DB keeps them beside the
unit's lineage. Schema metadata rather than columns: the device is one per
file, and a column would travel through validation and quarantine with every
row.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

#: Arrow schema-metadata keys of a native table: the recording device, its epoch and its serial number
MODEL_KEY, EPOCH_KEY, SERIAL_KEY = b"sensorpipe.device_model", b"sensorpipe.epoch_s", b"sensorpipe.device_serial"


@dataclass(frozen=True)
class Device:
    """The recorder of one file: model as the file names it, epoch length in seconds, serial ("" if not given).

    The serial is kept as the file writes it here; shared outputs hold it only
    as a keyed digest (``privacy.pseudonym.device_token``): a lab's device log
    ties a serial to the person who wore it.
    """

    model: str
    epoch_s: float
    serial: str = ""


def with_device(table: pa.Table, device: Device) -> pa.Table:
    """``table`` with ``device`` in its schema metadata (other metadata kept)."""
    meta = dict(table.schema.metadata or {})
    meta[MODEL_KEY] = device.model.encode()
    meta[EPOCH_KEY] = f"{device.epoch_s:g}".encode()
    if device.serial:
        meta[SERIAL_KEY] = device.serial.encode()
    return table.replace_schema_metadata(meta)


def device_of(table: pa.Table) -> Device | None:
    """The device a native table's schema metadata names; None when it names none."""
    meta = table.schema.metadata or {}
    if MODEL_KEY not in meta:
        return None
    return Device(meta[MODEL_KEY].decode(), float(meta[EPOCH_KEY].decode()), meta.get(SERIAL_KEY, b"").decode())


def devices_of(native: list[pa.Table]) -> list[tuple[str, Device]]:
    """(source file, device) of each native table that names its device and holds rows, in order, each once."""
    out: list[tuple[str, Device]] = []
    for part in native:
        d = device_of(part)
        if d is None or not part.num_rows or "source_file" not in part.column_names:
            continue
        pair = (str(part.column("source_file")[0].as_py()), d)
        if pair not in out:
            out.append(pair)
    return out
