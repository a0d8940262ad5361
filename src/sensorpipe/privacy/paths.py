"""Source file paths as the shared outputs hold them: keyed digests, never the path itself.

A file name often is the person (``minute/fc001.parquet``, ``sl001/ACC.csv``, a
vendor export named after the patient), so a path next to a pseudonym undoes
it. The metadata DB (lineage, quarantine counts, input fingerprints, unit
errors), the quarantine Parquet and the report therefore name a file by a token
``<source>:<16 hex>``: HMAC-SHA256 under the pseudonymization key of the file's
path relative to its source's root (the deepest root that holds it); a file
under no source root is ``file:<16 hex>`` of its absolute path.

Why a digest of the whole path and not the relative path with its participant
part pseudonymized: where the id sits in a path is not known in general (a
folder, a file name, a patient's name in a vendor's export name, nowhere in a
shared file), so only a digest is safe for every layout. Keyed, it cannot be
brute-forced from guessed ids; relative to the source root, it stays the same
when the data folder moves. With the key it resolves back:
:meth:`SourcePaths.resolve` hashes every file under the sources' roots (what
``sensorpipe lineage --key-file`` does). Without a key
(``privacy.pseudonymize: false``) participant ids are raw in the output anyway,
and paths are kept as they are.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_LABEL = b"sensorpipe/source-file/v1\0"
#: A path in free text (an error message) ends at white space, a quote, a colon (``file.csv:12``) or a bracket.
_PATH_END = r"[^\s'\":,()\[\]]*"


class SourcePaths:
    """Turns the source file paths of one run into the tokens the shared outputs hold (see the module docstring)."""

    def __init__(self, key: bytes | None, roots: Iterable[tuple[str, str]]):
        self.key = key
        # deepest root first: a file under two roots belongs to the more specific source
        self.roots = sorted(((name, os.path.abspath(root)) for name, root in roots),
                            key=lambda nr: (-len(nr[1]), nr[0]))
        alternatives = "|".join(re.escape(r) for _, r in self.roots)
        self._in_text = re.compile(f"(?:{alternatives}){_PATH_END}") if self.roots else None

    @classmethod
    def of(cls, cfg, key: bytes | None) -> "SourcePaths":
        """The run's sources' roots (``sources[].path``, resolved against the config's folder)."""
        return cls(key, [(s.name, cfg.resolve(s.path)) for s in cfg.sources])

    @functools.lru_cache(maxsize=None)
    def token(self, path: str) -> str:
        """The token of one file (the path itself when there is no key)."""
        path = str(path)
        if self.key is None:
            return path
        absolute = os.path.abspath(path)
        for name, root in self.roots:
            if absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep):
                rel = os.path.relpath(absolute, root) if absolute != root else os.path.basename(root)
                return f"{name}:{self._digest(name, Path(rel).as_posix())}"
        return f"file:{self._digest('', absolute)}"

    def _digest(self, source: str, rel: str) -> str:
        return hmac.new(self.key, _LABEL + f"{source}\0{rel}".encode(), hashlib.sha256).hexdigest()[:16]

    def column(self, files: pa.Array | pa.ChunkedArray,
               rows_by_file: dict[str, int] | None = None) -> pa.Array | pa.ChunkedArray:
        """A text column of paths as tokens: one digest per distinct path, then a vectorized lookup.
        ``rows_by_file``: how many rows of the column each path is expected to fill (a unit's quarantine
        counts say), which spares the pass that finds the paths, and when one path fills every row, the
        lookup too; a path missing from it is found by that pass after all."""
        if self.key is None or len(files) == 0:
            return files
        known = rows_by_file or {}
        if len(known) == 1 and files.null_count == 0 and sum(known.values()) == len(files):
            return _constant(self.token(next(iter(known))), len(files))   # the usual spill: one file
        distinct = pa.array(sorted(known), pa.string())
        out = self._lookup(files, distinct) if len(distinct) else None
        if out is None or out.null_count != files.null_count:
            out = self._lookup(files, pc.unique(files).drop_null())
        return out

    def _lookup(self, files: pa.Array | pa.ChunkedArray, distinct: pa.Array) -> pa.Array | pa.ChunkedArray:
        tokens = pa.array([self.token(p) for p in distinct.to_pylist()], pa.string())
        return pc.take(tokens, pc.index_in(files, value_set=distinct))

    def text(self, message: str) -> str:
        """Free text (an error message) with every path under a source root replaced by its token."""
        if self.key is None or self._in_text is None or not message:
            return message
        return self._in_text.sub(lambda m: self.token(m.group(0)), message)

    def resolve(self, tokens: Iterable[str]) -> dict[str, str]:
        """token -> path, for the tokens found among the files under the sources' roots now (needs the key)."""
        wanted = set(tokens)
        if self.key is None:
            return {t: t for t in wanted}
        found: dict[str, str] = {}
        for _, root in self.roots:
            base = Path(root)
            files = [base] if base.is_file() else (p for p in base.rglob("*") if p.is_file())
            for p in files:
                t = self.token(str(p))
                if t in wanted:
                    found[t] = str(p)
            if len(found) == len(wanted):
                break
        return found


def _constant(text: str, n: int) -> pa.Array:
    """``text`` ``n`` times, built from its buffers (a lookup or a cast would copy ``n`` strings one by one)."""
    data = text.encode()
    if n * len(data) >= 2**31:   # past 32-bit offsets: the lookup's chunked result copes
        return pc.take(pa.array([text], pa.string()), pa.array(np.zeros(n, np.int32)))
    offsets = np.arange(0, (n + 1) * len(data), len(data), dtype=np.int32) if data else np.zeros(n + 1, np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))
