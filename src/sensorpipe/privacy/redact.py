"""A person's raw participant id taken out of the text their quarantined rows keep.

Quarantine keeps each row's original text for debugging, and that text can
hold the raw id: a Fitabase line that failed to parse starts with the
participant's ``Id``, a long table's unmapped row can name the person, a
shared file's line carries its ``participant`` cell. The pseudonym goes where
the id stood, so the row still reads as it did and still shows which person
it came from, without naming them. Only whole tokens are replaced (the id
with no letter or digit either side), so ``p1`` never rewrites ``p10``.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

#: The text columns of a stored quarantine table (schema/quarantine.py) that hold what the file held.
TEXT_COLUMNS = ("field", "time", "value")


def replace_raw_id(stored: pa.Table, raw_id: str, pseudonym: str) -> pa.Table:
    """``stored`` with every whole-token ``raw_id`` in its text columns replaced by ``pseudonym``."""
    if not raw_id or raw_id == pseudonym or not stored.num_rows:
        return stored
    for name in TEXT_COLUMNS:
        i = stored.schema.get_field_index(name)
        if i >= 0:
            stored = stored.set_column(i, name, _replaced(stored.column(i), raw_id, pseudonym))
    return stored


def _replaced(col: pa.ChunkedArray, raw_id: str, pseudonym: str) -> pa.ChunkedArray:
    if col.null_count == len(col) or not pc.any(pc.match_substring(col, raw_id)).as_py():
        return col      # the common case: one substring scan, no regex
    pattern = f"(^|[^A-Za-z0-9]){re.escape(raw_id)}([^A-Za-z0-9]|$)"
    for _ in range(2):  # a second pass for ids next to each other ("a,a"), whose shared separator one pass uses up
        col = pc.replace_substring_regex(col, pattern, rf"\1{pseudonym}\2")
    return col
