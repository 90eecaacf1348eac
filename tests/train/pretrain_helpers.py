"""Shared pieces of the pretraining tests: a small synthetic cohort and tiny-model configs.

Imported by tests/train/test_{pretrain,resume,ddp,sweep}.py (pytest puts this folder on
sys.path). Tiny models (d_model 16, one layer) keep every run to a few seconds on 2 cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eegwb.config import load_config
from eegwb.train.config import PretrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "configs" / "tiny.yaml"
TINY_MODEL = [
    "model.d_model=16",
    "model.n_layers=1",
    "model.headdim=8",
    "model.d_state=8",
    "model.chunk_size=8",
]
_COHORTS: dict[str, Path] = {}


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true", "PYTHONUNBUFFERED": "1"}


def synth_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 participants x 2 runs x 4 Muse channels x 16 windows of 128 samples (256 Hz), once
    per process."""
    from eegwb.data.synthetic import SynthConfig, generate_cohort

    if "synth" not in _COHORTS:
        root = tmp_path_factory.mktemp("synth") / "data"
        generate_cohort(
            root,
            SynthConfig(
                n_participants=8,
                runs_per_participant=2,
                montage="muse",
                window_samples=128,
                n_windows=16,
                seed=0,
            ),
            progress=False,
        )
        _COHORTS["synth"] = root
    return _COHORTS["synth"]


def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite MLflow store per test process: creating its tables takes seconds."""
    if "mlflow" not in _COHORTS:
        _COHORTS["mlflow"] = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    return f"sqlite:///{_COHORTS['mlflow']}"


def tiny_overrides(root: Path, ckpt_dir: Path, window_samples: int = 128) -> list[str]:
    return TINY_MODEL + [
        f"data.root={root}",
        f"model.window_samples={window_samples}",
        "data.channels=null",
        "data.max_windows=8",
        "train.epochs=3",  # tests set their own length; tiny.yaml's 12 epochs are for smoke runs
        "data.split_fractions=[0.75, 0.25, 0.0]",
        f"train.checkpoint_dir={ckpt_dir}",
        "train.batch_size=8",
        "train.lr=3e-3",
        "tracking.enabled=false",
        "train.overwrite=false",
    ]


def tiny_config(
    root: Path, ckpt_dir: Path, *overrides: str, window_samples: int = 128
) -> PretrainConfig:
    """configs/tiny.yaml with a tiny model over `root`, checkpoints in `ckpt_dir`, no MLflow."""
    return load_config(
        PretrainConfig, TINY_YAML, tiny_overrides(root, ckpt_dir, window_samples) + list(overrides)
    )
