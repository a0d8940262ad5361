"""Read a multi-participant file once and route each participant's rows to a file of their own.

Fitabase merges, multi-subject CGM research files and warehouse dumps hold
many participants in one file. Reading that file whole for every participant
(and hashing it for every participant's cache key) made ingest grow with the
square of the cohort. The partition step reads each such file once, in
batches (Parquet row groups, CSV blocks), and appends every participant's
rows, with their original row numbers, to one Arrow IPC stream per
participant under ``<output>/.work/partitions/<source>/<file sha256>/``. A
participant's unit then reads only their own stream; the shared file is
hashed once per run, and a re-run with an unchanged file reuses the
partition (an ``index.json`` written last marks it complete). This is the
step a Beam runner does as a GroupByKey.

Memory is one batch plus one open writer per participant, whatever the file
size. Rows keep their order, values and dictionary encodings, so a unit reads
the same native rows as from the whole file.

A unit needs each row's number in the file (the quarantine names it). Exports
mostly list one participant after another, so a participant's rows are one
run of row numbers: their stream then holds only the number of its first row
(schema metadata :data:`FIRST_ROW`), not a column of numbers (a quarter of
the bytes written). Rows that come after a gap go to a second piece that
carries them in :data:`ROW_COLUMN`; readers take either kind of piece.

On a runner with worker processes (:func:`parallel`, set for planning by
:mod:`sensorpipe.runners.planning`) a file whose adapter can read it in
ranges (a Parquet file's row groups, a CSV file's lines) is partitioned range
by range on the workers while this process hashes it: each worker writes its range's
participants to pieces of their own, and a participant whose rows span
several ranges gets one piece per range, listed in range order, so that
reading the pieces one after another gives the rows, batches and row numbers
of the serial partition.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROW_COLUMN = "__source_row"
FIRST_ROW = b"sensorpipe.first_row"   # schema metadata of a piece whose rows are numbered on from this one
INDEX = "index.json"
SOURCE = "source.json"   # the path, size and modification time of the file it was made from
PIECES = "\n"            # joins the pieces of one participant's stream (one per range they have rows in)
OFFSET = "\t"            # after a piece's path: what to add to its row numbers (a range that did not know its start)

#: a file's rows in batches, each with the row number of its first row in the whole file
Batches = Callable[[], Iterator[tuple[pa.RecordBatch, int]]]
#: how to read a file in (at most) n ranges, in file order: per range a picklable :data:`Batches` and the row
#: number of its first row, or None where that is only known once the ranges before it are read (CSV byte
#: ranges: rows are counted from 0 within the range, and the partition records the offset)
Ranges = Callable[[int], list[tuple[Batches, int | None]]]

#: (submit, workers) while planning runs on a runner with worker processes (:func:`parallel`)
_workers: tuple[Callable, int] | None = None


def _forget_workers() -> None:
    global _workers
    _workers = None   # a worker forked during planning partitions nothing on the driver's pool


os.register_at_fork(after_in_child=_forget_workers)


@dataclass(frozen=True)
class Partition:
    """Where each participant's rows of one file are: ``participant id -> (stream path, rows)``."""

    fingerprint: str
    streams: dict[str, tuple[str, int]]   # a stream of several pieces joins their paths with PIECES


@contextmanager
def parallel(submit: Callable, workers: int) -> Iterator[None]:
    """Within this block :func:`partition_file` reads files that come with ranges on the workers:
    ``submit(fn, args)`` starts ``fn(*args)`` on one (a runner's ``submit``) and returns a future."""
    global _workers
    before, _workers = _workers, (submit, workers)
    try:
        yield
    finally:
        _workers = before


def file_fingerprint(path: str | Path) -> str:
    """A file's content fingerprint: the first 16 hex digits of its sha256 (every input's cache key)."""
    with open(path, "rb") as fh:   # one reused read buffer (not a new 4 MiB bytes object per block)
        return hashlib.file_digest(fh, "sha256").hexdigest()[:16]


def partition_file(path: Path, root: Path, participant_column: str, batches: Batches,
                   ranges: Ranges | None = None) -> Partition:
    """The file's partition under ``root``: reused when complete, else written from ``batches()``.

    ``batches`` yields ``(record batch, row number of its first row)`` in file
    order; the batch holds ``participant_column`` and the columns a unit reads.
    Participant ids are stripped; rows with none go to the id "" (validation
    quarantines them as ``no_participant``).

    The file is hashed once either way. A partition made from this very file
    (same path, size and modification time: ``source.json``) is checked by
    hashing first, as a re-run needs. Otherwise the hash runs in a thread while
    the file is partitioned (both release the GIL: on a second core the hash
    leaves the critical path) and the result is filed under the hash; a
    partition of the same content made before (the file was only touched)
    wins over the fresh one, which is dropped.

    ``ranges``, inside :func:`parallel`: the file is partitioned range by
    range on the workers (when it has more than one range) while this process
    hashes it.
    """
    root.mkdir(parents=True, exist_ok=True)
    source = _source_key(path)
    fp = None
    made_from_it = _partitions_of(root, source)
    if made_from_it:
        fp = file_fingerprint(path)
        for done in made_from_it:
            if done.name == fp:
                return _load(done, fp)
    plan = ranges(_workers[1]) if ranges is not None and _workers is not None else []
    if len(plan) > 1:
        tmp, index, hashed = _write_ranges(root, participant_column, plan, path if fp is None else None)
        fp = fp or hashed
    if len(plan) <= 1 or index is None:   # no ranges, or ranges whose inferred column types differ
        hashing = _Hashing(path) if fp is None else None   # None: hashed above or with the ranges
        try:
            tmp, index = _write(root, participant_column, batches)
        except BaseException:
            if hashing is not None:
                hashing.join()
            raise
        if hashing is not None:
            fp = hashing.result()
    done = root / fp
    if (done / INDEX).exists():   # the same content, partitioned before the file was touched (or from a copy)
        shutil.rmtree(tmp, ignore_errors=True)
        _add_source(done, source)   # the next run knows it by this file as it is now
        return _load(done, fp)
    (tmp / SOURCE).write_text(json.dumps([source]))
    (tmp / INDEX).write_text(json.dumps(index))     # written last: marks it complete
    if done.exists():     # an incomplete partition left by a killed run
        shutil.rmtree(done)
    os.replace(tmp, done)
    return _load(done, fp)


def _fresh_folder(root: Path) -> Path:
    tmp = root / f".{os.getpid()}.{threading.get_ident()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _write(root: Path, participant_column: str, batches: Batches) -> tuple[Path, dict]:
    """Every participant's rows to a stream of their own in a fresh folder under ``root``: the folder and the
    index (participant id -> [stream file, rows]) to write there once the partition is filed; nothing is
    left on an error."""
    tmp = _fresh_folder(root)
    try:
        index, _, _ = _write_pieces(tmp, "p", participant_column, lambda: _read_ahead(batches))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, index


def _write_pieces(folder: Path, prefix: str, participant_column: str, batches: Batches
                  ) -> tuple[dict, int, pa.Schema | None]:
    """``batches()`` routed to one stream per participant in ``folder`` (files ``<prefix>NNNNN.arrows``):
    participant id -> [stream file(s), rows], the rows read and their schema (None: none). Runs on a worker for
    one range of a file.

    A participant's stream is numbered by its first row (:data:`FIRST_ROW`) while their rows follow each other;
    rows after a gap start a second stream, which carries every row number (:data:`ROW_COLUMN`), so a
    participant has one or two files, in file order, and one open writer."""
    writers: dict[str, pa.ipc.RecordBatchStreamWriter] = {}
    names: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    next_row: dict[str, int | None] = {}   # the row number that continues the participant's run; None: numbered
    total, schema, files = 0, None, 0
    try:
        for batch, first_row in batches():
            total, schema = total + batch.num_rows, schema or batch.schema
            for pid, part, numbers in _split_by_participant(batch, participant_column, first_row):
                run = isinstance(numbers, int)
                if pid in writers and next_row[pid] is not None and not (run and numbers == next_row[pid]):
                    writers.pop(pid).close()   # a gap: the rest of their rows go to a piece with their numbers
                if pid not in writers:
                    name = f"{prefix}{files:05d}.arrows"
                    files += 1
                    numbered = not run or pid in names
                    piece_schema = (part.schema.append(pa.field(ROW_COLUMN, pa.int64())) if numbered else
                                    part.schema.with_metadata({**(part.schema.metadata or {}),
                                                               FIRST_ROW: str(numbers).encode()}))
                    writers[pid] = pa.ipc.new_stream(str(folder / name), piece_schema)
                    next_row[pid] = None if numbered else numbers
                    names.setdefault(pid, []).append(name)
                    rows.setdefault(pid, 0)
                if next_row[pid] is None:
                    part = part.append_column(ROW_COLUMN, pa.array(
                        np.arange(numbers, numbers + part.num_rows, dtype=np.int64) if run else numbers))
                else:
                    next_row[pid] += part.num_rows
                writers[pid].write_batch(part)
                rows[pid] += part.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    return {pid: [names[pid][0] if len(names[pid]) == 1 else names[pid], rows[pid]] for pid in sorted(names)}, \
        total, schema


def _read_ahead(batches: Batches) -> Iterator[tuple[pa.RecordBatch, int]]:
    """``batches()`` with the next batch read in a thread while the caller routes this one.

    Decoding a batch (Parquet, CSV) and writing the previous one's pieces both
    run in Arrow's C++ without the GIL, so on a second core the read leaves the
    serial partition's critical path. One batch waits at most: memory grows by
    one batch. An error of the read is raised here; when the caller stops early
    the thread stops after the batch it is reading.
    """
    slot: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in batches():
                slot.put(item)
                if stop.is_set():
                    return
            slot.put(_END)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            slot.put(_Failed(e))

    thread = threading.Thread(target=read, name="sensorpipe-partition-read", daemon=True)
    thread.start()
    try:
        while (item := slot.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        while thread.is_alive():   # take what it put, so a put waiting for the slot returns and it sees stop
            try:
                slot.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


_END = object()   # :func:`_read_ahead`: the batches are all read


@dataclass(frozen=True)
class _Failed:
    error: BaseException   # :func:`_read_ahead`: what reading raised


def _write_range(folder: Path, prefix: str, participant_column: str, batches: Batches
                 ) -> tuple[dict, int, pa.Schema | None]:
    """:func:`_write_pieces` of one range of a file, on a worker, reading ahead (:func:`_read_ahead`)."""
    return _write_pieces(folder, prefix, participant_column, functools.partial(_read_ahead, batches))


def _write_ranges(root: Path, participant_column: str, plan: list[tuple[Batches, int | None]], path: Path | None
                  ) -> tuple[Path, dict | None, str | None]:
    """:func:`_write` with each range of ``plan`` on a worker (pieces ``r<range>p<n>.arrows``), hashing
    ``path`` (unless None) here meanwhile: the folder, the index (participant id -> [piece files in range
    order, rows]) and the hash. The index is merged in range order whichever worker finished first; it is
    None (and the folder removed) when the ranges read their columns as different types (a CSV column whose
    type each range inferred from its own first rows): the serial partition, which infers once, decides."""
    submit, _ = _workers
    tmp = _fresh_folder(root)
    futures = []
    try:
        for k, (batches, _) in enumerate(plan):
            futures.append(submit(_write_range, (tmp, f"r{k:03d}p", participant_column, batches)))
        fp = file_fingerprint(path) if path is not None else None   # the workers read the ranges meanwhile
        pieces = [f.result() for f in futures]
    except BaseException:
        for f in futures:   # no worker may still write into the folder removed below
            try:
                f.result()
            except BaseException:  # noqa: BLE001 - the first error is the one raised
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    schemas = {schema for _, _, schema in pieces if schema is not None}
    if len(schemas) > 1:
        shutil.rmtree(tmp, ignore_errors=True)
        return tmp, None, fp
    index: dict[str, list] = {}
    start = 0   # the row number the next range starts at, where it did not know it
    for (part, total, _), (_, first_row) in zip(pieces, plan):   # range order: each participant's pieces in file order
        offset = 0 if first_row is not None else start   # None: the range counted its rows from 0
        start = (first_row if first_row is not None else start) + total
        for pid, (name, n) in part.items():
            names, rows = index.get(pid, ([], 0))
            index[pid] = [[*names, *(f"{piece}{OFFSET}{offset}" if offset else piece
                                     for piece in ([name] if isinstance(name, str) else name))], rows + n]
    return tmp, {pid: [names[0] if len(names) == 1 else names, n] for pid, (names, n) in sorted(index.items())}, fp


def _load(done: Path, fp: str) -> Partition:
    index = json.loads((done / INDEX).read_text())
    return Partition(fp, {pid: (PIECES.join(str(done / p) for p in ([name] if isinstance(name, str) else name)),
                                int(n)) for pid, (name, n) in index.items()})


def _source_key(path: Path) -> dict:
    """What says a partition was made from this file as it is now: its path, size and modification time."""
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _partitions_of(root: Path, source: dict) -> list[Path]:
    """Complete partitions under ``root`` made from ``source`` (:func:`_source_key`) as it is now."""
    return [meta.parent for meta in root.glob(f"*/{SOURCE}")
            if source in _sources(meta.parent) and (meta.parent / INDEX).exists()]


def _sources(done: Path) -> list[dict]:
    """The files (:func:`_source_key`) a partition is known to hold (none when its record is unreadable)."""
    try:
        return list(json.loads((done / SOURCE).read_text()))
    except (OSError, ValueError, TypeError):
        return []


def _add_source(done: Path, source: dict) -> None:
    """Record that ``source`` holds this partition's content, replacing an older state of the same path."""
    known = [s for s in _sources(done) if isinstance(s, dict) and s.get("path") != source["path"]]
    tmp = done / f"{SOURCE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps([*known, source]))
    os.replace(tmp, done / SOURCE)


class _Hashing:
    """:func:`file_fingerprint` of a file in a background thread; :meth:`result` waits and re-raises its error."""

    def __init__(self, path: Path) -> None:
        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="sensorpipe-partition-hash", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            self._value = file_fingerprint(path)
        except BaseException as e:  # noqa: BLE001 - re-raised by result() in the caller's thread
            self._error = e

    def join(self) -> None:
        self._thread.join()

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def read_stream(stream: str) -> tuple[pa.Table, np.ndarray]:
    """One participant's rows of a partitioned file and their row numbers in the original file."""
    tables, rows = [], []
    for piece in stream.split(PIECES):   # a piece per range the participant has rows in (two after a gap)
        path, _, offset = piece.partition(OFFSET)
        with pa.ipc.open_stream(pa.memory_map(path)) as reader:
            table, piece_rows = _numbered(reader.read_all(), 0)
        tables.append(table)
        rows.append(piece_rows + int(offset) if offset else piece_rows)
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return table, rows[0] if len(rows) == 1 else np.concatenate(rows)


def iter_stream(stream: str) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """:func:`read_stream` a record batch at a time (a long participant's rows without holding them all)."""
    for piece in stream.split(PIECES):
        path, _, offset = piece.partition(OFFSET)
        with pa.ipc.open_stream(pa.memory_map(path)) as reader:
            done = 0   # rows of the piece before this batch
            for batch in reader:
                table, rows = _numbered(pa.Table.from_batches([batch]), done)
                done += batch.num_rows
                yield table, rows + int(offset) if offset else rows


def _numbered(table: pa.Table, before: int) -> tuple[pa.Table, np.ndarray]:
    """A piece's rows as the file had them and their row numbers: its :data:`ROW_COLUMN`, or counted on from
    its :data:`FIRST_ROW` (``before``: rows of the piece ahead of ``table``)."""
    if ROW_COLUMN in table.column_names:
        return table.drop_columns([ROW_COLUMN]), table.column(ROW_COLUMN).to_numpy()
    meta = dict(table.schema.metadata)
    first = int(meta.pop(FIRST_ROW)) + before
    return table.replace_schema_metadata(meta or None), np.arange(first, first + table.num_rows, dtype=np.int64)


def stream_bytes(stream: str) -> int:
    """The size on disk of one participant's stream (all its pieces)."""
    return sum(os.path.getsize(p.partition(OFFSET)[0]) for p in stream.split(PIECES))


def _split_by_participant(batch: pa.RecordBatch, column: str, first_row: int
                          ) -> Iterator[tuple[str, pa.RecordBatch, int | np.ndarray]]:
    """The batch's rows per participant (in row order within each), less ``column``, with their row numbers:
    the first one's (an int) where they follow each other, else each one's (an int64 array).

    Exports usually list one participant after another: then each
    participant's rows are one zero-copy slice, found from where the
    column's dictionary codes change (one compare over the batch; ids are
    mapped to people per run, not per row). Otherwise one stable sort
    (radix, on 16-bit group numbers) groups them.
    """
    codes, ids = _codes(batch.column(column))
    names = [(i or "").strip() for i in ids] + [""]              # the last code stands for null: no participant
    people = sorted(set(names))                                 # ids that strip to the same text are one person
    number = {name: k for k, name in enumerate(people)}
    group = np.array([number[n] for n in names], np.uint16 if len(people) < 1 << 16 else np.int64)
    if not codes.size:
        return
    body = batch.drop_columns([column])
    starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1         # where the code changes
    run_group = group[codes[np.r_[0, starts]]]
    # ids that strip to one person may alternate: neighbouring runs of the same person are one run
    same = np.flatnonzero(run_group[1:] == run_group[:-1]) + 1
    if same.size:
        starts, run_group = np.delete(starts, same - 1), np.delete(run_group, same)
    order = None
    if np.unique(run_group).size != run_group.size:             # a participant in several runs: group them
        g = group[codes]
        order = np.argsort(g, kind="stable")
        g, body = g[order], body.take(pa.array(order))
        starts = np.flatnonzero(g[1:] != g[:-1]) + 1
        run_group = g[np.r_[0, starts]]
    ends = np.r_[starts, codes.size]
    for k, a, b in zip(run_group.tolist(), np.r_[0, starts].tolist(), ends.tolist()):
        if order is None:
            numbers = first_row + a
        elif order[b - 1] - order[a] == b - 1 - a:   # a stable sort keeps rows in order: no gap between them
            numbers = first_row + int(order[a])
        else:
            numbers = first_row + order[a:b].astype(np.int64)
        yield people[k], body.slice(a, b - a), numbers


def _codes(col: pa.Array) -> tuple[np.ndarray, list]:
    """Dictionary codes of ``col`` (``len(ids)`` for null) and its distinct values: a dictionary column's
    indices as they are (no copy when none is null), any other column dictionary-encoded first."""
    enc = col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(pc.cast(col, pa.string()))
    ids = [None if v is None else str(v) for v in enc.dictionary.to_pylist()]
    indices = enc.indices
    if indices.null_count:
        indices = pc.fill_null(indices.cast(pa.int64()), len(ids))
    return indices.to_numpy(zero_copy_only=False), ids


__all__ = ["Partition", "partition_file", "parallel", "read_stream", "iter_stream", "stream_bytes",
           "file_fingerprint", "ROW_COLUMN"]
