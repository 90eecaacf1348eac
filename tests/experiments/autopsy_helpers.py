"""Shared pieces of the autopsy tests: a tiny synthetic cohort and untrained tiny checkpoints.

Imported by tests/experiments/test_autopsy_*.py (pytest puts this folder on sys.path) and
by tests/notebooks/test_05_autopsy.py (by path). Checkpoints are written directly from a
seeded, untrained model: the report and plumbing tests need a real checkpoint file, not a
good model, and skipping training keeps them to seconds.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_MODEL = {"d_model": 16, "n_layers": 1, "headdim": 8, "d_state": 8, "chunk_size": 8}
WINDOW_SAMPLES = 64


def tiny_cohort(root: Path) -> Path:
    """6 participants x 1 run x 4 Muse channels x 8 windows of 64 samples at 128 Hz."""
    from eegwb.data.synthetic import SynthConfig, generate_cohort

    if not (root / "manifest.json").is_file():
        generate_cohort(
            root,
            SynthConfig(
                n_participants=6,
                runs_per_participant=1,
                montage="muse",
                sfreq=128.0,
                window_samples=WINDOW_SAMPLES,
                n_windows=8,
                seed=0,
            ),
            progress=False,
        )
    return root


def pretrained_checkpoint(
    root: Path, out_dir: Path, tracking_uri: str | None = None, masking: dict | None = None
) -> Path:
    """An untrained tiny masked-reconstruction checkpoint in the pretraining format
    (`masking`: MaskingConfig fields, e.g. {"mask_ratio": 1.0, "style": "bert"})."""
    from eegwb.config import to_dict
    from eegwb.model.config import MaskingConfig, ModelConfig
    from eegwb.model.eeg_model import EEGModel
    from eegwb.train.checkpoints import checkpoint_name, save_checkpoint
    from eegwb.train.config import DataConfig, PretrainConfig, TrackingConfig, TrainConfig

    cfg = PretrainConfig(
        model=ModelConfig(window_samples=WINDOW_SAMPLES, **TINY_MODEL),
        masking=MaskingConfig(**(masking or {})),
        data=DataConfig(
            root=str(root),
            split_fractions=(0.5, 0.5, 0.0),
            max_windows=8,
            cache_dir=str(out_dir / "cache"),
        ),
        train=TrainConfig(checkpoint_dir=str(out_dir)),
        tracking=TrackingConfig(
            enabled=tracking_uri is not None, uri=tracking_uri, experiment="autopsy-test"
        ),
    )
    torch.manual_seed(0)
    model = EEGModel(cfg.model)
    path = out_dir / checkpoint_name(cfg)
    save_checkpoint(
        path,
        {
            "kind": "best",
            "model": model.state_dict(),
            "objective": {},
            "config": to_dict(cfg),
            "describe": {"kernel_path": "reference"},
        },
    )
    return path


def finetuned_checkpoint(root: Path, out_dir: Path) -> Path:
    """An untrained tiny classifier checkpoint in the fine-tuning format (test split: all)."""
    import json

    from eegwb.config import to_dict
    from eegwb.model.classifier import build_classifier
    from eegwb.model.config import ModelConfig
    from eegwb.train.finetune_config import FinetuneConfig
    from eegwb.train.finetune_report import save_finetuned

    cfg = FinetuneConfig()
    cfg.data.root, cfg.data.max_windows, cfg.data.cache_dir = str(root), 8, str(out_dir / "cache")
    cfg.tracking.enabled = False
    model_cfg = ModelConfig(window_samples=WINDOW_SAMPLES, **TINY_MODEL)
    clf = build_classifier("scratch", model_cfg, None, seed=0)
    people = [
        p["participant"] for p in json.loads((root / "manifest.json").read_text())["participants"]
    ]
    state = {
        "config": to_dict(cfg),
        "model_config": to_dict(model_cfg),
        "pretrained": "none (scratch only)",
        "threshold": 0.5,
        "label": "remission",
        "channels": [],
        "history": [],
        "participants": {"train": [], "val": [], "test": people},
    }
    return save_finetuned(out_dir / "tiny_finetuned_scratch.pt", clf, state, overwrite=True)
