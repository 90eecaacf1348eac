"""Every notebook's report (`eegwb report`, what scripts/demo.sh writes) opened in
Chromium with the network cut: its text, tables and charts show, nothing is fetched."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_harness import ROOT, block_network, eegwb, vega_charts, wait_until

from eegwb.data.cohorts import MUSE
from eegwb.data.synthetic import generate_cohort

TINY = "checkpoints/tiny/mamba2_eeg_d32_l2_m50_mae.pt"
# notebook -> (arguments, a heading its report shows, charts at least, exit codes accepted)
REPORTS = {
    "01_ingest": (
        "--source synthetic --out data/report01 --n-participants 2 --window-samples 256",
        "01 · Ingest",
        2,
        (0,),
    ),
    "02_validate_data": ("--data data/synthetic", "Overall:", 4, (0, 1)),  # 1: a check failed
    "03_pretrain": (
        "--config configs/tiny.yaml --set train.epochs=2 --set train.checkpoint_dir=x03 --no-track",
        "Result: completed",
        1,
        (0,),
    ),
    "04_control_experiments": (f"--checkpoint {TINY}", "Floor ladder", 1, (0,)),
    "05_autopsy": (
        f"--checkpoint {TINY} --max-sequences 8 --ig-steps 4 --baselines zero",
        "Detected issues",
        6,
        (0,),
    ),
    "06_finetune": (
        (
            "--config configs/finetune_tiny.yaml --set data.root=data/report06 --set train.epochs=2"
            " --set train.strategies=[frozen] --set train.checkpoint_dir=x06 --no-track --overwrite"
        ),
        "Did pretraining help?",
        1,
        (0,),
    ),
}


@pytest.mark.parametrize("notebook", list(REPORTS))
def test_report_opens_offline(notebook: str, browser, workspace: Path, tiny_checkpoint: Path):
    args, heading, charts, codes = REPORTS[notebook]
    if notebook == "06_finetune" and not (workspace / "data" / "report06").exists():
        generate_cohort(workspace / "data" / "report06", MUSE, progress=False)
    out = workspace / "reports" / f"{notebook}.html"
    notebook_path = str(ROOT / "notebooks" / f"{notebook}.py")
    done = eegwb(
        ["report", notebook_path, "-o", str(out), "--overwrite", "--", *args.split()], workspace
    )
    assert done.returncode in codes and out.is_file(), done.stderr[-3000:]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    blocked = block_network(page)
    page.goto(out.as_uri())
    wait_until(
        page,
        lambda: page.get_by_text(heading).count() > 0 and vega_charts(page) >= charts,
        what=f"{heading!r} and {charts} charts",
    )
    if notebook == "05_autopsy":
        assert page.locator(".output-area img").count() >= 1  # the topomaps
    assert page.locator("marimo-table").count() >= 1
    assert not blocked, f"requests to the network: {blocked[:5]}"
    assert not errors, errors
    context.close()
