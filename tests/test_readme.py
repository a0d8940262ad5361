"""The README opens with the two commands, shows the registries as the code defines them, and every example
in it runs as written after ``make demo``, from the checkout root.

The block test runs the demo once into a temporary folder as ``make demo`` does (``sensorpipe demo --dir
demo_out``) and runs every ``bash``/``console`` and ``python`` block there, in README order, so the README's
own paths (``demo_out/out``, ``tests/sources/dummy_data/...``: ``tests`` is linked in) are real. A python
block runs as ``python -c`` would run it pasted; a shell block runs under ``bash -e`` with ``sensorpipe``
meaning this checkout's CLI. A block that cannot run here says why in its first line
(``# readme-test: skip (reason)``) and is reported as skipped with that reason.
"""

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import sensorpipe
from sensorpipe.channels import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
RUN = ("bash", "console", "python")
SHOWN = ("text", "yaml", "toml")   # configs, file contents, synopses: shown, not run
SKIP = re.compile(r"^# readme-test: skip \((.+)\)$", re.M)


@dataclass(frozen=True)
class Block:
    line: int    # of the opening fence
    lang: str
    body: str


def readme_blocks() -> list[Block]:
    """Every fenced block of the README, in order."""
    text = README.read_text()
    return [Block(text[:m.start()].count("\n") + 1, m.group(1), m.group(2))
            for m in re.finditer(r"^```(\S*)\n(.*?)^```[ \t]*$", text, re.M | re.S)]


def test_every_readme_block_says_whether_it_runs():
    """A block without a language (or an unknown one) would escape the block test."""
    odd = [(b.line, b.lang) for b in readme_blocks() if b.lang not in RUN + SHOWN]
    assert not odd, f"README blocks need one of {RUN + SHOWN} after the fence: {odd}"
    assert sum(b.lang in RUN for b in readme_blocks()) >= 8


@pytest.fixture(scope="session")
def readme_root(tmp_path_factory) -> Path:
    """A folder laid out as the checkout root after ``make demo``: ``demo_out/`` written by the demo, ``tests``
    linked to this checkout's."""
    root = tmp_path_factory.mktemp("readme")
    (root / "tests").symlink_to(README.parent / "tests", target_is_directory=True)
    done = subprocess.run([sys.executable, "-m", "sensorpipe", "demo", "--dir", "demo_out"], cwd=root,
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"dataset   {root / 'demo_out' / 'out'}" in done.stdout   # where the README says the demo writes
    return root


def _env() -> dict[str, str]:
    src = str(Path(sensorpipe.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PY": sys.executable, "MPLBACKEND": "Agg"}


@pytest.mark.parametrize("block", [b for b in readme_blocks() if b.lang in RUN], ids=lambda b: f"line{b.line}")
def test_readme_block_runs_as_written(block, readme_root):
    skip = SKIP.search(block.body)
    if skip:
        pytest.skip(f"README line {block.line}: {skip.group(1)}")
    if block.lang == "python":
        cmd = [sys.executable, "-c", block.body]
    else:
        cmd = ["bash", "-c", 'set -eo pipefail\nsensorpipe() { "$PY" -m sensorpipe "$@"; }\n' + block.body]
    done = subprocess.run(cmd, cwd=readme_root, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (f"README block at line {block.line} ({block.lang}) failed:\n{block.body}\n"
                                  f"--- stderr ---\n{done.stderr[-4000:]}")


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
