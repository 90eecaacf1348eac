"""Notebooks 03 (pretrain) and 04 (control experiments) in Chromium under `marimo run`."""

from __future__ import annotations

from pathlib import Path

from browser_harness import marimo_server, set_field, vega_charts


def test_03_pretrain(page, workspace: Path) -> None:
    with marimo_server("03_pretrain.py", workspace) as server:
        page.open(server.url)
        page.assert_clean(server)
        text = page.outputs_text()
        # a CPU gets the tiny config, and the time a run takes is said before it starts
        assert "Loaded configs/tiny.yaml" in text
        assert "A run will take about" in text and "12 epochs" in text

        set_field(page, "Epochs", "3")
        assert "3 epochs" in page.outputs_text()

        page.click("Train", timeout_s=300)
        assert "Pretraining" in page.progress
        text = page.outputs_text()
        assert "Result: completed after 3 epochs" in text
        assert vega_charts(page.page) >= 1
        specs = " ".join(page.chart_specs())
        assert "dataset mean floor" in specs and "position floor" in specs  # reference lines
        page.screenshot("03_pretrain")
        page.assert_clean(server)


def test_04_control_experiments(page, workspace: Path, tiny_checkpoint: Path) -> None:
    with marimo_server("04_control_experiments.py", workspace) as server:
        page.open(server.url)
        page.assert_clean(server)
        assert page.page.locator('input[aria-label*=">Checkpoint</span>"]').count() == 0

        before = page.frames
        page.page.get_by_role("radio", name="a checkpoint").check()
        page.settle(since=before)
        set_field(page, "Checkpoint", str(tiny_checkpoint.relative_to(workspace)))

        page.click("Run controls")
        assert any(title.startswith("Probing") for title in page.progress), page.progress
        text = page.outputs_text()
        assert "Floor ladder" in text and "Verdict:" in text
        assert "worth -" not in text and "%" in text  # no negative share of the variance
        assert vega_charts(page.page) >= 1
        page.screenshot("04_control_experiments")
        page.assert_clean(server)
