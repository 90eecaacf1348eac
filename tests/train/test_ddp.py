"""DDP: `torchrun --nproc_per_node=2 -m eegwb pretrain` on gloo (CPU) follows the same loss
curve as one process with the same global batch, and only rank 0 writes and logs.

Masks are drawn per process, so the two runs can only agree step for step when masking is
deterministic: mask_ratio 1.0 with MAE masking (every real window zeroed), dropout 0, and
sequences of equal length (so each rank's masked-position mean has the same weight).
Tolerance: 1e-5 relative on every step's loss, 1e-5 absolute on every parameter; the
measured gap is ~1e-7 (float32 summation order of the gradient all-reduce).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from pretrain_helpers import REPO, mlflow_store, subprocess_env, tiny_overrides

from eegwb.config import load_config
from eegwb.train.checkpoints import load_checkpoint
from eegwb.train.config import PretrainConfig
from eegwb.train.pretrain import pretrain
from eegwb.train.tracking import find_runs

DETERMINISTIC = [
    "masking.mask_ratio=1.0",
    "masking.style=mae",
    "model.dropout=0.0",
    "data.max_windows=4",
    "train.epochs=2",
    "train.batch_size=8",
]


def test_two_gloo_processes_match_one(
    write_cohort: Callable[..., Path], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = write_cohort(
        tmp_path / "data",
        participants=[f"{i:02d}" for i in range(1, 9)],
        n_windows=8,
        window_samples=64,
        sfreq=128.0,
    )
    overrides = tiny_overrides(root, tmp_path / "one", window_samples=64) + DETERMINISTIC
    single = pretrain(
        load_config(PretrainConfig, REPO / "configs" / "tiny.yaml", overrides), bar=False
    )

    uri = mlflow_store(tmp_path_factory)
    ddp_sets = (
        tiny_overrides(root, tmp_path / "two", window_samples=64)
        + DETERMINISTIC
        + ["tracking.enabled=true", f"tracking.uri={uri}", "tracking.experiment=ddp-test"]
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "eegwb",
        "pretrain",
        "--config",
        str(REPO / "configs" / "tiny.yaml"),
        "--no-bar",
    ]
    for item in ddp_sets:
        cmd += ["--set", item]
    proc = subprocess.run(
        cmd,
        check=False,
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Only rank 0 wrote checkpoints, printed the summary and logged one MLflow run.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "mamba2_eeg_d16_l1_m100_mae.pt",
        "mamba2_eeg_d16_l1_m100_mae_last.pt",
    ]
    assert proc.stdout.count("best_val_loss:") == 1
    assert proc.stderr.count("epoch 2/2") == 1
    runs = find_runs(uri, "ddp-test")
    assert runs.height == 1 and runs["status"][0] == "FINISHED"
    assert runs["params.train.batch_size"][0] == "8"

    one = load_checkpoint(single.last_checkpoint)
    two = load_checkpoint(tmp_path / "two" / "mamba2_eeg_d16_l1_m100_mae_last.pt")
    assert two["describe"] and len(two["rng"]["ranks"]) == 2  # both ranks' RNG states kept
    losses_one = torch.tensor([s["train_loss"] for s in one["steps"]])
    losses_two = torch.tensor([s["train_loss"] for s in two["steps"]])
    assert len(losses_one) == len(losses_two) == 2 * (len(single.steps) // 2)
    torch.testing.assert_close(losses_two, losses_one, rtol=1e-5, atol=0)
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=0, atol=1e-5, msg=key)
    val_one = [h["val_loss"] for h in one["history"]]
    val_two = [h["val_loss"] for h in two["history"]]
    torch.testing.assert_close(torch.tensor(val_two), torch.tensor(val_one), rtol=1e-5, atol=0)
