"""Per-unit array files: named numpy arrays in one file, written atomically and read in one go.

Pass 1 caches each unit's windows, labels and events in one such file and
pass 2 reads them back; the mergeable statistics sketches use the same
format. It sits in the ground floor because stages of every layer read and
write it (processing's sketches, the runners' unit cache), and none of them
should import the storage layer for it.
"""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np

_ARRAYS_MAGIC = b"SPARRAY1"
_ALIGN = 64


def save_arrays(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays to one file atomically: a JSON index (name, dtype, shape, offset), then raw bytes.

    The per-unit cache between the passes. One index instead of a ``.npy``
    header per array (parsed with ``ast.literal_eval``, 27 per unit) and one
    read into one buffer: with ``.npy`` files most of a unit's load time was headers.
    ``np.savez`` would add a zip member and a CRC per array on top. Data never
    leaves this machine; object and structured arrays are refused.
    """
    index, offset = [], 0
    parts = []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a) if isinstance(a, np.ndarray) and a.ndim else np.asanyarray(a)
        if a.dtype.hasobject or a.dtype.fields is not None:
            raise ValueError(f"array cache {path}: {name} has dtype {a.dtype}; only plain numeric, bool and "
                             f"string arrays are cached")
        offset = -(-offset // _ALIGN) * _ALIGN
        index.append([name, a.dtype.str, list(a.shape), offset])
        parts.append((offset, a))
        offset += a.nbytes
    head = json.dumps(index, separators=(",", ":")).encode()
    start = -(-(len(_ARRAYS_MAGIC) + 8 + len(head)) // _ALIGN) * _ALIGN   # data offsets are from here
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(_ARRAYS_MAGIC + struct.pack("<Q", len(head)) + head)
        for off, a in parts:
            fh.seek(start + off)
            fh.write(a.tobytes() if a.ndim == 0 else a.data)
        fh.truncate(start + offset)
    os.replace(tmp, path)


def load_arrays(path: str) -> dict[str, np.ndarray]:
    """The arrays :func:`save_arrays` wrote, by name (writable views of one buffer)."""
    with open(path, "rb") as fh:
        buf = np.empty(os.fstat(fh.fileno()).st_size, np.uint8)   # not zero-filled: the read fills it
        n = fh.readinto(buf)
    raw = buf.data
    if n != len(buf) or raw[:len(_ARRAYS_MAGIC)] != _ARRAYS_MAGIC:
        raise ValueError(f"{path} is not a complete sensorpipe array cache; delete it (and its .json) to rebuild")
    (head_len,) = struct.unpack_from("<Q", raw, len(_ARRAYS_MAGIC))
    head_end = len(_ARRAYS_MAGIC) + 8 + head_len
    start = -(-head_end // _ALIGN) * _ALIGN
    out = {}
    for name, dtype, shape, off in json.loads(bytes(raw[len(_ARRAYS_MAGIC) + 8:head_end])):
        dt = np.dtype(dtype)
        nbytes = math.prod(shape) * dt.itemsize
        if start + off + nbytes > len(buf):
            raise ValueError(f"{path} ends before array {name!r} its index says is there (a cut write?); delete it "
                             f"(and its .json) to rebuild")
        out[name] = buf[start + off:start + off + nbytes].view(dt).reshape(shape) if nbytes else np.empty(shape, dt)
    return out
