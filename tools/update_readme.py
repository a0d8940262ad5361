"""Regenerates the README's generated tables (channels, sources, features, label schema) from the code.

Run after adding a channel or an adapter: ``python tools/update_readme.py``.
A test fails when the README is out of date.
"""

import re
from pathlib import Path

from sensorpipe.channels import markdown_table
from sensorpipe.commands import coverage_matrix_markdown, features_markdown_table, sources_markdown_table
from sensorpipe.core.labels import markdown_table as labels_markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name} --> ... <!-- /{name} --> block")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


if __name__ == "__main__":
    text = README.read_text()
    text = replace_block(text, "channels-table", markdown_table())
    text = replace_block(text, "sources-table", sources_markdown_table())
    text = replace_block(text, "features-table", features_markdown_table())
    text = replace_block(text, "coverage-matrix", coverage_matrix_markdown())
    text = replace_block(text, "labels-table", labels_markdown_table())
    README.write_text(text)
