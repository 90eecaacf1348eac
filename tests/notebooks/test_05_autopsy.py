"""notebooks/05_autopsy.py: `marimo check`, a headless run on a tiny checkpoint (cheap sections,
then IG and ablations without a click, report written), and the HTML export showing the
findings and every section."""

from __future__ import annotations

import importlib.util

import pytest
from notebook_runs import MARIMO, ROOT, export_html, headless
from notebook_runs import run as _run

NOTEBOOK = ROOT / "notebooks" / "05_autopsy.py"
_spec = importlib.util.spec_from_file_location(
    "autopsy_helpers", ROOT / "tests" / "experiments" / "autopsy_helpers.py"
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb05")
    return helpers.pretrained_checkpoint(helpers.tiny_cohort(tmp / "data"), tmp / "ckpt")


def test_marimo_check_passes():
    _run([str(MARIMO), "check", str(NOTEBOOK)])


def test_headless_run_then_export_html(checkpoint, tmp_path):
    args = [
        "--checkpoint",
        str(checkpoint),
        "--max-sequences",
        "6",
        "--ig-steps",
        "8",
        "--baselines",
        "zero",
    ]
    out = tmp_path / "report"
    done = headless(NOTEBOOK, *args, "--out", str(out))
    assert "autopsy:" in done.stdout and f"report written to {out}" in done.stdout
    assert "FAIL predictions: Collapse" in done.stdout  # an untrained model predicts ~ a constant
    md = (out / "report.md").read_text()
    for title in (
        "Predictions vs targets",
        "Gradient flow",
        "Activations",
        "Attributions (Integrated Gradients)",
        "Ablations",
        "Failure modes",
    ):
        assert f"## {title}" in md

    page = tmp_path / "05_autopsy.html"
    export_html(NOTEBOOK, page, *args)
    text = page.read_text()
    assert "Detected issues" in text and "Collapse" in text
    assert (
        "Attributions (Integrated Gradients)" in text and "Ablations" in text
    )  # ran without a click
    assert "completeness_gap_zero" in text and "image/png" in text  # numbers and the topomap
