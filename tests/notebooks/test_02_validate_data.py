"""notebooks/02_validate_data.py: `marimo check`, a headless run that must exit 1 on leaky
splits, and an HTML export of a clean dataset showing checks, charts and the topomap."""

from __future__ import annotations

import json

from notebook_runs import MARIMO, ROOT, export_html, headless
from notebook_runs import run as _run

NOTEBOOK = ROOT / "notebooks" / "02_validate_data.py"


def test_marimo_check_passes():
    _run([str(MARIMO), "check", str(NOTEBOOK)])


def test_headless_run_exits_1_on_leaky_splits(tiny_dataset, tmp_path):
    splits = tmp_path / "leaky.json"
    splits.write_text(json.dumps({"splits": {"train": ["01", "02/1"], "test": ["02/2", "03"]}}))
    done = headless(NOTEBOOK, "--data", str(tiny_dataset), "--splits", str(splits), expect=1)
    assert "FAIL  leakage/participant [level 1]: 1 participants in two splits" in done.stdout
    assert "participant=02" in done.stdout


def test_headless_shortcut_audit_flags_eegmat_length(eegmat_small):
    done = headless(NOTEBOOK, "--data", str(eegmat_small), "--label", "task", expect=1)
    assert (
        "FAIL  shortcut/n_windows: length of the unit (windows) alone predicts the label"
        in done.stdout
    )
    assert "FAIL  shortcut/position_s" in done.stdout


def test_export_html_of_a_clean_dataset(tiny_dataset, tmp_path):
    html = tmp_path / "02.html"
    export_html(NOTEBOOK, html, "--data", str(tiny_dataset), "--label", "remission")
    text = html.read_text()
    assert "default split_by_participant" in text  # says where the splits came from
    for needle in (
        "leakage/near_duplicate",
        "quality/non_finite",
        "Power spectrum per split",
        "per channel (a tick per file, the dot: median)",
        "label distribution per split",
        "image/png",
        "Shortcut audit: the label from nuisance variables alone",
        "shortcut/audit",  # 3 participants: too few to cross-validate over, and it says so
    ):
        assert needle in text, needle
    assert "Validation status" in text and "MarimoExceptionRaisedError" not in text
