"""Fixtures of the browser tests: one Chromium per worker, a fresh page per test, and a
workspace laid out like a checkout (configs/, data/synthetic, ../shared) for the apps to
run in, so nothing is written into the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_harness import LAUNCH_ARGS, ROOT, SHARED, Watched, chromium_path, eegwb

from eegwb.data.synthetic import SynthConfig, generate_cohort


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Watched(context.new_page())
    context.close()


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout-like folder: configs/ (the repository's), a small default-shaped cohort
    in data/synthetic (6 people, 8 windows of 2048 samples: what configs/tiny.yaml reads)
    and ../shared beside it, as CI has it."""
    base = tmp_path_factory.mktemp("browser")
    ws = base / "ws"
    ws.mkdir()
    (ws / "configs").symlink_to(ROOT / "configs")
    if SHARED.is_dir():
        (base / "shared").symlink_to(SHARED)
    generate_cohort(
        ws / "data" / "synthetic",
        SynthConfig(n_participants=6, runs_per_participant=1, n_windows=8),
        progress=False,
    )
    return ws


@pytest.fixture(scope="session")
def tiny_checkpoint(workspace: Path) -> Path:
    """configs/tiny.yaml trained for 2 epochs on the workspace cohort (~6 s)."""
    args = [
        "pretrain",
        "--config",
        "configs/tiny.yaml",
        "--set",
        "train.epochs=2",
        "--set",
        "tracking.enabled=false",
    ]
    done = eegwb(args, workspace, timeout_s=300)
    assert done.returncode == 0, done.stderr[-3000:]
    path = workspace / "checkpoints" / "tiny" / "mamba2_eeg_d32_l2_m50_mae.pt"
    assert path.is_file(), done.stdout
    return path
