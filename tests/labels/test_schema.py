"""The unified label schema: its README table is generated from the code, and processors stay inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensorpipe.core.labels import LABELS, LABEL_SCHEMA_VERSION, markdown_table
from sensorpipe.labels.base import LabelProcessor

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_label_table_matches_the_schema():
    table = markdown_table()
    assert table in README.read_text(), "regenerate the README: python tools/update_readme.py"
    assert f"Schema version {LABEL_SCHEMA_VERSION}." in table
    assert table.count("\n| `") == len(LABELS)
    assert "| `pregnancy_week` | float | weeks | participant, by date |" in table


def test_a_processor_cannot_produce_a_label_outside_the_schema():
    with pytest.raises(TypeError, match="not in the unified label schema"):
        type("Bogus", (LabelProcessor,), {"name": "bogus_labels", "produces": ("mood",)})
