"""Paths that may be fsspec URLs: the one place that tells a URL from a local path and reaches object storage.

A local path (``data/x.csv``, ``/abs/x``) is never touched here: :func:`protocol`
is a string test, so local runs take exactly the code path they always took
(no fsspec import, no copy). ``file://`` URLs become plain local paths. Any
other protocol (``s3://``, ``gs://``, ``memory://``, ...) goes through fsspec:

- reads are local copies made by fsspec's own whole-file cache
  (``filecache``), one cache folder per remote path under
  ``$SENSORPIPE_CACHE_DIR`` (default ``~/.cache/sensorpipe``), so the
  adapters, which read local files (ArrayRecord and pyarrow need them), see a
  folder tree with the remote names;
- writes are uploads of a finished local folder (:func:`upload_tree`) with the
  files that make it visible put last: object stores make one object's PUT
  atomic, never a set of them.

Connection settings are fsspec's (``fsspec.config.conf``, ``FSSPEC_S3_*``
variables) and the backend's own (``AWS_*`` for s3fs, ``GOOGLE_*`` for gcsfs).
A protocol fsspec does not know, a backend not installed, or missing
credentials is a :class:`StorageError`: one line naming the URL and the fix.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

#: the environment variable naming the local folder for remote reads' caches and remote outputs' work folders
CACHE_ENV = "SENSORPIPE_CACHE_DIR"


class StorageError(OSError):
    """A URL that cannot be reached: unknown protocol, backend not installed, or no credentials."""


def protocol(p: Any) -> str:
    """The URL scheme of ``p`` (``s3``, ``file``, ``memory``), or ``""`` for a local path."""
    if not isinstance(p, str) or "://" not in p:
        return ""
    scheme = p.split("://", 1)[0]
    return scheme.lower() if scheme.replace("+", "").replace("-", "").replace(".", "").isalnum() else ""


def is_remote(p: Any) -> bool:
    """True for a URL fsspec must read (anything but a local path or ``file://``)."""
    return protocol(p) not in ("", "file")


def local_path(p: str) -> str:
    """``file:///a/b`` (or ``file://localhost/a/b``) as ``/a/b``; a local path unchanged."""
    if protocol(p) != "file":
        return p
    parts = urlsplit(p)
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"{p}: a file:// URL names a local path (file:///abs/path); "
                           f"host {parts.netloc!r} is not this machine")
    return unquote(parts.path)


def cache_root() -> Path:
    """``$SENSORPIPE_CACHE_DIR``, else ``~/.cache/sensorpipe``: remote reads' caches and remote outputs' work."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sensorpipe").expanduser()


def url_key(url: str) -> str:
    """A short stable folder name for ``url`` (its protocol, its last name and a digest of the whole)."""
    name = url.rstrip("/").rsplit("/", 1)[-1] or "root"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40]
    return f"{protocol(url) or 'local'}-{safe}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def filesystem(url: str):
    """``(fs, path)`` for ``url``; a protocol fsspec cannot serve is a one-line :class:`StorageError`."""
    import fsspec

    proto = protocol(url)
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:
        raise StorageError(f"{url}: the {proto}:// filesystem needs a package that is not installed ({e}); "
                           f"install it (s3:// needs s3fs, gs:// needs gcsfs)") from None
    except ValueError as e:
        if proto in fsspec.available_protocols():
            raise StorageError(f"{url}: {e}") from None
        raise StorageError(f"{url}: unknown storage protocol {proto + '://'!r}; use a local path, file://, "
                           f"memory://, s3:// (s3fs) or gs:// (gcsfs)") from None


def storage_error(url: str, e: BaseException) -> StorageError | None:
    """The one-line error for a failure reaching ``url`` that is about credentials; None for any other."""
    names = {type(c).__name__ for c in _chain(e)}
    text = " ".join(str(c) for c in _chain(e))
    if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                "DefaultCredentialsError"} or "credentials" in text.lower() or "InvalidAccessKeyId" in text \
            or "SignatureDoesNotMatch" in text or isinstance(e, PermissionError):
        said = " ".join(str(e).split())   # one line, whatever the backend's message holds
        return StorageError(f"{url}: access denied or no credentials ({type(e).__name__}: {said}); set the "
                            f"backend's credentials (s3://: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                            f"AWS_PROFILE; gs://: GOOGLE_APPLICATION_CREDENTIALS) and check access to the bucket")
    return None


def _chain(e: BaseException | None) -> Iterable[BaseException]:
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def reaching(url: str, fn, *args):
    """Run ``fn(*args)``, turning a credentials failure on ``url`` into a :class:`StorageError`."""
    try:
        return fn(*args)
    except StorageError:
        raise
    except Exception as e:   # noqa: BLE001 - translated when it is about credentials, re-raised otherwise
        err = storage_error(url, e)
        if err is not None:
            raise err from None
        raise


#: protocols whose first path component is a bucket (or container) that must exist before writing
BUCKET_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


def probe(url: str) -> None:
    """Reach ``url`` once before a run writes there: an unknown protocol, missing credentials or a missing
    bucket fail now, in one line, not after the run's work."""
    fs, root = filesystem(url)
    reaching(url, fs.exists, root)
    bucket = root.strip("/").split("/", 1)[0]
    if protocol(url) in BUCKET_PROTOCOLS and not reaching(url, fs.exists, bucket):
        raise StorageError(f"{url}: bucket {bucket!r} does not exist or these credentials cannot see it; create "
                           f"it or fix the URL")


def fetch(url: str, cache_dir: str | Path | None = None) -> Path:
    """A local copy of the remote file or folder ``url``, made and kept by fsspec's ``filecache``.

    The copy keeps the remote names and folders below ``url``'s parent
    (:class:`BelowRoot`), so adapters match their globs and suffixes on it;
    fsspec's own bookkeeping file (``cache``) stays outside the copy. A file
    already cached is not downloaded again unless the remote object's key
    (ETag, mtime) changed (``check_files``); a file gone from a remote folder
    is removed from the copy, so a run reads exactly what the folder holds.
    """
    import fsspec

    if protocol(url) == "file":
        return Path(local_path(url))
    fs, root = filesystem(url)
    root = root.rstrip("/")
    top = _cache_top(url, cache_dir)
    if not reaching(url, fs.exists, root):
        raise FileNotFoundError(f"{url} does not exist")
    mapper = _mapper(root)
    cached = fsspec.filesystem("filecache", fs=fs, cache_storage=str(top), cache_mapper=mapper, check_files=True,
                               skip_instance_cache=True)
    folder = reaching(url, fs.isdir, root)
    paths = sorted(reaching(url, fs.find, root)) if folder else [root]
    for path in paths:
        (top / mapper(path)).parent.mkdir(parents=True, exist_ok=True)
        with reaching(url, cached.open, path, "rb"):
            pass
    local = top / mapper(root)
    if folder:
        keep = {top / mapper(p) for p in paths}
        for f in [f for f in local.rglob("*") if f.is_file() and f not in keep]:
            f.unlink()
        local.mkdir(parents=True, exist_ok=True)
    return local


def fetched_path(url: str, cache_dir: str | Path | None = None) -> Path:
    """Where :func:`fetch` puts the copy of ``url`` under ``cache_dir``, without reaching the URL: a Beam
    launcher names the copy its workers will make (:mod:`sensorpipe.runners.beam_remote`)."""
    fs, root = filesystem(url)
    root = root.rstrip("/")
    return _cache_top(url, cache_dir) / _mapper(root)(root)


def _cache_top(url: str, cache_dir: str | Path | None) -> Path:
    return (Path(cache_dir) if cache_dir is not None else cache_root() / "inputs") / url_key(url)


def _mapper(root: str) -> "BelowRoot":
    return BelowRoot(root.rsplit("/", 1)[0] if "/" in root else "", "data")


class BelowRoot:
    """fsspec cache mapper: a cached file's name is its remote path below ``root`` (folders kept), under
    ``prefix``; ``filecache`` with it writes a local tree with the remote's names."""

    def __init__(self, root: str, prefix: str = "") -> None:
        self.root, self.prefix = root.rstrip("/"), prefix

    def __call__(self, path: str) -> str:
        rel = path[len(self.root):] if path.startswith(self.root) else path
        return "/".join(p for p in (self.prefix, rel.strip("/")) if p)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BelowRoot) and (self.root, self.prefix) == (other.root, other.prefix)

    def __hash__(self) -> int:
        return hash((BelowRoot, self.root, self.prefix))

    def __repr__(self) -> str:
        return f"BelowRoot({self.root!r}, {self.prefix!r})"


def upload_tree(local_dir: Path, url: str, last: tuple[str, ...] = ()) -> list[str]:
    """Put every file under ``local_dir`` at the same relative path under ``url``; the relative paths in
    ``last`` go after all others, in that order. Returns the relative paths uploaded."""
    fs, root = filesystem(url)
    root = root.rstrip("/")
    files = sorted(p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file())
    order = [f for f in files if f not in last] + [f for f in last if f in files]
    for rel in order:
        reaching(url, fs.put_file, str(local_dir / rel), f"{root}/{rel}")
    return order


def put_file(local: Path, url: str) -> None:
    """Upload one local file to ``url`` (one PUT: atomic on object storage)."""
    fs, path = filesystem(url)
    reaching(url, fs.put_file, str(local), path)
