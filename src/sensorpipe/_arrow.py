"""Small Arrow helpers shared by adapters and validation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def dictionary_codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list]:
    """Integer codes (-1 for null) and the distinct values of a string or dictionary column.

    Working on dictionary codes keeps string columns from being materialized
    row by row: a 300k-row unit has a handful of distinct files and fields.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.unify_dictionaries().combine_chunks() if pa.types.is_dictionary(col.type) else col.combine_chunks()
    enc = col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(pc.cast(col, pa.string()))
    codes = enc.indices.to_numpy(zero_copy_only=False)
    if enc.indices.null_count:
        codes = np.where(np.asarray(enc.indices.is_null().to_numpy(zero_copy_only=False)), -1, codes)
    return codes.astype(np.int64), [None if v is None else str(v) for v in enc.dictionary.to_pylist()]
