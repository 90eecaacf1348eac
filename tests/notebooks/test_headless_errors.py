"""Every notebook, run headless on a missing dataset, config or checkpoint, exits non-zero and
says which file or setting is wrong (in the browser the same stop is a red callout). Before,
these runs hit a bare `mo.stop` and exited 0 with no output, so scripts carried on."""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runs import ROOT, export_html, headless

# (notebook, arguments, what stderr must name); {tmp} and {data} are filled in per test.
CASES = {
    "01 missing source": (
        "01_ingest.py",
        ["--source", "{tmp}/nosrc", "--out", "{tmp}/out"],
        "{tmp}/nosrc: source does not exist",
    ),
    "02 missing dataset": (
        "02_validate_data.py",
        ["--data", "{tmp}/nodata"],
        "{tmp}/nodata: dataset directory does not exist",
    ),
    "03 missing config": (
        "03_pretrain.py",
        ["--config", "{tmp}/nope.yaml"],
        "{tmp}/nope.yaml: config file does not exist",
    ),
    "03 missing dataset": (
        "03_pretrain.py",
        ["--config", "configs/tiny.yaml", "--set", "data.root={tmp}/nodata"],
        "data.root: dataset directory '{tmp}/nodata' does not exist",
    ),
    "04 no control": (
        "04_control_experiments.py",
        ["--train", "zz", "--data", "{tmp}/control"],
        "unknown control(s) ['zz']",
    ),
    "04 one unknown control": (
        "04_control_experiments.py",
        ["--train", "a,zz", "--data", "{tmp}/control"],
        "unknown control(s) ['zz']: --train takes some of a,b,c,d",
    ),
    "04 missing checkpoint": (
        "04_control_experiments.py",
        ["--checkpoint", "{tmp}/none.pt"],
        "{tmp}/none.pt: checkpoint does not exist",
    ),
    "05 missing checkpoint": (
        "05_autopsy.py",
        ["--checkpoint", "{tmp}/none.pt"],
        "{tmp}/none.pt: checkpoint does not exist",
    ),
    "06 missing config": (
        "06_finetune.py",
        ["--config", "{tmp}/nope.yaml"],
        "{tmp}/nope.yaml: config file does not exist",
    ),
    "06 missing checkpoint": (
        "06_finetune.py",
        [
            "--config",
            "configs/finetune_tiny.yaml",
            "--set",
            "pretrained.checkpoint={tmp}/none.pt",
            "--set",
            "data.root={data}",
        ],
        "pretrained.checkpoint: '{tmp}/none.pt' does not exist",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_headless_run_on_bad_input_exits_2_naming_it(
    case: str, tiny_dataset: Path, tmp_path: Path
) -> None:
    notebook, args, message = CASES[case]
    fill = {"tmp": str(tmp_path), "data": str(tiny_dataset)}
    done = headless(ROOT / "notebooks" / notebook, *(a.format(**fill) for a in args), expect=None)
    assert done.returncode == 2, (
        f"{case}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message.format(**fill) in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr  # the reason, not a stack
    assert not (tmp_path / "control").exists()  # 04 refused before writing its control cohort


def test_export_on_bad_input_fails_naming_it(tmp_path: Path) -> None:
    html = tmp_path / "03.html"
    done = export_html(
        ROOT / "notebooks" / "03_pretrain.py",
        html,
        "--config",
        str(tmp_path / "nope.yaml"),
        expect=None,
    )
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"{tmp_path}/nope.yaml: config file does not exist" in done.stdout + done.stderr


def test_headless_ingest_refused_by_the_library_exits_2_naming_it(
    eegmat_dir: Path, tmp_path: Path
) -> None:
    """Notebook 01's ingest cell: a refusal from `ingest` (here a non-empty, foreign --out)
    reaches the user as one error line, not a traceback."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("someone else's")
    done = headless(
        ROOT / "notebooks" / "01_ingest.py",
        "--source",
        str(eegmat_dir / "Subject00_1.edf"),
        "--out",
        str(out),
        "--window-samples",
        "512",
        expect=None,
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"error: {out}: output directory is not empty" in done.stderr
    assert "Traceback" not in done.stderr and (out / "notes.txt").read_text() == "someone else's"
