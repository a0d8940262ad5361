"""The report of a demo-config run, rendered in headless Chromium: it loads offline with no console error,
every section is there, and its figures are drawn (Debian's ``chromium``; .ci/run installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sensorpipe.quality.report import SECTIONS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=ARGS)
        yield b
        b.close()


def test_the_report_renders_offline_with_every_section_and_its_plots(browser, local_run, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(Path(local_run.report).resolve().as_uri())
    page.wait_for_load_state("load")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000 and errors == []
    assert all(u.startswith("file://") for u in requests), requests        # nothing fetched from a network
    for anchor, title in SECTIONS:
        box = page.locator(f"section#{anchor}").bounding_box()
        assert box and box["height"] > 20, anchor
        assert page.locator(f"nav a[href='#{anchor}']").inner_text() == title
    sizes = page.eval_on_selector_all(
        "svg.plot", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })")
    drawn = [s for s in sizes if s[0] > 50 and s[1] > 50]
    assert len(drawn) >= 8 and len(drawn) == len(sizes)
    per_section = {a: page.locator(f"section#{a} svg.plot").count() for a, _ in SECTIONS}
    channels = len(local_run_channels(local_run))
    assert per_section["channels"] == channels and per_section["correlation"] == 1
    assert per_section["missingness"] == 1 and per_section["examples"] == 4     # one per study of the demo
    page.close()


def local_run_channels(run) -> tuple[str, ...]:
    import sensorpipe

    ds = sensorpipe.open(run.output_dir)
    return tuple(ch for ch in ds.channels if any(s.channel == ch and s.count for s in _stats(run)))


def _stats(run):
    from sensorpipe.metadata.records import ChannelStatRecord
    from sensorpipe.metadata.store import MetadataStore

    store = MetadataStore(run.metadata_url)
    try:
        return [ChannelStatRecord(**r) for r in store.channel_stats(run.fingerprint)]
    finally:
        store.close()
