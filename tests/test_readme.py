"""The README opens with the two commands and shows the channel registry as the code defines it."""

from pathlib import Path

from sensorpipe.channels import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_commands():
    head = "\n".join(README.read_text().splitlines()[:20])
    assert "make demo" in head and "make test" in head


def test_readme_channel_table_matches_registry():
    assert markdown_table() in README.read_text()


def test_readme_sources_table_matches_adapters():
    from sensorpipe.commands import sources_markdown_table

    assert sources_markdown_table() in README.read_text(), "regenerate the README table: sources_markdown_table()"


def test_readme_feature_set_and_matrix_match_code():
    from sensorpipe.commands import coverage_matrix_markdown, features_markdown_table

    text = README.read_text()
    assert features_markdown_table() in text and coverage_matrix_markdown() in text
