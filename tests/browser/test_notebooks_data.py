"""Notebooks 01 (ingest) and 02 (validate) as a researcher meets them: `marimo run` in
Chromium, a widget moved, the run button pressed, a chart at the end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_harness import SHARED, chart_ink, marimo_server, set_field, vega_charts

EEGMAT = SHARED / "data" / "eegmat"


@pytest.fixture
def two_recordings(workspace: Path) -> str:
    """A folder of two EEGMAT recordings (links), so an ingest takes seconds."""
    if not EEGMAT.is_dir():
        pytest.skip(f"real EEG not found at {EEGMAT} (../shared/data/eegmat beside the repo)")
    folder = workspace / "two_recordings"
    folder.mkdir(exist_ok=True)
    for name in ("Subject00_1.edf", "Subject00_2.edf"):
        if not (folder / name).exists():
            (folder / name).symlink_to(EEGMAT / name)
    return folder.name


def test_01_ingest(page, workspace: Path, two_recordings: str) -> None:
    with marimo_server("01_ingest.py", workspace) as server:
        page.open(server.url)
        page.assert_clean(server)
        assert "Found 48 recordings" in page.outputs_text()  # the default: ../shared's EEGMAT

        set_field(page, "Paths (comma-separated)", two_recordings)
        assert "Found 2 recordings" in page.outputs_text()

        page.click("Ingest")
        assert "Ingesting" in page.progress
        text = page.outputs_text()
        # one progress step per recording found: "2 / 2", not "2 / 1" (one folder)
        assert re.search(r"\b2 / 2\b", text), text[-2000:]
        assert re.search(r"Dataset data/eegmat\s*: 2 recordings, 1 participants", text)
        assert vega_charts(page.page) >= 1
        page.screenshot("01_ingest")
        page.assert_clean(server)


def test_02_validate_data(page, workspace: Path) -> None:
    with marimo_server("02_validate_data.py", workspace) as server:
        page.open(server.url)
        page.assert_clean(server)
        assert "fractions [0.8, 0.1, 0.1]" in page.outputs_text()

        before = page.frames
        page.page.get_by_role("slider").first.focus()
        for _ in range(2):
            page.page.keyboard.press("ArrowRight")
        page.settle(since=before)
        assert "fractions [0.7, 0.15, 0.15]" in page.outputs_text()

        page.click("Validate")
        assert any(title.startswith("Data quality") for title in page.progress), page.progress
        text = page.outputs_text()
        assert "Overall:" in text and "Label distribution per split" in text
        assert vega_charts(page.page) >= 4  # labels, two per-channel charts, spectra
        assert page.page.locator(".output-area img").count() >= 1  # the topomap
        # grouped bars of a visible width, not hairlines beside the ticks (those drew
        # ~600 coloured pixels, legend included)
        ink = chart_ink(page.page, "Label distribution per split")
        assert ink is not None and ink > 3000, ink
        page.screenshot("02_validate_data")
        page.assert_clean(server)
