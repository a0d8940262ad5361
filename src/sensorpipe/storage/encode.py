"""A planned record encoder that writes exactly the bytes TFDS's example serializer writes.

The mirror of :mod:`sensorpipe.access.decode`. TFDS encodes a record by
walking its feature tree (``encode_example``), building a ``tf.train.Example``
of protobuf wrappers and serializing it, mostly Python overhead per field. Our layout is fixed (:mod:`sensorpipe.storage.layout`),
so the encoder is planned once from it (its fields in the order
``SerializeToString(deterministic=True)`` writes map entries in, see
:func:`written_order`) and one generated straight-line function writes the wire bytes of
``Example{features: Features{feature: map<string, Feature>}}`` directly.

Each leaf gets the conversions and checks TFDS applies (``Tensor``/``Text``/
``ClassLabel.encode_example`` and the serializer's ``np.asanyarray`` cast),
with the same error types: a BYTES tensor must already have the feature's
dtype when it is an array (else it is converted), and the feature's shape;
its one bytes value is the array's raw C-order bytes. Text is utf-8;
ClassLabel, bool and integer scalars are one packed int64 (class labels in
``[-1, num_classes)``, -1 = missing); float32 scalars are one packed float.
Tests check every record of a pipeline run and edge cases byte for byte
against TFDS.

The layout is a small frozen dataclass (picklable): workers build the encoder
from it without importing ``tensorflow_datasets``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

import numpy as np

from sensorpipe.storage.layout import Field, RecordLayout


def map_order(key: str) -> tuple[int, ...]:
    """Sort key of protobuf's (upb) deterministic map order: utf-8 bytes, but a key sorts after the longer
    keys it is a prefix of (``caption_claims`` before ``caption``), as its comparator does."""
    return (*key.encode(), 256)


def written_order(layout: RecordLayout) -> tuple[Field, ...]:
    """The fields of ``layout`` in the order their map entries are written (see :func:`map_order`)."""
    return tuple(sorted(layout.fields, key=lambda field: map_order(field.key)))


# --- wire format ------------------------------------------------------------------------------------------------
def varint(n: int) -> bytes:
    """Base-128 varint of ``n`` (negative int64 as its 10-byte two's complement, as protobuf writes it)."""
    n &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def bytes_feature_header(nbytes: int) -> bytes:
    """Header of ``Feature{bytes_list: {value: [s]}}`` for one value ``s`` of ``nbytes`` (``s`` follows it):
    the layout the planned encoder writes and the planned decoder expects."""
    inner = b"\n" + varint(nbytes)                    # BytesList.value (field 1), one value
    return b"\n" + varint(len(inner) + nbytes) + inner  # Feature.bytes_list (field 1)


def _entry_head(key: bytes, feature_len: int) -> bytes:
    """Bytes of a map entry ``{key: 1, value: 2 (Feature of feature_len bytes)}`` up to the Feature, its tag first."""
    body_len = 1 + len(varint(len(key))) + len(key) + 1 + len(varint(feature_len)) + feature_len
    return b"\n" + varint(body_len) + b"\n" + varint(len(key)) + key + b"\x12" + varint(feature_len)


def _text_entry(key: bytes) -> Callable[[bytes], bytes]:
    """``s -> map entry of Feature{bytes_list: {value: [s]}}`` (headers cached per length)."""
    heads: dict[int, bytes] = {}

    def entry(s: bytes) -> bytes:
        head = heads.get(len(s))
        if head is None:
            feature = bytes_feature_header(len(s))
            head = _entry_head(key, len(feature) + len(s)) + feature
            if len(heads) < 4096:
                heads[len(s)] = head
        return head + s

    return entry


def _int_entry(key: bytes) -> Callable[[int], bytes]:
    """``v -> map entry of Feature{int64_list: {value: [v]}}`` (cached for small values)."""
    cache: dict[int, bytes] = {}

    def entry(v: int) -> bytes:
        out = cache.get(v)
        if out is None:
            packed = varint(v)
            inner = b"\n" + varint(len(packed)) + packed           # Int64List.value, packed
            feature = b"\x1a" + varint(len(inner)) + inner         # Feature.int64_list
            out = _entry_head(key, len(feature)) + feature
            if -65536 < v < 65536 and len(cache) < 65536:
                cache[v] = out
        return out

    return entry


# --- TFDS's conversions and checks, per leaf kind ---------------------------------------------------------------
def _as_array(x: Any, dtype: np.dtype, shape: tuple[int, ...], key: str) -> np.ndarray:
    """``Tensor.encode_example``: arrays must have the dtype, other values are converted; the shape must match."""
    if dtype == np.bool_ and isinstance(x, str):
        raise TypeError(f"feature {key}: {x!r} is a string, so converting it to `bool` will always output `True`")
    if not isinstance(x, np.ndarray):
        x = np.array(x, dtype=dtype)
    if x.dtype != dtype:
        raise ValueError(f"feature {key}: dtype {x.dtype} does not match {dtype}")
    if x.shape != shape:
        raise ValueError(f"feature {key}: shape {x.shape} does not match {shape}")
    return x


def _tensor(dtype: np.dtype, shape: tuple[int, ...], key: str) -> Callable[[Any], bytes]:
    def raw(x: Any) -> bytes:
        if type(x) is np.ndarray and x.dtype == dtype and x.shape == shape:
            return x.tobytes()
        return _as_array(x, dtype, shape, key).tobytes()

    return raw


def _float_scalar(key: str) -> Callable[[Any], bytes]:
    """The 4 bytes of a float32 scalar as protobuf stores them (float32 -> double -> float, like its wrapper)."""
    pack, f32 = struct.Struct("<f").pack, np.dtype(np.float32)

    def raw(x: Any) -> bytes:
        if type(x) is float:  # a C double -> float cast, as numpy's; out of float32 range numpy gives inf
            try:
                return pack(x)
            except OverflowError:
                pass
        return pack(float(_as_array(x, f32, (), key)))

    return raw


def _int_scalar(dtype: np.dtype, key: str) -> Callable[[Any], int]:
    """An integer or bool scalar's int64 value (numpy's conversion: out-of-range Python ints raise)."""
    lo, hi = (0, 1) if dtype == np.bool_ else (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    exact = bool if dtype == np.bool_ else int

    def value(x: Any) -> int:
        if type(x) is exact and lo <= x <= hi:
            return int(x)
        return int(_as_array(x, dtype, (), key))

    return value


def _class(names: tuple[str, ...], key: str) -> Callable[[Any], int]:
    """``ClassLabel.encode_example``: a name or an index in ``[-1, num_classes)`` (-1 = no label)."""
    index = {n: i for i, n in enumerate(names)}
    n_classes = len(names)

    def value(x: Any) -> int:
        if type(x) is int and -1 <= x < n_classes:
            return x
        if isinstance(x, bytes):
            x = x.decode("utf-8")
        if isinstance(x, str):
            if x not in index:
                raise KeyError(f"feature {key}: {x!r} is not a class name; use one of {', '.join(names)}")
            x = index[x]
        if not -1 <= x < n_classes:
            raise ValueError(f"feature {key}: class label {x} is outside [-1, {n_classes}) (num_classes {n_classes})")
        return int(np.asanyarray(x, dtype=np.int64))

    return value


def _text(key: str) -> Callable[[Any], bytes]:
    """``Text.encode_example`` + the serializer's ``_as_bytes``: str -> utf-8, bytes as they are."""
    def value(x: Any) -> bytes:
        if type(x) is str:
            return x.encode("utf-8")
        if type(x) is bytes:
            return x
        a = x if isinstance(x, np.ndarray) else np.array(x, dtype=object)
        if a.dtype != object:
            raise ValueError(f"feature {key}: dtype {a.dtype} does not match object")
        if a.shape != ():
            raise ValueError(f"feature {key}: shape {a.shape} does not match ()")
        v = a[()]
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        if isinstance(v, str):
            return v.encode("utf-8")
        raise TypeError(f"feature {key}: expected binary or unicode string, got {v!r}")

    return value


# --- code generation --------------------------------------------------------------------------------------------
def _compile(layout: RecordLayout) -> Callable[[dict], bytes]:
    """``encode(nested example dict) -> serialized tf.train.Example`` for this layout."""
    ns: dict[str, Any] = {"join": b"".join, "varint": varint, "check": _check_keys}
    parts: list[str] = []
    tree: dict[str, Any] = {}
    for i, leaf in enumerate(written_order(layout)):
        *parents, name = leaf.key.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"feature {leaf.key}: {p} is both a leaf and a dict")
        node[name] = leaf
        get = "ex" + "".join(f"[{p!r}]" for p in parents) + f"[{name!r}]"
        kb = leaf.key.encode()
        if leaf.kind == "tensor":
            dtype = np.dtype(leaf.dtype)
            nbytes = int(np.prod(leaf.shape, dtype=np.int64)) * dtype.itemsize
            feature = bytes_feature_header(nbytes)
            ns[f"H{i}"] = _entry_head(kb, len(feature) + nbytes) + feature
            ns[f"V{i}"] = _tensor(dtype, tuple(leaf.shape), leaf.key)
            parts += [f"H{i}", f"V{i}({get})"]
        elif leaf.kind == "text":
            ns[f"T{i}"], ns[f"V{i}"] = _text_entry(kb), _text(leaf.key)
            parts.append(f"T{i}(V{i}({get}))")
        elif leaf.kind == "class":
            ns[f"T{i}"], ns[f"V{i}"] = _int_entry(kb), _class(tuple(leaf.names), leaf.key)
            parts.append(f"T{i}(V{i}({get}))")
        elif leaf.kind == "scalar" and np.dtype(leaf.dtype) == np.float32:
            feature = b"\x12\x06\n\x04"                            # float_list, one packed float
            ns[f"H{i}"] = _entry_head(kb, len(feature) + 4) + feature
            ns[f"V{i}"] = _float_scalar(leaf.key)
            parts += [f"H{i}", f"V{i}({get})"]
        elif leaf.kind == "scalar" and np.dtype(leaf.dtype).kind in "biu" and np.dtype(leaf.dtype) != np.uint64:
            ns[f"T{i}"], ns[f"V{i}"] = _int_entry(kb), _int_scalar(np.dtype(leaf.dtype), leaf.key)
            parts.append(f"T{i}(V{i}({get}))")
        else:
            raise ValueError(f"feature {leaf.key}: a {leaf.kind} of {leaf.dtype or 'no dtype'} is not planned")
    ns["KEYS"] = _key_sets(tree)
    checks = [f"check(ex{''.join(f'[{p!r}]' for p in path)}, KEYS[{path!r}])" for path in ns["KEYS"]]
    src = ("def encode(ex):\n"
           f"    body = join(({', '.join(parts)},))\n"
           f"    {'; '.join(checks)}\n"
           "    return b'\\n' + varint(len(body)) + body\n")
    exec(compile(src, "<sensorpipe.storage.encode>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns["encode"]


def _key_sets(tree: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], frozenset[str]]:
    """The keys every (nested) dict of an example must have, by path."""
    out = {path: frozenset(tree)}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_key_sets(v, (*path, k)))
    return out


def _check_keys(d: dict, keys: frozenset[str]) -> None:
    """TFDS zips the example with the features: a key on one side only is a KeyError (a missing one already was)."""
    if len(d) != len(keys):
        extra = sorted(set(d) - keys)
        if extra:
            raise KeyError(extra[0])


class PlannedEncoder:
    """``encode(example) -> bytes``, byte-identical to TFDS's serializer with deterministic map order."""

    def __init__(self, layout: RecordLayout) -> None:
        self.layout = layout
        self.encode = _compile(layout)

    def __reduce__(self):
        """Pickle as the layout (generated functions are not picklable); a worker re-plans on arrival."""
        return (PlannedEncoder, (self.layout,))


_ENCODERS: dict[RecordLayout, PlannedEncoder] = {}


def encoder_for(layout: RecordLayout) -> PlannedEncoder:
    """One encoder per layout and process (units share it: generating it is not free)."""
    enc = _ENCODERS.get(layout)
    if enc is None:
        enc = _ENCODERS[layout] = PlannedEncoder(layout)
    return enc
