"""Limits on what a compressed input may expand to: zip members (export.zip, XLSX) and compressed CSV.

A few megabytes of deflated whitespace expand to gigabytes, and a reader that
buffers what it decompresses (an XML parser holding a text node, a CSV reader
reading the whole file) then needs that much memory. Every compressed input is
therefore read through :func:`check_zip` (the zip's central directory, checked
before a member is opened: Python's zip reader never yields more than a
member's declared size, and fails on a CRC mismatch, so the declared sizes
bound what is read) or :func:`open_decompressed` (a stream that counts what it
yields and stops at the limit).

Two limits, from the config's ``limits`` section (:class:`~sensorpipe.config.LimitsConfig`):

* ``max_decompressed_bytes`` (default 20 GiB): what one input file (all its
  members together) may expand to;
* ``max_compression_ratio`` (default 200): decompressed bytes per compressed
  byte, checked once the output passes :data:`RATIO_FLOOR_BYTES` (a tiny file
  of zeros has a high ratio and is harmless). Real exports compress 5-30:1;
  deflate's maximum is about 1,030:1.

Breaching one raises :class:`DecompressionLimitError` naming the file, the
limit and the config key to raise. The limits in force are per process, set by
:func:`use` from the run's config (the driver and every worker do so before
reading), and default to :class:`~sensorpipe.config.LimitsConfig`'s values.
"""

from __future__ import annotations

import io
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from sensorpipe.config import LimitsConfig
from sensorpipe.sources.base import SourceError

#: the ratio limit applies once a file's output passes this size
RATIO_FLOOR_BYTES = 64 << 20
#: file name endings read as compressed CSV (pyarrow's codecs)
COMPRESSED_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}


class DecompressionLimitError(SourceError):
    """A compressed input expands past a limit (a decompression bomb, or a limit set too low)."""


_current = LimitsConfig()


def use(limits: LimitsConfig) -> None:
    """Make ``limits`` the ones this process checks (called with the run's config before reading)."""
    global _current
    _current = limits


def current() -> LimitsConfig:
    return _current


def _allowed(compressed_bytes: int, limits: LimitsConfig) -> tuple[int, str]:
    """The bytes a file of ``compressed_bytes`` may expand to, and the config key of the limit that binds."""
    by_ratio = max(int(limits.max_compression_ratio * compressed_bytes), RATIO_FLOOR_BYTES)
    if by_ratio < limits.max_decompressed_bytes:
        return by_ratio, "limits.max_compression_ratio"
    return limits.max_decompressed_bytes, "limits.max_decompressed_bytes"


def _error(where: str, expanded: int, compressed: int, key: str, limits: LimitsConfig,
           at_least: bool) -> DecompressionLimitError:
    more = "at least " if at_least else ""
    if key.endswith("ratio"):
        what = (f"a ratio of {more}{expanded / max(compressed, 1):,.0f}:1, over the limit "
                f"{limits.max_compression_ratio:g}:1 ({key})")
    else:
        what = f"over the limit of {limits.max_decompressed_bytes:,} bytes ({key})"
    return DecompressionLimitError(
        f"{where}: decompresses to {more}{expanded:,} bytes from {compressed:,}: {what}; refused as a possible "
        f"decompression bomb. If the file is genuine, raise {key} in the config")


def check_zip(path: Path | str, archive: zipfile.ZipFile, members: list[str] | None = None) -> None:
    """Refuse a zip whose ``members`` (default: all) declare more output than the limits allow.

    Checked on the central directory, before anything is decompressed; the
    ratio is of the members' total declared size to the file's size.
    """
    limits = _current
    infos = archive.infolist() if members is None else [archive.getinfo(m) for m in members]
    expanded = sum(i.file_size for i in infos)
    compressed = Path(path).stat().st_size
    allowed, key = _allowed(compressed, limits)
    if expanded > allowed:
        raise _error(str(path), expanded, compressed, key, limits, at_least=False)


class _CountingReader(io.RawIOBase):
    """A decompressing stream that counts its output and raises once it passes ``allowed`` bytes."""

    def __init__(self, stream, path: str, compressed: int, limits: LimitsConfig) -> None:
        self._stream = stream
        self._path = path
        self._compressed = compressed
        self._limits = limits
        self._allowed, self._key = _allowed(compressed, limits)
        self.decompressed = 0

    def readable(self) -> bool:
        return True

    def _count(self, n: int) -> None:
        self.decompressed += n
        if self.decompressed > self._allowed:
            raise _error(self._path, self.decompressed, self._compressed, self._key, self._limits, at_least=True)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:   # a whole-file read still stops at the limit: read in blocks
            return b"".join(iter(lambda: self.read(16 << 20), b""))
        data = self._stream.read(size)
        self._count(len(data))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def compression_of(path: Path | str) -> str | None:
    """The codec a CSV file's name says it is compressed with (``.gz``, ``.bz2``, ``.zst``, ``.lz4``), else None."""
    return COMPRESSED_SUFFIXES.get(Path(path).suffix.lower())


@contextmanager
def open_decompressed(path: Path | str) -> Iterator[io.RawIOBase]:
    """The decompressed byte stream of a compressed file, counted against the limits (see the module)."""
    codec = compression_of(path)
    if codec is None:
        raise ValueError(f"{path}: not a compressed file name ({', '.join(COMPRESSED_SUFFIXES)})")
    raw = pa.CompressedInputStream(pa.OSFile(str(path)), codec)
    reader = _CountingReader(raw, str(path), Path(path).stat().st_size, _current)
    try:
        yield reader
    finally:
        reader.close()
