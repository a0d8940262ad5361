"""The TFDS side of the record layout: a :class:`~sensorpipe.storage.layout.RecordLayout` as a
``FeaturesDict`` and back.

Tensors use ``Encoding.BYTES`` so records are written without TensorFlow and
read back by TFDS (``as_data_source``) or by :mod:`sensorpipe.access` alike.
:func:`to_features` is what the writer saves as features.json (docs included);
:func:`layout_of` reads a dataset's features back into a layout, which is how
the readers plan their decoders for any dataset, and refuses (ValueError naming
the feature) a layout the planned encoder and decoders do not handle.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.storage.layout import Field, RecordLayout, record_layout


def _tfds():
    from sensorpipe._gc import collector_paused

    with collector_paused():     # TFDS's first import (see sensorpipe._gc)
        import tensorflow_datasets as tfds
    return tfds


def build_features(channels: tuple[str, ...], size_min: int, caption_levels: tuple[str, ...]):
    """The ``tfds.features.FeaturesDict`` of a window record."""
    return to_features(record_layout(channels, size_min, caption_levels))


def to_features(layout: RecordLayout):
    """The ``FeaturesDict`` of ``layout``: its fields in order, ``a/b`` keys as nested dicts."""
    tfds = _tfds()
    tree: dict = {}
    for field in layout.fields:
        *parents, name = field.key.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[name] = _feature(tfds, field)

    def build(node: dict):
        return tfds.features.FeaturesDict({k: build(v) if isinstance(v, dict) else v for k, v in node.items()})

    return build(tree)


def _feature(tfds, field: Field):
    doc = tfds.features.Documentation(desc=field.doc, value_range=field.value_range) if field.value_range else field.doc
    if field.kind == "tensor":
        return tfds.features.Tensor(shape=field.shape, dtype=np.dtype(field.dtype),
                                    encoding=tfds.features.Encoding.BYTES, doc=doc)
    if field.kind == "scalar":
        return tfds.features.Scalar(np.dtype(field.dtype), doc=doc)
    if field.kind == "text":
        return tfds.features.Text(doc=doc)
    if field.kind == "class":
        return tfds.features.ClassLabel(names=list(field.names), doc=doc)
    raise ValueError(f"feature {field.key}: unknown kind {field.kind!r}")


def layout_of(features) -> RecordLayout:
    """The layout of a ``FeaturesDict`` (a dataset's features.json); ValueError naming the feature for a
    layout the planned encoder and decoders do not take."""
    tfds = _tfds()

    def walk(fd, prefix: str):
        for name, feat in fd.items():
            key = f"{prefix}{name}"
            if isinstance(feat, tfds.features.FeaturesDict):
                yield from walk(feat, f"{key}/")
                continue
            if getattr(feat, "_optional", False):
                raise ValueError(f"feature {key}: optional features are not planned")
            docs = {"doc": feat.doc.desc or "", "value_range": feat.doc.value_range or ""}
            if isinstance(feat, tfds.features.Text):
                if feat.encoder is not None:
                    raise ValueError(f"feature {key}: Text with an encoder is not planned")
                yield Field(key, "text", **docs)
            elif isinstance(feat, tfds.features.ClassLabel):
                yield Field(key, "class", names=tuple(feat.names), **docs)
            elif type(feat) is tfds.features.Tensor or type(feat) is tfds.features.Scalar:
                dtype = np.dtype(feat.np_dtype)
                if dtype.kind not in "biuf" or dtype == np.uint64:
                    raise ValueError(f"feature {key}: {dtype} tensors are not planned")
                if feat.shape == () and feat._encoding == tfds.features.Encoding.NONE:  # noqa: SLF001
                    yield Field(key, "scalar", dtype.name, **docs)
                elif feat._encoding == tfds.features.Encoding.BYTES and all(  # noqa: SLF001
                        isinstance(d, int) for d in feat.shape) and feat.shape != ():
                    yield Field(key, "tensor", dtype.name, tuple(int(d) for d in feat.shape), **docs)
                else:
                    raise ValueError(f"feature {key}: only static BYTES-encoded tensors and scalars are planned")
            else:
                raise ValueError(f"feature {key}: {type(feat).__name__} is not planned")

    return RecordLayout(tuple(walk(features, "")))
