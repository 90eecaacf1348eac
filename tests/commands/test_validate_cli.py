"""`eegwb validate`: exit 0 when nothing fails, 1 when something does, 2 on unreadable input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from eegwb.cli import main
from eegwb.data.layout import write_recording


def test_clean_dataset_default_split_exits_0(tiny_dataset, capsys):
    assert main(["validate", str(tiny_dataset)]) == 0
    out = capsys.readouterr().out
    assert "no --splits given: auditing the default split_by_participant" in out
    assert "PASS  leakage/participant" in out and "0 failed" in out
    assert "shortcut/" not in out  # no --label, no shortcut audit


def test_leaky_splits_file_exits_1_and_writes_json(tiny_dataset, tmp_path, capsys):
    splits = tmp_path / "splits.json"
    splits.write_text(
        json.dumps(
            {
                "dataset": str(tiny_dataset),
                "splits": {"train": ["01", "02/1"], "test": ["02/2", "03"]},
            }
        )
    )
    report = tmp_path / "report.json"
    assert main(["validate", "--splits", str(splits), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  leakage/participant [level 1]: 1 participants in two splits" in out
    payload = json.loads(report.read_text())
    assert payload["status"] == "fail" and payload["leakage"]["leaky"] is True
    failing = {c["name"] for c in payload["checks"] if c["status"] == "fail"}
    assert failing == {"leakage/participant"}
    assert payload["splits"]["train"]["participants"] == ["01", "02"]
    # No silent overwrite of the report, refused before the audit runs; --overwrite replaces it.
    assert main(["validate", "--splits", str(splits), "--json", str(report)]) == 2
    captured = capsys.readouterr()
    assert "already exists" in captured.err and "FAIL" not in captured.out
    assert (
        main(
            [
                "validate",
                "--splits",
                str(splits),
                "--json",
                str(report),
                "--overwrite",
                "--ids-only",
            ]
        )
        == 1
    )


def test_bad_selector_exits_2_naming_it(tiny_dataset, tmp_path, capsys):
    splits = tmp_path / "bad.json"
    splits.write_text(json.dumps({"splits": {"train": ["01"], "test": ["09"]}}))
    assert main(["validate", str(tiny_dataset), "--splits", str(splits)]) == 2
    assert "'09'" in capsys.readouterr().err


def test_nan_samples_exit_1_from_a_subprocess(tmp_path, recording_table):
    rng = np.random.default_rng(0)
    for p in ("01", "02", "03"):
        signals = {ch: rng.standard_normal((4, 64)).astype(np.float32) for ch in ("CZ", "PZ")}
        if p == "02":
            signals["PZ"][1, 3:9] = np.nan
        write_recording(tmp_path, recording_table(p, "1", signals))
    run = subprocess.run(
        [sys.executable, "-m", "eegwb", "validate", str(tmp_path), "--ids-only"],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL  quality/non_finite" in run.stdout and "sub-02_run-1.parquet" in run.stdout


@pytest.mark.parametrize("threshold", ["1.5", "0"])
def test_bad_threshold_exits_2(tiny_dataset, threshold, capsys):
    assert main(["validate", str(tiny_dataset), "--near-dup-threshold", threshold]) == 2
    assert "threshold" in capsys.readouterr().err


def test_label_adds_the_shortcut_audit(eegmat_small, eegmat_dir, tmp_path, capsys):
    """Real EEG: rest recordings are ~3x longer than arithmetic ones; --label task says so."""
    report = tmp_path / "report.json"
    code = main(
        [
            "validate",
            str(eegmat_small),
            "--ids-only",
            "--label",
            "task",
            "--json",
            str(report),
            "--labels",
            str(eegmat_dir / "subject-info.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL  shortcut/n_windows: length of the unit (windows) alone predicts the label" in out
    assert "PASS  shortcut/metadata:Age" in out
    payload = json.loads(report.read_text())
    rows = {r["check"]: r for r in payload["shortcuts"]}
    assert (
        rows["shortcut/n_windows"]["auroc"] == pytest.approx(1.0)
        and rows["shortcut/n_windows"]["unit"] == "recording"
    )
    assert rows["shortcut/position_s"]["unit"] == "window"
    # an unknown label is bad input (exit 2)
    assert main(["validate", str(eegmat_small), "--ids-only", "--label", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
