"""A fast record decoder that returns exactly what TFDS's ``deserialize_example_np`` returns.

TFDS walks its feature tree in Python for every record (for a day window,
longer than reading the record). The layout of our records is
fixed (:mod:`sensorpipe.storage.layout`; a dataset's own features.json gives it
back, :func:`sensorpipe.storage.features.layout_of`), so the decoder is planned
once from that layout: BYTES-encoded tensors become ``np.frombuffer`` views
(read-only, like TFDS's), text stays bytes, scalars become Python numbers of the
field's kind, and ``a/b`` keys nest into dicts. A test checks every field of
every record against TFDS.

Three paths, fastest first:

1. the compiled decoder (``sensorpipe.access._wire``, built from ``_wire.c``
   beside this module when the package is installed with a C compiler) reads
   the record in one C pass. It takes only records laid out exactly as our
   writer lays them out and returns ``None`` for anything else;
2. the exact decoder parses the record with protobuf and reads each field
   from the parsed ``tf.train.Example`` in one generated straight-line function
   (a nested dict display, written once per layout the way ``dataclasses``
   writes ``__init__``). It takes what the compiled one declines, and serves
   alone where the extension is not built (or is a stale build);
3. TFDS's own ``deserialize_example_np``, for features the layout does not
   cover (ragged tensors, optional features, ...).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from sensorpipe.storage.layout import Field, RecordLayout


def _expr(i: int, field: Field, consts: dict[str, Any]) -> str:
    """Python source that decodes field ``i`` from the feature map ``f`` (``K[i]`` is its key)."""
    get = f"f[K[{i}]]"
    if field.kind == "text":
        return f"{get}.bytes_list.value[0]"
    if field.kind == "tensor":
        consts[f"D{i}"], consts[f"S{i}"] = np.dtype(field.dtype), field.shape
        return f"frombuffer({get}.bytes_list.value[0], D{i}).reshape(S{i})"
    if field.kind == "class":
        return f"{get}.int64_list.value[0]"
    dtype = np.dtype(field.dtype)
    if dtype == np.bool_:
        return f"bool({get}.int64_list.value[0])"
    return f"{get}.float_list.value[0]" if dtype.kind == "f" else f"{get}.int64_list.value[0]"


def _display(keys: list[str], exprs: list[str]) -> str:
    """A nested dict display of the field expressions (``a/b`` keys nest), keys sorted at every level like TFDS's."""
    tree: dict[str, Any] = {}
    for key, expr in zip(keys, exprs):
        *parents, leaf = key.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = expr

    def display(node: dict[str, Any]) -> str:
        return "{" + ", ".join(f"{k!r}: {display(v) if isinstance(v, dict) else v}"
                               for k, v in sorted(node.items())) + "}"

    return display(tree)


def _compile(layout: RecordLayout) -> Callable[[Any], dict[str, Any]]:
    """``decode(feature map of a parsed tf.train.Example) -> nested dict`` for this layout."""
    keys = [field.key for field in layout.fields]
    consts: dict[str, Any] = {"K": tuple(keys), "frombuffer": np.frombuffer, "bool": bool}
    exprs = [_expr(i, field, consts) for i, field in enumerate(layout.fields)]
    source = f"def decode(f):\n    return {_display(keys, exprs)}\n"
    exec(compile(source, "<sensorpipe.access.decode>", "exec"), consts)  # noqa: S102 - our own generated code
    return consts["decode"]


_WIRE_ABI = 1  # must equal WIRE_ABI in _wire.c: a stale build of the extension is not used


def compiled_available() -> bool:
    """True when the C decoder is built and matches this source (``pip install -e .`` rebuilds it)."""
    try:
        from sensorpipe.access import _wire
    except ImportError:
        return False
    return getattr(_wire, "ABI", None) == _WIRE_ABI


def _c_kind(field: Field) -> int:
    """The kind code of ``_wire.c``: 0 text, 1 tensor, 2 float32, 3 bool, 4 int64 (integers, class labels)."""
    if field.kind == "text":
        return 0
    if field.kind == "tensor":
        return 1
    if field.kind == "class":
        return 4
    dtype = np.dtype(field.dtype)
    if dtype == np.float32:
        return 2
    if dtype == np.bool_:
        return 3
    if dtype.kind in "iu":
        return 4
    raise ValueError(f"feature {field.key}: {dtype} scalars are not decoded fast")


def _compile_c(layout: RecordLayout) -> Callable[[bytes], dict[str, Any] | None] | None:
    """``decode(record bytes) -> nested dict | None`` in C for this layout; None when the extension is not
    available. ValueError for a field it does not decode (a float64 scalar)."""
    if not compiled_available():
        return None
    from sensorpipe.access import _wire
    from sensorpipe.storage.encode import written_order

    written = written_order(layout)  # the order our writer emits map entries in
    specs = []
    for field in written:
        if field.kind == "tensor":
            dtype = np.dtype(field.dtype)
            specs.append((field.key.encode(), 1, int(np.prod(field.shape)) * dtype.itemsize, dtype.itemsize,
                          dtype, field.shape))
        else:
            specs.append((field.key.encode(), _c_kind(field), 0, 1, None, None))

    tree: dict[str, Any] = {}  # nested names -> field index, keys inserted sorted at every level like TFDS
    for i, field in enumerate(written):
        *parents, leaf = field.key.split("/")
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


def parse_example(record: bytes):
    """``record`` parsed as a ``tf.train.Example`` (TFDS's protobuf module, imported at the first call)."""
    return _example_parser()(record)


@functools.cache
def _example_parser() -> Callable[[bytes], Any]:
    from tensorflow_datasets.proto import tf_example_pb2

    return tf_example_pb2.Example.FromString


class FastDecoder:
    """Decode serialized window records; falls back to TFDS for layouts it does not plan.

    The compiled decoder first (see :func:`_compile_c`; ``compiled=False``
    skips it), then the exact one over a parsed ``tf.train.Example``, which
    takes any record the compiled one declines (and all records once that has
    happened often: a dataset written another way stops paying for the try),
    then TFDS for features outside the layout. :attr:`path` names the first
    one in use: ``compiled``, ``exact`` or ``tfds``.

    ``layout`` instead of ``features``: records our writer wrote with that
    layout, decoded before a dataset's features.json exists (a run's report
    samples its record spills: :mod:`sensorpipe.reporting`). TFDS's protobuf
    module is imported only at the first record the exact decoder takes.
    """

    _MAX_MISSES = 64

    def __init__(self, features=None, compiled: bool = True, layout: RecordLayout | None = None) -> None:
        from sensorpipe.storage.features import layout_of

        self._features = features
        self._compiled = compiled
        self._layout = layout
        self._misses = 0
        self._decode: Callable[[Any], dict[str, Any]] | None = None
        self._fast: Callable[[bytes], dict[str, Any] | None] | None = None
        self.path = "tfds"
        if layout is None:
            try:
                layout = layout_of(features)
            except ValueError:
                return
        self._decode, self.path = _compile(layout), "exact"
        if compiled:
            try:
                self._fast = _compile_c(layout)
            except ValueError:
                self._fast = None
        if self._fast is not None:
            self.path = "compiled"

    def __reduce__(self):
        """Pickle as its features (the generated functions are not picklable); workers re-plan on arrival."""
        return (FastDecoder, (self._features, self._compiled, self._layout))

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
        return self._decode(parse_example(record).features.feature)
