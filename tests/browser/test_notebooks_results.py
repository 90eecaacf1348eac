"""Notebooks 05 (autopsy) and 06 (fine-tune) in Chromium under `marimo run`."""

from __future__ import annotations

import re
from pathlib import Path

from browser_harness import chart_ink, marimo_server, set_field, vega_charts


def test_05_autopsy(page, workspace: Path, tiny_checkpoint: Path) -> None:
    with marimo_server("05_autopsy.py", workspace) as server:
        page.open(server.url)
        # a 2-epoch model collapses: the autopsy's red FAIL findings are its result
        page.assert_clean(server, findings="FAIL")
        text = page.outputs_text()
        assert str(tiny_checkpoint.relative_to(workspace)) in text and "Gradient flow" in text
        # bars, not an empty chart (a log axis whose domain held 0 drew only the legend)
        ink = chart_ink(page.page, "Gradient flow")
        assert ink is not None and ink > 3000, ink

        probed = re.search(r"sequences (\d+) of (\d+)", page.outputs_text())
        before = page.frames
        split = page.page.locator("select").filter(has=page.page.locator("option", has_text="all"))
        split.first.select_option("all")
        page.settle(since=before)
        now = re.search(r"sequences (\d+) of (\d+)", page.outputs_text())
        assert probed and now and int(now.group(2)) > int(probed.group(2)), (probed, now)

        charts_before = vega_charts(page.page)
        page.click("Run attributions and ablations")
        assert "Attributions and ablations" in page.progress
        assert vega_charts(page.page) > charts_before
        topomaps = page.page.locator(".output-area img")
        assert topomaps.count() >= 1
        # drawn at the size of the other charts, not the page's width
        assert max(box["width"] for box in (t.bounding_box() for t in topomaps.all())) <= 400
        page.screenshot("05_autopsy")
        page.assert_clean(server, findings="FAIL")


def test_06_finetune(page, workspace: Path, tiny_checkpoint: Path) -> None:
    with marimo_server("06_finetune.py", workspace) as server:
        page.open(server.url)
        page.assert_clean(server)
        assert "Loaded configs/finetune_tiny.yaml" in page.outputs_text()

        # a dataset that is not there: the notebook says how to make it and offers to
        set_field(page, "Dataset", "data/muse_browser")
        text = page.outputs_text()
        assert "No dataset yet" in text and "eegwb synth --out data/muse_browser" in text
        page.click("Write the synthetic Muse cohort there")
        text = page.outputs_text()
        assert "No dataset yet" not in text and "Fine-tunes frozen, full, scratch" in text
        set_field(page, "Epochs", "2")

        page.click("Fine-tune", timeout_s=400)
        assert "Fine-tuning" in page.progress
        text = page.outputs_text()
        assert "Did pretraining help?" in text and "paired bootstrap" in text
        assert "ROC on held-out participants (recording level)" in " ".join(page.chart_specs())
        before = page.frames
        page.page.get_by_role("combobox").last.select_option("participant")
        page.settle(since=before)
        assert "ROC on held-out participants (participant level)" in " ".join(page.chart_specs())
        assert vega_charts(page.page) >= 1
        page.screenshot("06_finetune")
        page.assert_clean(server)
