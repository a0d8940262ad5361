"""examples/explore.ipynb runs headless against the shared pipeline run and shows what it promises."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (pip install -e '.[dev]')")
import nbformat  # noqa: E402  (installed with nbclient)

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "explore.ipynb"


def _outputs(nb, tag: str) -> list[dict]:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert cells, f"no cell tagged {tag!r} in {NOTEBOOK.name}"
    return [o for c in cells for o in c.get("outputs", [])]


def _text(outputs: list[dict]) -> str:
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        else:
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _pngs(outputs: list[dict]) -> list[str]:
    return [o["data"]["image/png"] for o in outputs
            if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]


def test_saved_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, "save explore.ipynb with outputs cleared"


def test_explore_notebook_runs(local_run, monkeypatch, tmp_path):
    import sensorpipe

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # probe (in-memory only): the kernel must run this interpreter, i.e. the venv's
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL-PYTHON', sys.executable)",
                                              metadata={"tags": ["probe"]}))
    monkeypatch.setenv("SENSORPIPE_DATASET", str(local_run.output_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel's temporary folder: what the notebook writes there must be gone when it has run
    scratch = tmp_path / "kernel-tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on any failing cell
    print(f"notebook ran in {time.perf_counter() - t0:.1f} s")

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    leftovers = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*") if "window" in p.name)
    assert not leftovers, f"the notebook left files in the temporary folder: {leftovers}"

    probe = _text(_outputs(nb, "probe")).split("KERNEL-PYTHON", 1)[1].strip()
    assert os.path.realpath(probe) == os.path.realpath(sys.executable), probe

    # it used the dataset it was given, not a freshly generated one
    ds = sensorpipe.open(local_run.output_dir)
    assert repr(ds) in _text([o for c in nb.cells for o in c.get("outputs", [])])

    # window plot and heatmap are displayed PNG images
    for tag in ("window-plot", "heatmap"):
        pngs = _pngs(_outputs(nb, tag))
        assert len(pngs) == 1 and len(pngs[0]) > 1000, f"{tag}: expected one PNG image"

    # the caption printed is a real train caption; labels and stats tables are shown
    caption_out = _outputs(nb, "caption")
    printed = {lvl: next(ln for ln in _text(caption_out).splitlines() if ln.startswith(f"{lvl}: "))[len(lvl) + 2:]
               for lvl in ("statistical", "structural", "semantic")}
    windows = [w for w in ds["train"] if w["caption_statistical"] == printed["statistical"]]
    assert len(windows) == 1 and printed["statistical"]
    assert all(windows[0][f"caption_{lvl}"] == text for lvl, text in printed.items())
    n_claims = len(json.loads(windows[0]["caption_claims"]))
    assert f"{n_claims} claims, 0 not supported by the data" in _text(caption_out)
    assert "condition" in _text(caption_out) and "sleep_stage_sequence" in _text(caption_out)
    stats_text = _text(_outputs(nb, "stats"))
    assert all(ch in stats_text for ch in ds.channels) and "missing_ratio" in stats_text
    assert "days" in _text(_outputs(nb, "pick-participant"))
