"""A fast record decoder that returns exactly what TFDS's ``deserialize_example_np`` returns.

TFDS walks its feature tree in Python for every record (about 0.14 ms for a
day window, longer than reading the record). The layout of our records is
fixed by the features, so the decoder is planned once: BYTES-encoded tensors
become ``np.frombuffer`` views (read-only, like TFDS's), text stays bytes,
scalars become Python numbers of the feature's kind, and ``a/b`` keys nest
into dicts. A test checks every field of every record against TFDS.

Why the decoder is generated code: after the protobuf parse (about 5 us for
a day window, in C), what is left is Python overhead per field, and a record
has some 40 fields. One straight-line function with a nested dict display
(written once per feature set, the way ``dataclasses`` writes ``__init__``)
costs about a third of a loop over per-field closures that nest keys at run
time; ``open()`` random access needs that margin to stay near the raw read rate.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


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


def _expr(i: int, key: str, feat, consts: dict[str, Any]) -> str:
    """Python source that decodes leaf ``i`` from the feature map ``f`` (``K[i]`` is its key)."""
    import tensorflow_datasets as tfds

    get = f"f[K[{i}]]"
    if isinstance(feat, tfds.features.Text):
        return f"{get}.bytes_list.value[0]"
    if isinstance(feat, tfds.features.Tensor) and feat.shape != ():
        if feat._encoding != tfds.features.Encoding.BYTES:  # noqa: SLF001 - the layout TFDS wrote
            raise ValueError(f"feature {key}: only BYTES-encoded tensors are decoded fast")
        if any(d is None for d in feat.shape):
            raise ValueError(f"feature {key}: only static shapes are decoded fast")
        consts[f"D{i}"], consts[f"S{i}"] = np.dtype(feat.np_dtype), tuple(int(d) for d in feat.shape)
        return f"frombuffer({get}.bytes_list.value[0], D{i}).reshape(S{i})"
    if isinstance(feat, tfds.features.Tensor) or isinstance(feat, tfds.features.ClassLabel):
        dtype = np.dtype(feat.np_dtype)
        if dtype == np.bool_:
            return f"bool({get}.int64_list.value[0])"
        if np.issubdtype(dtype, np.floating):
            return f"{get}.float_list.value[0]"
        if np.issubdtype(dtype, np.integer):
            return f"{get}.int64_list.value[0]"
    raise ValueError(f"feature {key}: {type(feat).__name__} is not decoded fast")


def _compile(features) -> Callable[[Any], dict[str, Any]]:
    """Write and compile ``decode(fmap) -> nested dict`` for these features."""
    leaves = _leaves(features)
    consts: dict[str, Any] = {"K": tuple(k for k, _ in leaves), "frombuffer": np.frombuffer, "bool": bool}
    tree: dict[str, Any] = {}
    for i, (key, feat) in enumerate(leaves):
        *parents, leaf = key.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _expr(i, key, feat, consts)

    def display(node: dict[str, Any]) -> str:
        return "{" + ", ".join(f"{k!r}: {display(v) if isinstance(v, dict) else v}"
                               for k, v in sorted(node.items())) + "}"  # key order as TFDS's (sorted)

    source = f"def decode(f):\n    return {display(tree)}\n"
    namespace = dict(consts)
    exec(compile(source, "<sensorpipe.access.decode>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["decode"]


class FastDecoder:
    """Decode serialized window records; falls back to TFDS for layouts it does not plan."""

    def __init__(self, features) -> None:
        from tensorflow_datasets.proto import tf_example_pb2

        self._parse = tf_example_pb2.Example.FromString
        self._features = features
        try:
            self._decode: Callable[[Any], dict[str, Any]] | None = _compile(features)
        except (ValueError, AttributeError):
            self._decode = None

    def __reduce__(self):
        """Pickle as its features (the generated function is not picklable); workers re-plan on arrival."""
        return (FastDecoder, (self._features,))

    def __call__(self, record: bytes) -> dict[str, Any]:
        if self._decode is None:
            return self._features.deserialize_example_np(record)
        return self._decode(self._parse(record).features.feature)
