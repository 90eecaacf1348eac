"""PretrainConfig: everything one pretraining run needs, as validated dataclasses.

Sections: `model` and `masking` (from eegwb.model.config), `data`, `train`, `gates`,
`tracking`. Loaded from YAML with `eegwb.config.load_config(PretrainConfig, path, overrides)`;
defaults follow the original pipeline (d_model 128, 6 layers, 2048-sample windows, MAE
masking at 50%). `check_paths()` checks what lives outside the config (the dataset, the
splits file) before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from eegwb.config import ConfigError
from eegwb.data.layout import DatasetError, recordings_index
from eegwb.model.config import MaskingConfig, ModelConfig

# Metrics known when an epoch ends; gates may test any of them.
EPOCH_METRICS = (
    "train_loss",
    "val_loss",
    "pred_var",
    "pred_mean",
    "target_var",
    "target_mean",
    "var_ratio",
)


@dataclass
class DataConfig:
    root: str = "data/synthetic"  # the embedded synthetic cohort (`eegwb synth`)
    splits: str | None = None  # splits JSON (eegwb.data.splits); None: split by participant below
    split_fractions: tuple[float, float, float] = (
        0.8,
        0.1,
        0.1,
    )  # train/val/test; test is never read here
    split_seed: int = 0
    normalisation: Literal["robust_z", "zscore", "none"] = "robust_z"  # robust to blinks and spikes
    max_windows: int | None = 128  # sequence chunk length; ~the original's L=124 windows
    channels: list[str] | None = None  # None: channels common to every file
    allow_leakage: bool = False  # run even if train/val leak (the run is tagged `leaky`)
    num_workers: int = 0  # the memory-mapped cache is fast enough in-process
    cache_dir: str | None = None  # None: <root>/.cache

    def __post_init__(self) -> None:
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions):
            raise ValueError(
                f"split_fractions must be three fractions >= 0, got {self.split_fractions}"
            )
        if abs(sum(self.split_fractions) - 1.0) > 1e-6 or self.split_fractions[1] <= 0:
            raise ValueError(
                "split_fractions must sum to 1 with a non-empty val split, got "
                f"{self.split_fractions}"
            )
        if self.max_windows is not None and self.max_windows < 1:
            raise ValueError(f"max_windows must be >= 1 or null, got {self.max_windows}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 8  # global: split across DDP processes
    lr: float = 3e-4  # peak AdamW learning rate after warmup
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio, not to zero
    warmup_fraction: float = 0.05  # of all steps; linear warmup keeps early Adam steps small
    weight_decay: float = 0.05  # MAE's value; not applied to biases, norms, A_log, D, dt_bias
    betas: tuple[float, float] = (0.9, 0.95)  # MAE's betas: a shorter second-moment memory
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    val_every_steps: int = 0  # extra validation every N steps; 0: only at epoch ends
    patience: int = 10  # epochs without val improvement before stopping; 0 disables
    min_delta: float = 0.0  # an improvement must beat the best val loss by more than this
    max_steps: int | None = None  # stop after this many steps (schedule still spans all epochs)
    log_every_steps: int = 10  # per-step metrics to MLflow
    checkpoint_dir: str = "checkpoints"
    overwrite: bool = False  # replace existing checkpoints of the same name (else refuse)
    autopsy: bool = False  # run the model autopsy once when training ends (done or stopped early)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "log_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.min_delta < 0:
            raise ValueError("weight_decay, grad_clip and min_delta must be >= 0")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}")
        if self.val_every_steps < 0 or self.patience < 0:
            raise ValueError("val_every_steps and patience must be >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or null, got {self.max_steps}")


@dataclass
class GateConfig:
    """A check at the end of `epoch`: `metric` must be <= max and/or >= min."""

    epoch: int
    metric: str = "val_loss"
    max: float | None = None
    min: float | None = None
    action: Literal["stop", "warn"] = "stop"  # stop the run, or only warn and record

    def __post_init__(self) -> None:
        if self.epoch < 1:
            raise ValueError(f"epoch must be >= 1 (epochs count from 1), got {self.epoch}")
        if self.metric not in EPOCH_METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {list(EPOCH_METRICS)}")
        if self.max is None and self.min is None:
            raise ValueError("a gate needs max and/or min")

    def check(self, value: float) -> dict:
        """The gate's result as plain data (stored in MLflow and the checkpoint)."""
        passed = (self.max is None or value <= self.max) and (self.min is None or value >= self.min)
        return {
            "epoch": self.epoch,
            "metric": self.metric,
            "value": float(value),
            "max": self.max,
            "min": self.min,
            "action": self.action,
            "passed": bool(passed),
        }


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI or the project's sqlite store
    experiment: str = "pretrain"
    run_name: str | None = None  # None: the checkpoint stem
    tags: dict[str, str] = field(default_factory=dict)  # extra run tags (a sweep's id, ...)


@dataclass
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    gates: list[GateConfig] = field(default_factory=list)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        for i, gate in enumerate(self.gates):
            if gate.epoch > self.train.epochs:
                raise ConfigError(
                    f"gates[{i}].epoch: {gate.epoch} is after the last epoch "
                    f"(train.epochs={self.train.epochs}); the gate would never run"
                )

    def check_paths(self) -> None:
        """Fail before any work when the dataset or splits file is missing or does not fit
        the model (reads file metadata only)."""

        root = Path(self.data.root)
        if not root.is_dir():
            raise ConfigError(f"data.root: dataset directory {str(root)!r} does not exist")
        if self.data.splits is not None and not Path(self.data.splits).is_file():
            raise ConfigError(f"data.splits: splits file {self.data.splits!r} does not exist")
        try:
            index = recordings_index(root)
        except DatasetError as err:
            raise ConfigError(f"data.root: {err}") from err
        sizes = sorted(set(index["window_samples"].to_list()))
        if sizes != [self.model.window_samples]:
            raise ConfigError(
                f"model.window_samples: {self.model.window_samples}, but dataset {str(root)!r} "
                f"has windows of {sizes} samples"
            )
