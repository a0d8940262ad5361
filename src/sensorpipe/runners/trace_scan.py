"""``sensorpipe wipeout --verify``: prove that no trace of a person remains, by looking everywhere.

Every file under the output folder is read whole, ``.work/``, the staging
folders, the lock file, the SQLite database and its WAL included, and
searched for the pseudonym and the raw id. A byte search misses what is
stored compressed, so files are also searched decoded: Parquet and Arrow
files column by column, shards record by record. The metadata database is
also searched table by table through SQL (the only way into a PostgreSQL
database, and a check that the SQLite pages hold nothing a query returns).

The pseudonym is searched as a substring (16 hex characters do not occur
by chance in text); a raw id, often short (``p7``), only as a whole token:
no letter or digit either side, as :mod:`sensorpipe.privacy.redact` replaces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sensorpipe.storage.manifest import SHARD_RE


@dataclass
class TraceReport:
    """Where the searched strings were found (``place``, which: ``pseudonym`` or ``raw id``)."""

    hits: list[tuple[str, str]] = field(default_factory=list)
    files_scanned: int = 0
    tables_scanned: int = 0
    searched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.hits

    def text(self) -> str:
        lines = [f"searched {self.files_scanned} files and {self.tables_scanned} tables for the "
                 f"{' and the '.join(self.searched)}"]
        lines += [f"FOUND {what} in {place}" for place, what in self.hits]
        lines.append("no trace found" if self.ok else f"{len(self.hits)} trace(s) found")
        return "\n".join(lines)


#: Files are read in blocks of this size (a cache file can be larger than memory), each block overlapping the
#: last by the longest needle plus its two boundary bytes, so no match is cut in two.
BLOCK_BYTES = 16 * 1024 * 1024


class _Needles:
    def __init__(self, pseudonym: str | None, raw_ids: set[str]) -> None:
        self.plain = [(pseudonym.encode(), "pseudonym")] if pseudonym else []
        self.tokens = [(re.compile(rb"(?<![A-Za-z0-9])" + re.escape(r.encode()) + rb"(?![A-Za-z0-9])"), "raw id")
                       for r in sorted(raw_ids)]
        self.overlap = max([len(n) for n, _ in self.plain] + [len(r.encode()) for r in raw_ids] + [0]) + 2

    def found_in(self, data: bytes) -> set[str]:
        return ({what for n, what in self.plain if n in data}
                | {what for rx, what in self.tokens if rx.search(data)})

    def found_in_file(self, path: Path) -> set[str]:
        found: set[str] = set()
        tail = b""
        with open(path, "rb") as fh:
            while block := fh.read(BLOCK_BYTES):
                window = tail + block
                found |= self.found_in(window)
                tail = window[-self.overlap:]
        return found


def scan_traces(out_dir: str | Path, pseudonym: str | None, raw_ids: set[str] = frozenset(),
                db_url: str | None = None, quarantine_key: bytes | None = None) -> TraceReport:
    """Search every file under ``out_dir`` and every table of its metadata database (see the module). Sealed
    (encrypted) quarantine files and spills are searched decrypted with ``quarantine_key``; their ciphertext
    cannot hold a name in the clear, so without the key only their bytes are searched."""
    out = Path(out_dir)
    needles = _Needles(pseudonym, set(raw_ids))
    report = TraceReport(searched=(["pseudonym"] if pseudonym else []) + (["raw id"] if raw_ids else []))
    for f in sorted(p for p in out.rglob("*") if p.is_file() and not p.is_symlink()):
        report.files_scanned += 1
        place = f.relative_to(out).as_posix()
        found = needles.found_in_file(f) | _decoded_hits(f, needles, quarantine_key)
        report.hits += [(place, what) for what in sorted(found)]
    _scan_tables(out, db_url, needles, report)
    return report


def _decoded_hits(path: Path, needles: _Needles, quarantine_key: bytes | None = None) -> set[str]:
    """Hits in a file's decoded content (Parquet, Arrow IPC, shards); none for other files."""
    from sensorpipe.privacy.sealed import SealedFileError, SealedReader, is_sealed

    found: set[str] = set()
    try:
        if path.suffix in (".parquet", ".arrow") and is_sealed(path):
            if quarantine_key is not None:
                import pyarrow.feather as feather
                import pyarrow.parquet as pq

                with SealedReader(path, quarantine_key) as f:
                    table = pq.read_table(f) if path.suffix == ".parquet" else feather.read_table(f)
                found |= _table_hits(table, needles)
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            found |= _table_hits(pq.read_table(path), needles)
        elif path.suffix == ".arrow":
            found |= _table_hits(_read_ipc(path), needles)
        elif (m := SHARD_RE.match(path.name)) is not None:
            from sensorpipe.storage.rewrite import read_records

            for record in read_records(path, m["format"]):
                found |= needles.found_in(record)
    except (OSError, ValueError, RuntimeError, SealedFileError):     # unreadable as its kind (Arrow's errors are these): the
        pass                                          # byte search above still covered the file
    return found


def _read_ipc(path: Path):
    import pyarrow as pa

    try:
        with pa.ipc.open_file(path) as r:
            return r.read_all()
    except pa.ArrowInvalid:
        with pa.ipc.open_stream(path) as r:
            return r.read_all()


def _table_hits(table, needles: _Needles) -> set[str]:
    import pyarrow as pa

    found: set[str] = set()
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type):
            for value in col.cast(pa.large_string()).unique().to_pylist():
                if value is not None:
                    found |= needles.found_in(value.encode())
    return found


def _scan_tables(out: Path, db_url: str | None, needles: _Needles, report: TraceReport) -> None:
    from sqlalchemy import select

    from sensorpipe.metadata import tables as t
    from sensorpipe.metadata.store import MetadataStore

    if db_url is None:
        db = out / "metadata.db"
        if not db.is_file():
            return
        db_url = f"sqlite:///{db.resolve()}"
    store = MetadataStore(db_url)
    try:
        with store.engine.connect() as conn:
            for table in t.metadata.sorted_tables:
                report.tables_scanned += 1
                found: set[str] = set()
                for row in conn.execute(select(table)):
                    found |= needles.found_in("\0".join(map(str, row)).encode())
                report.hits += [(f"table {table.name}", what) for what in sorted(found)]
    finally:
        store.close()
