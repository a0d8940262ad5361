"""PostgreSQL roles for a team's metadata database: a writer for the pipeline, a read-only reader for consumers.

``sensorpipe db roles --url ADMIN_URL --writer W --reader R`` prints the SQL (``--apply`` runs it as the
admin, in one transaction). It is idempotent and can run before or after the first pipeline run:

- both roles are created when missing (``LOGIN``, no password: set one with ``ALTER ROLE ... PASSWORD`` or
  use your ``pg_hba.conf`` method); both may connect to the database and use the schema;
- the writer may create tables in the schema (the first run creates sensorpipe's tables and owns them, so
  it can also migrate them) and read and write the tables and sequences that exist already;
- the reader may ``SELECT`` the tables that exist, and, through ``ALTER DEFAULT PRIVILEGES FOR ROLE
  <writer>``, every table the writer creates later (a new sensorpipe adds one); its sessions default to
  ``READ ONLY`` transactions, and it holds no ``INSERT``, ``UPDATE``, ``DELETE`` or ``CREATE`` grant.

The grants cover every table of the schema, so give sensorpipe a database (or ``--schema``) of its own. A
store opened with the reader's URL is read-only (:mod:`sensorpipe.metadata.readonly`).
"""

from __future__ import annotations

import re

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sensorpipe.core.errors import ConfigError
from sensorpipe.metadata.readonly import safe_url

#: what a role or schema name may be here: a plain PostgreSQL identifier (quoted in the SQL all the same)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _ident(value: str, what: str) -> str:
    if not _IDENT.fullmatch(value):
        raise ConfigError(f"{what} {value!r} is not a plain PostgreSQL name; use 1 to 63 letters, digits or '_', "
                         f"starting with a letter or '_'")
    return f'"{value}"'


def _create_role(name: str) -> str:
    return (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') "
            f"THEN CREATE ROLE \"{name}\" LOGIN; END IF; END $$;")


def roles_sql(admin_url: str, writer: str, reader: str, schema: str = "public") -> list[str]:
    """The statements that set up the writer and reader roles on ``admin_url``'s database (see the module)."""
    url = make_url(admin_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"--url {safe_url(url)}: roles are a PostgreSQL feature; give a postgresql+psycopg:// URL "
                         f"(a SQLite file is protected by its file permissions, 0640 by default)")
    if not url.database:
        raise ConfigError(f"--url {safe_url(url)} names no database; add /DBNAME, the database metadata.url uses")
    w, r, s, db = (_ident(writer, "--writer"), _ident(reader, "--reader"), _ident(schema, "--schema"),
                   _ident(url.database, "database"))
    if writer == reader:
        raise ConfigError("--writer and --reader must be different roles: the reader must not write")
    return [
        _create_role(writer),
        _create_role(reader),
        f"GRANT CONNECT ON DATABASE {db} TO {w}, {r};",
        f"GRANT USAGE, CREATE ON SCHEMA {s} TO {w};",
        f"GRANT USAGE ON SCHEMA {s} TO {r};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {w};",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {w};",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r};",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {w} IN SCHEMA {s} GRANT SELECT ON TABLES TO {r};",
        f"ALTER ROLE {r} SET default_transaction_read_only = on;",
    ]


def setup_roles(admin_url: str, writer: str, reader: str, schema: str = "public", apply: bool = False) -> str:
    """The SQL of :func:`roles_sql` as text; with ``apply``, also run it as the admin (one transaction)."""
    statements = roles_sql(admin_url, writer, reader, schema)
    body = "\n".join(statements)
    if not apply:
        return body
    engine = create_engine(admin_url)
    try:
        with engine.begin() as conn:
            for stmt in statements:
                conn.execute(text(stmt))
    finally:
        engine.dispose()
    return f"{body}\n-- applied to {safe_url(admin_url)}: writer {writer!r}, reader {reader!r}"
