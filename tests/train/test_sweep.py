"""Sweeps: grid parsing, per-run configs, and `eegwb sweep` running sequential runs into one
MLflow experiment with a printed summary table."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from pretrain_helpers import TINY_YAML, mlflow_store, tiny_config, tiny_overrides

from eegwb.cli import main
from eegwb.config import ConfigError
from eegwb.train.checkpoints import checkpoint_name
from eegwb.train.sweep import expand_grid, parse_param, sweep_configs
from eegwb.train.tracking import find_runs


def test_parse_and_expand() -> None:
    assert parse_param("masking.mask_ratio=0.2,0.4,1") == ("masking.mask_ratio", [0.2, 0.4, 1])
    assert parse_param("masking.style=mae,bert") == ("masking.style", ["mae", "bert"])
    with pytest.raises(ConfigError, match="expected KEY=V1,V2"):
        parse_param("mask_ratio")
    grid = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(grid) == 6 and grid[0] == {"a": 1, "b": "x"} and grid[-1] == {"a": 2, "b": "z"}


def test_run_directories_only_when_names_would_collide(tmp_path: Path) -> None:
    base = tiny_config(tmp_path, tmp_path / "ckpt")
    named = sweep_configs(base, {"mask_ratio": [0.2, 0.8]}, "s1")
    assert [r.config.masking.mask_ratio for r in named] == [0.2, 0.8]
    assert {r.config.train.checkpoint_dir for r in named} == {
        str(tmp_path / "ckpt")
    }  # m20 / m80 differ
    assert named[0].config.tracking.tags["eegwb.sweep"] == "s1"
    by_lr = sweep_configs(base, {"train.lr": [1e-3, 2e-3]}, "s2")
    dirs = [Path(r.config.train.checkpoint_dir) for r in by_lr]
    assert dirs[0] != dirs[1] and all(d.parent == tmp_path / "ckpt" for d in dirs)
    with pytest.raises(ConfigError, match=r"sweep run mask_ratio=2: masking\.mask_ratio"):
        sweep_configs(base, {"mask_ratio": [0.5, 2]}, "s3")
    with pytest.raises(ConfigError, match=r"mask_ration: unknown key"):
        sweep_configs(base, {"mask_ration": [0.5]}, "s4")


def test_runs_whose_names_coincide_get_their_own_directories(tmp_path: Path) -> None:
    base = tiny_config(tmp_path, tmp_path / "ckpt")
    runs = sweep_configs(base, {"mask_ratio": [0.12, 0.125]}, "s1")  # both name m12
    paths = [Path(r.config.train.checkpoint_dir) / checkpoint_name(r.config) for r in runs]
    assert paths[0].name == paths[1].name and paths[0] != paths[1]
    with pytest.raises(
        ConfigError, match=r"runs mask_ratio=0.5 and mask_ratio=0.5 would both write"
    ):
        sweep_configs(base, {"mask_ratio": [0.5, 0.5]}, "s2")


def test_eegwb_sweep_runs_into_one_experiment(
    write_cohort: Callable[..., Path],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture,
) -> None:
    root = write_cohort(
        tmp_path / "data",
        participants=[f"{i:02d}" for i in range(1, 5)],
        n_windows=8,
        window_samples=64,
        sfreq=128.0,
    )
    uri = mlflow_store(tmp_path_factory)
    args = [
        "sweep",
        "--config",
        str(TINY_YAML),
        "--param",
        "masking.mask_ratio=0.25,0.75",
        "--no-bar",
    ]
    for item in tiny_overrides(root, tmp_path / "ckpt", window_samples=64) + [
        "train.epochs=1",
        "train.batch_size=8",
        "tracking.enabled=true",
        f"tracking.uri={uri}",
        "tracking.experiment=sweep-test",
    ]:
        args += ["--set", item]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "sweep-test" in out and "0.25" in out and "0.75" in out and "best_val_loss" in out
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("*.pt")) == [
        "mamba2_eeg_d16_l1_m25_mae.pt",
        "mamba2_eeg_d16_l1_m25_mae_last.pt",
        "mamba2_eeg_d16_l1_m75_mae.pt",
        "mamba2_eeg_d16_l1_m75_mae_last.pt",
    ]
    runs = find_runs(uri, "sweep-test", params=["masking.mask_ratio"])
    assert runs.height == 2
    assert sorted(runs["params.masking.mask_ratio"].to_list()) == ["0.25", "0.75"]
    assert runs["run_id"].to_list()[0] in out
    assert all(math.isfinite(v) for v in runs["metrics.val_loss"].to_list())  # logged, not NaN
