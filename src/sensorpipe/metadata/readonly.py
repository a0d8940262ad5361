"""Read-only access to the metadata database: for consumers who hold the PostgreSQL reader role.

A team database has two roles (:mod:`sensorpipe.metadata.roles` writes their grants): the pipeline's
writer and the consumers' reader, which may only ``SELECT``. :class:`~sensorpipe.metadata.store.MetadataStore`
opens a server database read-only when its role may not insert into ``runs`` (:func:`role_is_read_only`), so
``sensorpipe versions``, ``lineage``, ``stats``, ``quality``, ``diff`` and ``schema`` work under the reader
role: nothing is created, migrated or reconciled, and every session is a ``READ ONLY`` transaction. A write
attempted anyway (``sensorpipe run`` with the reader's URL) ends in one :class:`MetadataReadOnly` line instead
of a driver traceback, both from the store's own check and from the server's refusal (:func:`translate_denied`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

#: SQLSTATEs of a refused write: insufficient_privilege, read_only_sql_transaction
DENIED_SQLSTATES = ("42501", "25006")


class MetadataReadOnly(PermissionError):
    """A write to a metadata database that this role (or this store, opened read-only) may not change."""


def safe_url(url: Any) -> str:
    """The URL as messages show it: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def role_is_read_only(engine: Engine) -> bool:
    """True when this role may not insert into sensorpipe's ``runs`` table, or, before the table exists, may
    not create tables (read-only sessions, no ``CREATE`` on the schema): it could only read.

    Only PostgreSQL is asked (``has_table_privilege``, ``has_schema_privilege``); other backends count as
    writable.
    """
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        read_only = conn.execute(text(
            "SELECT CASE WHEN to_regclass('runs') IS NOT NULL "
            "THEN NOT has_table_privilege(to_regclass('runs'), 'INSERT') "
            "ELSE current_setting('transaction_read_only') = 'on' "
            "OR NOT has_schema_privilege(current_schema(), 'CREATE') END")).scalar()
    return read_only is True


def read_only_error(url: Any, user: str | None, refused: str) -> MetadataReadOnly:
    """The one line a refused write gives: what was refused, for whom, and which URL to use instead."""
    who = f"role {user!r}" if user else "this connection"
    return MetadataReadOnly(
        f"metadata database {safe_url(url)} refused {who}: {refused}; commands that write (run, rotate-key, "
        f"wipeout) need the writer role's URL in metadata.url, and `sensorpipe db roles` grants the writer and "
        f"reader roles")


def translate_denied(context: Any) -> MetadataReadOnly | None:
    """SQLAlchemy ``handle_error`` hook: the server's "permission denied" or "read-only transaction" becomes
    one :class:`MetadataReadOnly` naming the database, the role and the server's reason."""
    orig = context.original_exception
    if getattr(orig, "sqlstate", None) not in DENIED_SQLSTATES:
        return None
    url = context.engine.url if context.engine is not None else None
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return read_only_error(url, url.username if url is not None else None, reason)
