"""The error a damaged dataset version or metadata database raises, and its one-line messages.

Kept in a module of its own (no imports) so the storage, access and metadata
layers can raise it and the CLI can map it to one line and exit status 2.
"""

from __future__ import annotations

from pathlib import Path


class DatasetIntegrityError(Exception):
    """A file of a written dataset (shard, JSON sidecar) or its metadata database is missing, cut, corrupt,
    swapped or edited. The message names the file, says what is wrong and what to do."""


REWRITE_HINT = "run `sensorpipe verify` on the output folder for every problem, and re-run the config to rewrite it"


def corrupt_json(path: str | Path, err: Exception) -> DatasetIntegrityError:
    """A sidecar JSON file (dataset_info.json, features.json, sensorpipe.json, ...) that does not parse."""
    return DatasetIntegrityError(f"{path}: not valid JSON ({err}); the file is cut or edited; {REWRITE_HINT}")


def corrupt_database(url: str, err: Exception) -> DatasetIntegrityError:
    """A metadata database SQLite (or the server) reports as damaged (``sqlalchemy.exc.DatabaseError``)."""
    orig = getattr(err, "orig", None) or err
    reason = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    return DatasetIntegrityError(
        f"metadata database {url} cannot be read ({reason}); it is corrupt or not a sensorpipe database: restore "
        f"it from a backup, or move it away and re-run the config to record the version again")


def corrupt_shard(path: str | Path, err: Exception) -> DatasetIntegrityError:
    """A shard the record reader refuses (Riegeli "Corrupted ..." errors, cut TFRecord frames)."""
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DatasetIntegrityError(f"{path}: corrupt shard ({reason}); {REWRITE_HINT}")


def translate_corrupt_database(context) -> DatasetIntegrityError | None:
    """SQLAlchemy ``handle_error`` hook: a damaged SQLite file becomes one :class:`DatasetIntegrityError`.

    Only SQLite's plain ``DatabaseError`` ("file is not a database", "database
    disk image is malformed") is translated; its subclasses (locked database,
    constraint violations) keep their own errors.
    """
    import sqlite3

    orig = context.original_exception
    if type(orig) is not sqlite3.DatabaseError:
        return None
    url = context.engine.url if context.engine is not None else None
    where = (url.database if url is not None and url.database else
             url.render_as_string(hide_password=True) if url is not None else "(sqlite)")
    return corrupt_database(where, orig)
