"""A fast record decoder that returns exactly what TFDS's ``deserialize_example_np`` returns.

TFDS walks its feature tree in Python for every record (about 0.14 ms for a
day window, longer than reading the record). The layout of our records is
fixed by the features, so the decoder is planned once: BYTES-encoded tensors
become ``np.frombuffer`` views (read-only, like TFDS's), text stays bytes,
scalars become Python numbers of the feature's kind, and ``a/b`` keys nest
into dicts. A test checks every field of every record against TFDS.

Why generated code, and why two decoders: what costs after the read is
Python overhead per field, and a record has some 45 fields. Each decoder is
one straight-line function with a nested dict display, written once per
feature set (the way ``dataclasses`` writes ``__init__``). The wire decoder
parses the record as a map of feature name -> raw ``Feature`` bytes and reads
values from those bytes (checked headers, one ``struct.unpack`` for all
float/bool scalars): about 19 us for a day window against 31 us through
protobuf wrappers and 55 us for per-field closures; TFDS's own decode takes
about 300 us. The exact decoder (protobuf wrappers) takes any record the wire
one does not recognise.

The compiled decoder (``sensorpipe._wire``, built from ``_wire.c`` when the
package is installed with a C compiler) does the wire decoder's work in one C
pass over the record: about 5 us for a day window, so a random access through
``sensorpipe.open()`` costs little more than the read. It takes only records
laid out exactly as our writer lays them out (map entries in the planned order)
and returns ``None`` for anything else, which the Python decoders then take. An
install without the extension (or with a stale build of it) uses the Python
wire decoder, which returns the same examples.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from sensorpipe.storage.encode import bytes_feature_header


def _leaves(features, prefix: str = "") -> list[tuple[str, Any]]:
    """``(flat key, feature)`` for every leaf, in the features' own order (``a/b`` for nested dicts)."""
    import tensorflow_datasets as tfds

    out: list[tuple[str, Any]] = []
    for name, feat in features.items():
        if isinstance(feat, tfds.features.FeaturesDict):
            out.extend(_leaves(feat, f"{prefix}{name}/"))
        else:
            out.append((f"{prefix}{name}", feat))
    return out


def _leaf_kind(key: str, feat) -> tuple[str, np.dtype | None, tuple[int, ...]]:
    """``(kind, dtype, shape)`` of a leaf the planned decoders take: kind ``text``, ``tensor`` (static,
    BYTES-encoded), or a scalar ``bool``/``float``/``int``; ValueError naming the feature for anything else."""
    import tensorflow_datasets as tfds

    if isinstance(feat, tfds.features.Text):
        return "text", None, ()
    if isinstance(feat, tfds.features.Tensor) and feat.shape != ():
        if feat._encoding != tfds.features.Encoding.BYTES:  # noqa: SLF001 - the layout TFDS wrote
            raise ValueError(f"feature {key}: only BYTES-encoded tensors are decoded fast")
        if any(d is None for d in feat.shape):
            raise ValueError(f"feature {key}: only static shapes are decoded fast")
        return "tensor", np.dtype(feat.np_dtype), tuple(int(d) for d in feat.shape)
    if isinstance(feat, (tfds.features.Tensor, tfds.features.ClassLabel)):
        dtype = np.dtype(feat.np_dtype)
        if dtype == np.bool_:
            return "bool", dtype, ()
        if np.issubdtype(dtype, np.floating):
            return "float", dtype, ()
        if np.issubdtype(dtype, np.integer):
            return "int", dtype, ()
    raise ValueError(f"feature {key}: {type(feat).__name__} is not decoded fast")


def _expr(i: int, key: str, feat, consts: dict[str, Any]) -> str:
    """Python source that decodes leaf ``i`` from the feature map ``f`` (``K[i]`` is its key)."""
    kind, dtype, shape = _leaf_kind(key, feat)
    get = f"f[K[{i}]]"
    if kind == "text":
        return f"{get}.bytes_list.value[0]"
    if kind == "tensor":
        consts[f"D{i}"], consts[f"S{i}"] = dtype, shape
        return f"frombuffer({get}.bytes_list.value[0], D{i}).reshape(S{i})"
    return {"bool": f"bool({get}.int64_list.value[0])", "float": f"{get}.float_list.value[0]",
            "int": f"{get}.int64_list.value[0]"}[kind]


def _display(leaves: list[tuple[str, Any]], exprs: list[str]) -> str:
    """A nested dict display of the leaf expressions (``a/b`` keys nest), keys sorted at every level like TFDS's."""
    tree: dict[str, Any] = {}
    for (key, _), expr in zip(leaves, exprs):
        *parents, leaf = key.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = expr

    def display(node: dict[str, Any]) -> str:
        return "{" + ", ".join(f"{k!r}: {display(v) if isinstance(v, dict) else v}"
                               for k, v in sorted(node.items())) + "}"

    return display(tree)


def _define(source: str, namespace: dict[str, Any]) -> Callable[[Any], dict[str, Any]]:
    exec(compile(source, "<sensorpipe.access.decode>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["decode"]


def _compile(features) -> Callable[[Any], dict[str, Any]]:
    """``decode(feature map of a parsed tf.train.Example) -> nested dict`` for these features."""
    leaves = _leaves(features)
    consts: dict[str, Any] = {"K": tuple(k for k, _ in leaves), "frombuffer": np.frombuffer, "bool": bool}
    exprs = [_expr(i, key, feat, consts) for i, (key, feat) in enumerate(leaves)]
    return _define(f"def decode(f):\n    return {_display(leaves, exprs)}\n", consts)


class _Layout(Exception):
    """A record's bytes are not laid out as the wire plan expects (the exact path decodes it)."""


def _text_header(total: int) -> bytes:
    """Header of a ``Feature{bytes_list: {value: [s]}}`` of ``total`` bytes (``s`` follows it); ``b"\\xff"``
    (never a header) when no string length gives that total."""
    for n in range(max(0, total - 10), total):
        header = bytes_feature_header(n)
        if len(header) + n == total:
            return header
    return b"\xff"


def _compile_wire(features) -> Callable[[Any], dict[str, Any]]:
    """``decode(map of feature name -> serialized tf.train.Feature bytes) -> nested dict``.

    Reads each ``Feature`` from its own bytes instead of through protobuf
    wrappers: tensors are read-only numpy views of those bytes behind a header
    fixed by the tensor's byte size (checked), every float32 and bool scalar comes
    out of one ``struct.unpack`` over their joined bytes (headers checked),
    integers go through a small cache keyed by their bytes, texts are what
    follows a header that the Feature's length fixes (cached per length,
    header checked). Anything unexpected raises :class:`_Layout`.
    """
    import struct

    from tensorflow_datasets.proto import tf_feature_generated_pb2 as feature_pb2

    leaves = _leaves(features)
    feature_from = feature_pb2.Feature.FromString
    ints: dict[bytes, int] = {}

    def i64(b: bytes) -> int:
        v = ints.get(b)
        if v is None:
            v = feature_from(b).int64_list.value[0]
            if -65536 < v < 65536 and len(ints) < 65536:  # labels, offsets: few distinct values
                ints[b] = v
        return v

    def miss():
        raise _Layout

    text_headers: dict[int, bytes] = {}

    def txt(b: bytes) -> bytes:
        """The one value of a BytesList Feature: its header is fixed by the Feature's total length."""
        header = text_headers.get(len(b))
        if header is None:
            header = text_headers.setdefault(len(b), _text_header(len(b)))
        if not b.startswith(header):
            miss()
        return b[len(header):]

    consts: dict[str, Any] = {"K": tuple(k for k, _ in leaves), "ndarray": np.ndarray, "i64": i64,
                              "txt": txt, "miss": miss, "join": b"".join}
    exprs: list[str] = []
    fixed_keys: list[int] = []
    fixed_fmt, fixed_hdr = "<", []
    for i, (key, feat) in enumerate(leaves):
        get = f"f[K[{i}]]"
        kind, dtype, shape = _leaf_kind(key, feat)
        if kind == "text":
            exprs.append(f"txt({get})")
        elif kind == "tensor":
            nbytes = int(np.prod(shape)) * dtype.itemsize
            header = bytes_feature_header(nbytes)
            consts.update({f"D{i}": dtype, f"S{i}": shape, f"P{i}": header, f"N{i}": len(header) + nbytes})
            # bytes objects start 16-byte aligned: a view is aligned when the header length is a multiple of
            # the item size (true for our sizes); otherwise copy the payload out, as TFDS's own bytes would be
            view = (f"ndarray(S{i}, D{i}, _b, {len(header)})" if len(header) % dtype.itemsize == 0
                    else f"ndarray(S{i}, D{i}, _b[{len(header)}:])")  # read-only, like frombuffer
            exprs.append(f"({view} if len(_b := {get}) == N{i} and _b.startswith(P{i}) else miss())")
        elif kind == "int":
            exprs.append(f"i64({get})")
        else:
            if kind == "bool":
                fixed_fmt += "4s?"
                fixed_hdr.append(b"\x1a\x03\n\x01")  # int64_list, one 1-byte varint
            elif dtype == np.float32:
                fixed_fmt += "4sf"
                fixed_hdr.append(b"\x12\x06\n\x04")  # float_list, one packed float
            else:
                raise ValueError(f"feature {key}: {dtype} scalars are not decoded fast")
            exprs.append(f"_s[{2 * len(fixed_keys) + 1}]")
            fixed_keys.append(i)
    consts["FIXED"] = struct.Struct(fixed_fmt)
    consts["HDR"] = tuple(fixed_hdr)
    body = ""
    if fixed_keys:
        joined = ", ".join(f"f[K[{i}]]" for i in fixed_keys)
        body = (f"    _s = FIXED.unpack(join(({joined},)))\n"
                f"    if _s[0::2] != HDR:\n        miss()\n")
    return _define(f"def decode(f):\n{body}    return {_display(leaves, exprs)}\n", consts)


_WIRE_ABI = 1  # must equal WIRE_ABI in _wire.c: a stale build of the extension is not used


def compiled_available() -> bool:
    """True when the C decoder is built and matches this source (``pip install -e .`` rebuilds it)."""
    try:
        from sensorpipe import _wire
    except ImportError:
        return False
    return getattr(_wire, "ABI", None) == _WIRE_ABI


def _compile_c(features) -> Callable[[bytes], dict[str, Any] | None] | None:
    """``decode(record bytes) -> nested dict | None`` in C for these features; None when the extension is
    not available. ValueError for a layout it does not plan (like the Python wire decoder)."""
    if not compiled_available():
        return None
    from sensorpipe import _wire
    from sensorpipe.storage.encode import map_order

    written = sorted(_leaves(features), key=lambda kv: map_order(kv[0]))  # the order our writer emits entries
    codes = {"text": 0, "tensor": 1, "float": 2, "bool": 3, "int": 4}  # the kinds of _wire.c
    specs = []
    for key, feat in written:
        kind, dtype, shape = _leaf_kind(key, feat)
        if kind == "float" and dtype != np.float32:
            raise ValueError(f"feature {key}: {dtype} scalars are not decoded fast")
        if kind == "tensor":
            specs.append((key.encode(), 1, int(np.prod(shape)) * dtype.itemsize, dtype.itemsize, dtype, shape))
        else:
            specs.append((key.encode(), codes[kind], 0, 1, None, None))

    tree: dict[str, Any] = {}  # nested names -> leaf index, keys inserted sorted at every level like TFDS
    for i, (key, _) in enumerate(written):
        *parents, leaf = key.split("/")
        node = tree
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = i
    inserts: list[tuple[int, str, int]] = []
    n_dicts = 1

    def place(node: dict[str, Any], at: int) -> None:
        nonlocal n_dicts
        for name in sorted(node):
            child = node[name]
            if isinstance(child, dict):
                sub, n_dicts = n_dicts, n_dicts + 1
                inserts.append((at, name, -1 - sub))
                place(child, sub)
            else:
                inserts.append((at, name, child))

    place(tree, 0)
    return _wire.Plan(specs, n_dicts, inserts, np.ndarray).decode


def _raw_example_class():
    """A message class with the wire format of ``tf.train.Example`` whose features map to raw ``Feature`` bytes."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="sensorpipe_raw_example.proto", package="sensorpipe_raw",
                                               syntax="proto3")
    feats = proto.message_type.add(name="RawFeatures")
    entry = feats.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=field.TYPE_BYTES, label=field.LABEL_OPTIONAL)
    feats.field.add(name="feature", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                    type_name=".sensorpipe_raw.RawFeatures.FeatureEntry")
    example = proto.message_type.add(name="RawExample")
    example.field.add(name="features", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                      type_name=".sensorpipe_raw.RawFeatures")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sensorpipe_raw.RawExample"))


class FastDecoder:
    """Decode serialized window records; falls back to TFDS for layouts it does not plan.

    Three generated decoders, fastest first: the compiled one (see
    :func:`_compile_c`; ``compiled=False`` skips it), the Python wire one (see
    :func:`_compile_wire`), used where the extension is not built, and the exact
    one over a parsed ``tf.train.Example``, which takes any record the fast one
    does not recognise (and all records once that has happened often: a dataset
    written another way stops paying for the try). :attr:`path` names the fast
    one in use.
    """

    _MAX_MISSES = 64

    def __init__(self, features, compiled: bool = True) -> None:
        import struct

        from tensorflow_datasets.proto import tf_example_pb2

        self._parse = tf_example_pb2.Example.FromString
        self._features = features
        self._compiled = compiled
        self._misses = 0
        try:
            self._decode: Callable[[Any], dict[str, Any]] | None = _compile(features)
        except (ValueError, AttributeError):
            self._decode = None
        self._fast: Callable[[bytes], dict[str, Any] | None] | None = None
        self.path = "exact" if self._decode is not None else "tfds"
        try:
            self._fast = _compile_c(features) if compiled else None
            if self._fast is not None:
                self.path = "compiled"
        except (ValueError, AttributeError):
            self._fast = None
        if self._fast is None:
            try:
                wire, parse_raw = _compile_wire(features), _raw_example_class().FromString
            except (ValueError, AttributeError):
                return
            layout_errors = (_Layout, struct.error, IndexError)

            def python_wire(record: bytes) -> dict[str, Any] | None:
                try:
                    return wire(parse_raw(record).features.feature)
                except layout_errors:
                    return None

            self._fast, self.path = python_wire, "python wire"

    def __reduce__(self):
        """Pickle as its features (the generated functions are not picklable); workers re-plan on arrival."""
        return (FastDecoder, (self._features, self._compiled))

    def __call__(self, record: bytes) -> dict[str, Any]:
        if self._fast is not None:
            ex = self._fast(record)
            if ex is not None:
                return ex
            self._misses += 1
            if self._misses > self._MAX_MISSES:
                self._fast = None
        if self._decode is None:
            return self._features.deserialize_example_np(record)
        return self._decode(self._parse(record).features.feature)
