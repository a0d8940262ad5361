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


def test_readme_filter_example_returns_windows_of_fused_sources(local_run):
    """The README's `filter(dataset=..., max_missing=...)` line, run on the demo formats, keeps windows."""
    import re

    import sensorpipe

    call = re.search(r"= train\.filter\((dataset=\"(\w+)\", max_missing=([\d.]+))\)", README.read_text())
    dataset, max_missing = call.group(2), float(call.group(3))
    train = sensorpipe.open(local_run.output_dir)["train"]
    view = train.filter(dataset=dataset, max_missing=max_missing)
    assert len(view) > 0
    for ex in view:
        assert ex["sources"] == "metabolic_study,metabolic_cgm"     # the wearable and the CGM, fused
        mask = ex["mask"]
        assert (~mask[:, train.channels.index("glucose")]).sum() > 200
        assert (~mask[:, train.channels.index("heart_rate")]).sum() > 200
    report = Path(local_run.report).read_text()                     # the report shows the fused coverage per study
    table = report[report.index("Studies: fused coverage"):report.index("Fusion: readings outranked")]
    row = table[table.index("<td>metabolic_study</td>"):].split("</tr>")[0]
    persons, windows, multi = (int(x.replace(",", "")) for x in re.findall(r"<td>([\d,]+)</td>", row)[:3])
    assert persons == 3 and windows == multi > 0                    # every metabolic window has wearable and CGM
