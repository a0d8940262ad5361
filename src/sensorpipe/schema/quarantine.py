"""Quarantined rows: how they are stored, and the one function that reads them back as text.

A quarantined row keeps its original ``time`` and ``value`` so a user can see
what the file held. Casting every quarantined number to text while the
pipeline runs cost a large share of a run when many rows failed (formatting
floats and time-zone-aware timestamps is slow), and the text is only ever
read by a person. So a row keeps its value in the form the
file had it:

- text (CSV cells, JSON strings, XML attributes): in ``time`` / ``value``, as written;
- an integer or a timestamp (a Parquet ``int64`` or ``timestamp[ms, tz=UTC]``
  column): in ``time_int`` / ``value_int`` (a timestamp's integer count of its unit);
- a float: in ``time_float`` / ``value_float``;

and ``time_type`` / ``value_type`` name the column's Arrow type for the typed
ones (null for text), so the reader turns them into exactly the text a cast of
the original column gives (``72``, ``72.5``, ``2024-03-01 00:00:00.000Z``).
Any other type (booleans, dates, decimals) is rare and stored as text.
Parquet has no union type; four columns each is the union-free form, and a
column that is null throughout a row group costs a few bytes.

:func:`read_quarantine` (a file) and :func:`quarantine_text` (a table) give
the user-facing table, :data:`QUARANTINE_TEXT_SCHEMA`: every field as text.

With ``privacy.quarantine_key_file`` a run's quarantine files are encrypted
(AES-GCM, the container of :mod:`sensorpipe.privacy.sealed`): the writer
seals the Parquet bytes as they stream out, and :func:`read_quarantine`
decrypts with the key, or says that it needs one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq

#: Columns of a quarantine file as stored (per unit under ``.work/`` and per source under ``quarantine/``).
QUARANTINE_SCHEMA = pa.schema([
    ("source", pa.string()), ("participant_id", pa.string()), ("field", pa.string()),
    ("time", pa.string()), ("time_int", pa.int64()), ("time_float", pa.float64()), ("time_type", pa.string()),
    ("value", pa.string()), ("value_int", pa.int64()), ("value_float", pa.float64()), ("value_type", pa.string()),
    ("unit", pa.string()), ("source_file", pa.string()), ("source_row", pa.int64()), ("reason", pa.string()),
])

#: What a user reads: the original time and value as text, whatever column type they came from.
QUARANTINE_TEXT_SCHEMA = pa.schema([
    ("source", pa.string()), ("participant_id", pa.string()), ("field", pa.string()), ("time", pa.string()),
    ("value", pa.string()), ("unit", pa.string()), ("source_file", pa.string()), ("source_row", pa.int64()),
    ("reason", pa.string()),
])

_TYPED = ("time", "value")   # the columns kept in their file's own type
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:, tz=(.+))?\]")


def keep_typed(col: pa.ChunkedArray, name: str) -> dict[str, pa.Array]:
    """``<name>``, ``<name>_int``, ``<name>_float`` and ``<name>_type`` of one native column (see the module
    docstring): only text, which is already text, and rare types are cast; numbers are kept as they are."""
    n = len(col)
    typ = col.type
    if pa.types.is_dictionary(typ):
        col, typ = pc.cast(col, typ.value_type), typ.value_type   # dictionary-encoded text or numbers
    text = int_ = float_ = None
    try:
        if pa.types.is_integer(typ) or pa.types.is_timestamp(typ):
            int_ = pc.cast(col, pa.int64())      # safe: a uint64 past int64's range falls back to text
        elif pa.types.is_floating(typ):
            float_ = pc.cast(col, pa.float64())  # exact for float16/32, which cast back unchanged
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        int_ = float_ = None
    if int_ is None and float_ is None:
        text = pc.cast(col, pa.string())
    null_string = pa.nulls(n, pa.string())
    return {
        name: null_string if text is None else text,
        f"{name}_int": pa.nulls(n, pa.int64()) if int_ is None else int_,
        f"{name}_float": pa.nulls(n, pa.float64()) if float_ is None else float_,
        f"{name}_type": null_string if text is not None else repeat_text(str(typ), n),
    }


def repeat_text(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times as plain text (a cast of a one-entry dictionary: no Python loop)."""
    return pc.cast(pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value])), pa.string())


def quarantine_text(stored: pa.Table) -> pa.Table:
    """The user-facing view of stored quarantine rows (:data:`QUARANTINE_TEXT_SCHEMA`): each typed time and
    value rendered as the text a cast of its original column gives. Costs one cast per distinct column type."""
    cols = {name: stored.column(name) for name in QUARANTINE_TEXT_SCHEMA.names if name not in _TYPED}
    for name in _TYPED:
        cols[name] = _render(stored, name)
    return pa.table(cols, schema=QUARANTINE_TEXT_SCHEMA)


def _render(stored: pa.Table, name: str) -> pa.ChunkedArray:
    text = stored.column(name).combine_chunks()
    kinds = stored.column(f"{name}_type")
    if kinds.null_count == len(kinds):
        return pa.chunked_array([text])
    for kind in pc.unique(kinds).drop_null().to_pylist():
        mask = pc.fill_null(pc.equal(kinds, kind), False).combine_chunks()
        typ = _arrow_type(kind)
        number = stored.column(f"{name}_float" if pa.types.is_floating(typ) else f"{name}_int").filter(mask)
        text = pc.replace_with_mask(text, mask, pc.cast(pc.cast(number, typ), pa.string()).combine_chunks())
    return pa.chunked_array([text])


def _arrow_type(name: str) -> pa.DataType:
    """The Arrow type whose ``str()`` is ``name`` (integers, floats, timestamps: what :func:`keep_typed` keeps)."""
    m = _TIMESTAMP.fullmatch(name)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    return pa.type_for_alias(name)


def read_quarantine(path: str | Path, key: bytes | None = None) -> pa.Table:
    """A quarantine file as the user-facing text table, :data:`QUARANTINE_TEXT_SCHEMA`: a run's
    ``<output>/quarantine/<source>.parquet``, ``convert``'s ``OUT.quarantine.parquet``, or one person's
    ``.work/units/*.quarantine.arrow`` (what a strict run that stopped leaves). An encrypted file needs
    ``key`` (the contents of ``privacy.quarantine_key_file``); without it, or with another key, one
    :class:`~sensorpipe.privacy.sealed.SealedFileError` says so."""
    from sensorpipe.privacy.sealed import SealedReader, is_sealed

    if is_sealed(path):
        with SealedReader(path, key) as f:
            return quarantine_text(_read_stored(f, str(path)))
    return quarantine_text(_read_stored(path, str(path)))


def read_stored_quarantine(path: str | Path, key: bytes | None = None,
                           columns: list[str] | None = None) -> pa.Table:
    """A quarantine Parquet file as stored (typed columns, not rendered as text), decrypted with ``key`` when
    it is sealed: what a tool that rewrites the file (wipeout) reads."""
    from sensorpipe.privacy.sealed import SealedReader, is_sealed

    if is_sealed(path):
        with SealedReader(path, key) as f:
            return pq.read_table(f, schema=QUARANTINE_SCHEMA, columns=columns)
    return pq.read_table(path, schema=QUARANTINE_SCHEMA, columns=columns)


def _read_stored(source, name: str) -> pa.Table:
    if name.endswith(".arrow"):
        return feather.read_table(source) if not isinstance(source, (str, Path)) else read_spill(source)
    return pq.read_table(source, schema=QUARANTINE_SCHEMA)


def write_spill(stored: pa.Table, path: str | Path, key: bytes | None = None) -> None:
    """One unit's quarantined rows under ``.work/`` as an Arrow IPC file (LZ4): a quarter of the cost of
    Parquet to write and nothing to decode when the driver appends it to the source's file. With ``key``
    (privacy.quarantine_key_file) it is encrypted like the quarantine files."""
    if key is None:
        feather.write_feather(stored, str(path), compression="lz4")
        return
    from sensorpipe.privacy.sealed import SealedWriter

    sink = SealedWriter(path, key)
    try:
        feather.write_feather(stored, sink, compression="lz4")
    except BaseException:
        sink.discard()
        raise
    sink.close()


def read_spill(path: str | Path, key: bytes | None = None) -> pa.Table:
    """A spill as stored; an encrypted one (written with ``key``) is decrypted, one unit's rows in memory."""
    if key is not None:
        from sensorpipe.privacy.sealed import SealedReader, is_sealed

        if is_sealed(path):
            with SealedReader(path, key) as f:
                return feather.read_table(f)
    return feather.read_table(str(path), memory_map=True)


class QuarantineWriter:
    """The quarantine Parquet file of a source (or of a ``convert``), written a piece at a time.

    Pieces (one person's rows each) are buffered until they reach ``ROW_GROUP_ROWS`` rows, then written
    as one row group, so a cohort of people with a few bad rows each does not make one tiny row group per
    person; memory holds at most the buffer and one piece. Integer columns (times, row numbers) are delta-encoded and only
    text is dictionary-encoded: the file is several times smaller and faster to write than with Parquet's
    defaults. The file appears under its name only once complete (``close`` renames it). With ``key`` the
    Parquet bytes are encrypted as they are written (:class:`~sensorpipe.privacy.sealed.SealedWriter`, one
    chunk in memory); without it nothing changes.
    """

    ROW_GROUP_ROWS = 1 << 17

    def __init__(self, path: str | Path, key: bytes | None = None):
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".partial")
        text = [f.name for f in QUARANTINE_SCHEMA if f.type == pa.string()]
        ints = [f.name for f in QUARANTINE_SCHEMA if f.type == pa.int64()]
        self._sink = None
        if key is not None:
            from sensorpipe.privacy.sealed import SealedWriter

            self._sink = SealedWriter(self._partial, key)
        self._writer = pq.ParquetWriter(self._partial if self._sink is None else self._sink, QUARANTINE_SCHEMA,
                                        use_dictionary=text, column_encoding={c: "DELTA_BINARY_PACKED" for c in ints})
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, stored: pa.Table) -> None:
        if not stored.num_rows:
            return
        self._pending.append(stored)
        self._pending_rows += stored.num_rows
        if self._pending_rows >= self.ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
        if self._sink is not None:
            self._sink.close()       # seals the final chunk
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        self._writer.close()
        if self._sink is not None:
            self._sink.discard()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> "QuarantineWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close() if exc_type is None else self.abort()


def show_quarantine(path: str | Path, key_file: str | Path | None = None, head: int = 10) -> str:
    """``sensorpipe quarantine FILE``: how many rows, by reason, and the first ``head`` rows as text; an
    encrypted file is decrypted with ``key_file`` (the run's ``privacy.quarantine_key_file``)."""
    from sensorpipe.privacy.sealed import is_sealed, read_key_file

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist; quarantine files are <output.dir>/quarantine/<source>.parquet")
    key = read_key_file(key_file, "--key-file") if key_file is not None else None
    table = read_quarantine(path, key)
    reasons = table.group_by("reason").aggregate([("reason", "count")]).sort_by([("reason_count", "descending"),
                                                                                  ("reason", "ascending")])
    lines = [f"{path}: {table.num_rows:,} quarantined rows" + (" (encrypted, AES-GCM)" if is_sealed(path) else "")]
    lines += [f"  {n:>10,}  {r}" for r, n in zip(reasons["reason"].to_pylist(), reasons["reason_count"].to_pylist())]
    if head > 0 and table.num_rows:
        lines += ["", f"first {min(head, table.num_rows)} rows:",
                  table.slice(0, head).to_pandas().to_string(index=False)]
    return "\n".join(lines)
