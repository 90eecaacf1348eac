"""notebooks/04_control_experiments.py: `marimo check`, a headless run that trains a control
config (tracked in MLflow), and an HTML export that picks that run from MLflow and shows
the floor ladder, the diagnostics table with thresholds and the verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from notebook_runs import MARIMO, ROOT, export_html, headless
from notebook_runs import run as _run

from eegwb.experiments.control import ControlCohortConfig, write_control_cohort
from eegwb.experiments.verdict import VERDICTS

NOTEBOOK = ROOT / "notebooks" / "04_control_experiments.py"


def test_marimo_check_passes() -> None:
    _run([str(MARIMO), "check", str(NOTEBOOK)])


def test_headless_training_then_export_from_mlflow(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_control_cohort(data, ControlCohortConfig(n_participants=8, n_windows=8))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report_json = tmp_path / "reports.json"
    done = headless(
        NOTEBOOK,
        "--train",
        "b",
        "--data",
        str(data),
        "--epochs",
        "2",
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
        "--tracking-uri",
        uri,
        "--experiment",
        "nb-control",
        "--json",
        str(report_json),
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("b: "))
    reports = json.loads(report_json.read_text())
    assert len(reports) == 1 and reports[0]["name"] == "b"
    verdict = reports[0]["verdict"]
    assert verdict["label"] in VERDICTS and verdict["title"] in line
    checkpoint = Path(reports[0]["checkpoint"])
    assert checkpoint.is_file() and checkpoint.parent.name == "control_b_mask100_temporal"
    assert reports[0]["inputs"] == {
        "mask_ratio": 1.0,
        "temporal_encoding": True,
        "spatial_encoding": False,
        "implicit_position": True,
        "mask_style": "mae",
        "target": "signal",
    }

    # Probing that checkpoint: an existing --json file is refused before any work, and
    # replaced with --overwrite true.
    probe = [
        sys.executable,
        str(NOTEBOOK),
        "--checkpoint",
        str(checkpoint),
        "--json",
        str(report_json),
    ]
    refused = _run(probe, expect=2)
    assert f"error: {report_json}: already exists" in refused.stderr
    assert f"{checkpoint.stem}: " not in refused.stdout  # no probe ran
    assert json.loads(report_json.read_text())[0]["name"] == "b"
    replaced = _run([*probe, "--overwrite", "true"])
    assert f"{checkpoint.stem}: " in replaced.stdout
    assert json.loads(report_json.read_text())[0]["name"] == checkpoint.stem

    # Export: the notebook finds the run in MLflow (its checkpoint tag) and reports on it.
    html = tmp_path / "04.html"
    export_html(NOTEBOOK, html, "--tracking-uri", uri, "--experiment", "nb-control")
    text = html.read_text()
    assert f"Verdict: {verdict['title']}" in text
    assert "application/vnd.vegalite" in text and "floor ladder" in text
    assert "marimo-table" in text and "channel_std" in text and "0.0000 (channels ignored)" in text
    assert checkpoint.stem in text  # the picked run is named after its checkpoint


def test_json_refuses_an_existing_file_before_any_work(tmp_path: Path) -> None:
    report_json = tmp_path / "reports.json"
    report_json.write_text("[]")
    done = headless(
        NOTEBOOK,
        "--train",
        "b",
        "--data",
        str(tmp_path / "control"),
        "--json",
        str(report_json),
        expect=2,
    )
    assert f"error: {report_json}: already exists (pass --overwrite true" in done.stderr
    assert not (tmp_path / "control").exists()  # the control cohort was not even written
    assert report_json.read_text() == "[]"
