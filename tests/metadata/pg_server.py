"""A throw-away PostgreSQL server for tests: ``initdb`` into a temporary folder, ``pg_ctl start`` on
127.0.0.1 at a free port, stopped and removed at the end.

PostgreSQL refuses to run as root, and tests run as root here and in CI, so when the uid is 0 the server
binaries run as the ``postgres`` user (``runuser -u postgres --``) in a folder that user owns. Debian's
``postgresql`` package provides both the binaries (under ``/usr/lib/postgresql/<major>/bin``) and the user;
``.ci/run`` installs it when missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: the superuser the cluster is initialised with (``initdb -U``)
ADMIN = "sp_admin"
DATABASE = "sensorpipe_meta"


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest ``/usr/lib/postgresql/*/bin``, else PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                    key=lambda p: tuple(int(x) for x in Path(p).parts[4].split(".") if x.isdigit()))
    if debian:
        return Path(debian[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields the admin URL (``postgresql+psycopg://sp_admin@127.0.0.1:PORT/sensorpipe_meta``, trust auth)."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None, "no PostgreSQL binaries; callers skip before this"
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="sensorpipe-pg-"))
    data, log = root / "data", root / "server.log"
    if as_root:     # the folder the server runs in must belong to the user it runs as
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            raise RuntimeError("PostgreSQL refuses to run as root and there is no 'postgres' user to run it as: "
                               "install Debian's postgresql package (it creates the user), as .ci/run does") from None
        os.chown(root, pw.pw_uid, pw.pw_gid)
    port = _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run(prefix + list(cmd), capture_output=True, text=True, timeout=120)
        if done.returncode:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr or done.stdout}\n{tail}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN, "--auth=trust", "-E", "UTF8", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "start", "-w", "-D", str(data), "-l", str(log), "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ADMIN, DATABASE)
        yield f"postgresql+psycopg://{ADMIN}@127.0.0.1:{port}/{DATABASE}"
    finally:
        try:
            run(str(bin_dir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data))
        finally:
            shutil.rmtree(root, ignore_errors=True)
