"""`marimo edit`: a notebook opened for editing runs its cheap cells at once (marimo 0.25
would leave every cell "outdated" until Run all; pyproject.toml's [tool.marimo.runtime])."""

from __future__ import annotations

from pathlib import Path

from browser_harness import marimo_server


def test_edit_runs_the_cheap_cells_on_open(page, workspace: Path) -> None:
    with marimo_server("03_pretrain.py", workspace, mode="edit") as server:
        page.open(server.url)
        ran = [cell for cell, status in page.status.items() if status == "idle"]
        assert len(ran) >= 8, page.status
        text = page.outputs_text()
        assert "Loaded configs/tiny.yaml" in text and "A run will take" in text
        assert "Press Train to start pretraining." in text  # the expensive cell waits
        page.assert_clean(server)
