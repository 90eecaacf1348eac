"""notebooks/03_pretrain.py: `marimo check`, a headless training run, and an HTML export whose
loss chart, per-epoch table and MLflow run are present."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from notebook_runs import MARIMO, ROOT, export_html, headless
from notebook_runs import run as _run

from eegwb.config import dump_yaml, load_config
from eegwb.train.config import PretrainConfig

NOTEBOOK = ROOT / "notebooks" / "03_pretrain.py"
TINY = [
    "model.d_model=16",
    "model.n_layers=1",
    "model.headdim=8",
    "model.d_state=8",
    "model.chunk_size=8",
    "model.window_samples=64",
    "data.channels=null",
    "data.max_windows=4",
    "data.split_fractions=[0.75, 0.25, 0.0]",
    "train.batch_size=8",
    "train.epochs=2",
]


def test_marimo_check_passes() -> None:
    _run([str(MARIMO), "check", str(NOTEBOOK)])


def _tiny_config(write_cohort: Callable[..., Path], tmp_path: Path, *overrides: str) -> Path:
    """configs/tiny.yaml made tinier, over a 4-participant cohort, written to nb.yaml."""
    root = write_cohort(
        tmp_path / "data",
        participants=["01", "02", "03", "04"],
        n_windows=8,
        window_samples=64,
        sfreq=128.0,
    )
    extra = [f"data.root={root}", f"train.checkpoint_dir={tmp_path / 'ckpt'}", *overrides]
    config = tmp_path / "nb.yaml"
    config.write_text(
        dump_yaml(load_config(PretrainConfig, ROOT / "configs" / "tiny.yaml", TINY + extra))
    )
    return config


def test_headless_run_and_html_export(write_cohort: Callable[..., Path], tmp_path: Path) -> None:
    config = _tiny_config(write_cohort, tmp_path)

    # Headless: trains without a click; --set and --no-track override the config as they
    # do for `eegwb pretrain`.
    done = headless(
        NOTEBOOK, "--config", str(config), "--set", "masking.mask_ratio=0.75", "--no-track", "true"
    )
    assert "pretraining: best_val_loss=" in done.stdout and "stopped=completed" in done.stdout
    best = tmp_path / "ckpt" / "mamba2_eeg_d16_l1_m75_mae.pt"  # the --set mask ratio was used
    state = torch.load(best, weights_only=True)
    assert (
        state["config"]["masking"]["mask_ratio"] == 0.75
        and state["config"]["tracking"]["enabled"] is False
    )

    # Export: the report holds the chart, the per-epoch table and the MLflow run.
    html = tmp_path / "03_pretrain.html"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export_html(
        NOTEBOOK,
        html,
        "--config",
        str(config),
        "--set",
        f"tracking.uri={uri}",
        "--set",
        "tracking.experiment=nb-test",
    )
    text = html.read_text()
    assert "application/vnd.vegalite" in text and "loss per epoch \\u00b7 mamba2 d16" in text
    assert "marimo-table" in text and "val_loss" in text and "var_ratio" in text
    assert "Result: completed after 2 epochs" in text
    # Rendered markdown is stored HTML-escaped: <code> is \u003Ccode\u003E.
    assert re.search(r"MLflow: run \\u003Ccode\\u003E[0-9a-f]{32}", text), "MLflow run id missing"
    assert "kernel path \\u003Cstrong\\u003Ereference" in text


def test_headless_rerun_needs_overwrite(write_cohort: Callable[..., Path], tmp_path: Path) -> None:
    """With train.overwrite false in the config, a second run refuses to replace the first
    run's checkpoints, and `--overwrite true` (the widget the error points to) replaces them."""
    config = _tiny_config(write_cohort, tmp_path, "train.overwrite=false", "tracking.enabled=false")
    cmd = [sys.executable, str(NOTEBOOK), "--config", str(config)]
    best = tmp_path / "ckpt" / "mamba2_eeg_d16_l1_m50_mae.pt"

    _run(cmd)
    first = best.stat().st_mtime_ns
    refused = _run(cmd, expect=None)
    assert refused.returncode != 0
    assert (
        f"{best}" in refused.stderr
        and "already exists" in refused.stderr
        and "--overwrite" in refused.stderr
    )
    assert best.stat().st_mtime_ns == first  # untouched

    done = _run([*cmd, "--overwrite", "true"])
    assert "stopped=completed" in done.stdout
    assert best.stat().st_mtime_ns > first
