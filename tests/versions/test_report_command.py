"""``sensorpipe report OUT [--version V] [--against V2]``: the report of any recorded version, rebuilt from the
metadata database and the version's windows, compared with any other version."""

from __future__ import annotations

import re

import pytest

from sensorpipe.cli import main
from sensorpipe.runners.driver import run_pipeline
from tests.versions.conftest import tiny_config


@pytest.fixture(scope="module")
def two_versions(tiny_sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    first = run_pipeline(str(tiny_config(tiny_sources, out, name="report-1.yaml")))
    second = run_pipeline(str(tiny_config(tiny_sources, out, name="report-2.yaml", version="1.0.1",
                                          release_notes="second")))
    return out, first, second


def _drift(page: str) -> str:
    return page[page.index('<section id="drift">'):page.index('<section id="details">')]


def test_the_run_compares_with_the_version_before_it(two_versions):
    out, first, second = two_versions
    page = (out / "report.html").read_text()       # the second run's
    assert f"<strong>1.0.1</strong> ({second.fingerprint[:12]}) against <strong>1.0.0</strong> " \
           f"({first.fingerprint[:12]})" in _drift(page)
    assert "this run, measured when the shards were complete" in page


def test_report_rebuilds_any_version_against_any_other(two_versions, tmp_path, capsys):
    out, first, second = two_versions
    target = tmp_path / "old.html"
    assert main(["report", str(out), "--version", "1.0.0", "--against", "1.0.1", "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    page = target.read_text()
    assert re.search(r"<h1>tiny 1\.0\.0</h1>", page) and f"run <code>{first.run_id}</code>" in page
    assert "regenerated from sqlite:///" in page
    drift = _drift(page)
    assert "<strong>1.0.0</strong>" in drift and "against <strong>1.0.1</strong>" in drift
    windows = re.search(r"<tr><td>all</td><td>([\d,]+)</td><td>([\d,]+)</td><td>0</td></tr>", drift)
    assert windows and windows.group(1) == windows.group(2) == str(sum(first.split_sizes.values()))
    channels = page[page.index('<section id="channels">'):page.index('<section id="missingness">')]
    assert channels.count('class="plot"') == 2 and 'aria-label="histogram of heart_rate by split"' in channels
    # default: the newest version against the one before it, into OUT/report.html
    assert main(["report", str(out)]) == 0
    newest = (out / "report.html").read_text()
    assert "<h1>tiny 1.0.1</h1>" in newest and "against <strong>1.0.0</strong>" in _drift(newest)


def test_report_names_what_is_wrong(two_versions, capsys):
    out, _, _ = two_versions
    assert main(["report", str(out), "--version", "1.0.0", "--against", "1.0.0"]) == 2
    assert "--against 1.0.0 is the version being reported; name another version" in capsys.readouterr().err
    assert main(["report", str(out), "--version", "9.9.9"]) == 2
    assert "version '9.9.9' is not recorded; recorded versions (label, fingerprint): 1.0.1" in capsys.readouterr().err
    assert main(["report", str(out / "nowhere")]) == 2
    assert "metadata.db does not exist" in capsys.readouterr().err
