"""Files encrypted at rest with AES-GCM, written and read as a stream: the optional form of quarantine files.

Quarantine files keep the original text and values of rejected rows, so a deployment may encrypt them under a
key of their own (``privacy.quarantine_key_file``; never the pseudonymization key). The container:

==========  =======  =====================================================================================
offset      bytes    content
==========  =======  =====================================================================================
0           8        magic ``SPSEALv\\0`` (:data:`MAGIC`)
8           1        container version, 1
9           1        ``log2`` of the plaintext chunk size (20: 1 MiB)
10          16       file nonce: random per file
26          ...      chunks: each chunk's ciphertext followed by its 16-byte GCM tag
==========  =======  =====================================================================================

Each file has its own AES-256 key, ``HKDF-SHA256(key, salt=file nonce, info="sensorpipe sealed v1")``, so a
key can seal any number of files without a nonce ever repeating. Chunk ``i`` (from 0) is sealed with the
12-byte GCM nonce ``i`` (11 bytes, big-endian) ``+ last`` (1 byte: 1 for the final chunk, else 0) and the
26-byte header as associated data: a reordered, dropped, cut or appended chunk, an edited header and a wrong
key all fail authentication. Every chunk holds exactly the chunk size but the final one (0 to chunk-size
bytes), so a reader finds any plaintext offset without an index, and Parquet's random access (footer first,
then row groups) decrypts only the chunks it touches. Writer and reader hold one chunk at a time.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

MAGIC = b"SPSEALv\0"
VERSION = 1
TAG_BYTES = 16
NONCE_BYTES = 16
HEADER_BYTES = len(MAGIC) + 2 + NONCE_BYTES
CHUNK_LOG2 = 20
_INFO = b"sensorpipe sealed v1"


class SealedFileError(ValueError):
    """A sealed file that cannot be read: no key given, a wrong key, or a file altered or cut."""


def is_sealed(path: str | Path) -> bool:
    """Whether ``path`` starts with the sealed container's magic (a plain Parquet file starts with ``PAR1``)."""
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _file_cipher(key: bytes, nonce: bytes):
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:
        raise ImportError("encrypted quarantine files (privacy.quarantine_key_file) need the cryptography package: "
                          "pip install 'sensorpipe[encrypt]'") from None

    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce, info=_INFO).derive(key))


def _chunk_nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\1" if last else b"\0")


class SealedWriter(io.RawIOBase):
    """A write-only file object that seals what is written to ``path`` (``pyarrow`` writers accept it).

    Plaintext is buffered up to one chunk; ``close`` seals the final chunk. Without ``close`` the file has
    no final chunk and every reader refuses it as cut.
    """

    def __init__(self, path: str | Path, key: bytes, chunk_log2: int = CHUNK_LOG2) -> None:
        super().__init__()
        self._chunk = 1 << chunk_log2
        nonce = os.urandom(NONCE_BYTES)
        self._header = MAGIC + bytes([VERSION, chunk_log2]) + nonce
        self._aead = _file_cipher(key, nonce)
        self._file = open(path, "wb")
        self._file.write(self._header)
        self._buf = bytearray()
        self._index = 0
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = len(data)
        self._buf += data
        self._pos += n
        while len(self._buf) > self._chunk:     # keep up to one chunk: the final one is sealed at close
            self._seal(bytes(self._buf[:self._chunk]), last=False)
            del self._buf[:self._chunk]
        return n

    def tell(self) -> int:
        return self._pos

    def _seal(self, plain: bytes, last: bool) -> None:
        self._file.write(self._aead.encrypt(_chunk_nonce(self._index, last), plain, self._header))
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            try:
                self._seal(bytes(self._buf), last=True)
                self._buf = bytearray()
                self._file.close()
            finally:
                super().close()

    def discard(self) -> None:
        """Close without sealing the final chunk (the caller removes the file)."""
        if not self.closed:
            self._file.close()
            super().close()


class SealedReader(io.RawIOBase):
    """A seekable, read-only file object over a sealed file: ``pyarrow.parquet.ParquetFile`` and
    ``pyarrow.feather.read_table`` read it like the plain file."""

    def __init__(self, path: str | Path, key: bytes | None) -> None:
        super().__init__()
        self.path = str(path)
        self._file = open(path, "rb")
        self._pos = 0
        self._cached: tuple[int, bytes] = (-1, b"")    # the one decrypted chunk held: (index, plaintext)
        try:
            self._open(key)
        except BaseException:
            self._file.close()
            raise

    def _open(self, key: bytes | None) -> None:
        header = self._file.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES or header[:len(MAGIC)] != MAGIC:
            raise SealedFileError(f"{self.path}: not a sealed file (no {MAGIC[:6].decode()} header)")
        if header[8] != VERSION:
            raise SealedFileError(f"{self.path}: sealed with container version {header[8]}, this sensorpipe reads "
                                  f"version {VERSION}; upgrade sensorpipe")
        if key is None:
            raise SealedFileError(f"{self.path} is encrypted (AES-GCM); give the key it was written with: "
                                  f"privacy.quarantine_key_file of the run's config (--key-file on the command "
                                  f"line, key_file= in Python)")
        self._header, self._chunk = header, 1 << header[9]
        self._aead = _file_cipher(key, header[10:])
        body = os.fstat(self._file.fileno()).st_size - HEADER_BYTES
        step = self._chunk + TAG_BYTES
        self._n_chunks = max(1, -(-body // step))
        last = body - (self._n_chunks - 1) * step - TAG_BYTES
        if last < 0:
            raise self._broken(self._n_chunks - 1)
        self.size = (self._n_chunks - 1) * self._chunk + last
        self._plain(self._n_chunks - 1)      # authenticates the final chunk: a cut file or wrong key fails here

    def _broken(self, index: int) -> SealedFileError:
        return SealedFileError(f"{self.path}: cannot be decrypted with this key (chunk {index + 1} of "
                               f"{self._n_chunks} fails authentication): a wrong privacy.quarantine_key_file, "
                               f"or the file was altered or cut")

    def _plain(self, index: int) -> bytes:
        if self._cached[0] == index:
            return self._cached[1]
        from cryptography.exceptions import InvalidTag

        step = self._chunk + TAG_BYTES
        self._file.seek(HEADER_BYTES + index * step)
        sealed = self._file.read(step)
        try:
            plain = self._aead.decrypt(_chunk_nonce(index, index == self._n_chunks - 1), sealed, self._header)
        except InvalidTag:
            raise self._broken(index) from None
        self._cached = (index, plain)
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        parts = []
        while self._pos < end:
            index, start = divmod(self._pos, self._chunk)
            piece = self._plain(index)[start:start + end - self._pos]
            parts.append(piece)
            self._pos += len(piece)
        return b"".join(parts)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            super().close()


#: the fewest bytes a quarantine key file may hold (after stripping whitespace): 32 hex characters are 128 bits
MIN_KEY_BYTES = 32


def read_key_file(path: str | Path, what: str = "privacy.quarantine_key_file") -> bytes:
    """The secret in a key file (whitespace stripped), refused when missing or shorter than :data:`MIN_KEY_BYTES`."""
    from sensorpipe.core.errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what}: {p} does not exist; create it with a random secret of its own, e.g. "
                          f"`python -c 'import secrets; print(secrets.token_hex(32))' > {p}`")
    key = p.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{what}: {p} holds {len(key)} characters; use at least {MIN_KEY_BYTES} random ones "
                          f"(`python -c 'import secrets; print(secrets.token_hex(32))' > {p}`)")
    return key


def load_quarantine_key(cfg, pseudonym_key: bytes | None) -> bytes | None:
    """The key that seals the run's quarantine files (``privacy.quarantine_key_file``), or None: plain files.

    Refused when it is the pseudonymization key (same file or same secret: one leaked key must not open
    both) or lies inside the output folder (it would be published with what it protects).
    """
    from sensorpipe.core.errors import ConfigError

    name = cfg.privacy.quarantine_key_file
    if not name:
        return None
    path = Path(cfg.resolve(name)).resolve()
    if cfg.privacy.key_file and Path(cfg.resolve(cfg.privacy.key_file)).resolve() == path:
        raise ConfigError("privacy.quarantine_key_file is privacy.key_file: the quarantine needs a key of its own, "
                          "never the pseudonymization key")
    if Path(cfg.output_dir).resolve() in path.parents:
        raise ConfigError(f"privacy.quarantine_key_file ({path}) must not lie inside the output directory: the key "
                          f"would be published with the files it encrypts")
    key = read_key_file(path)
    if pseudonym_key is not None and key == pseudonym_key:
        raise ConfigError(f"privacy.quarantine_key_file ({path}) holds the pseudonymization key; give the "
                          f"quarantine a key of its own")
    return key
