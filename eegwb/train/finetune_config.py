"""FinetuneConfig: which backbone, which data and label, which strategies, how to evaluate.

Loaded like every eegwb config (`eegwb.config.load_config(FinetuneConfig, path, overrides)`);
see `configs/finetune.yaml` for a commented example. Defaults follow the original
pipeline where it had one (frozen backbone + head on a 4-channel Muse label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from eegwb.config import ConfigError
from eegwb.evaluation.baseline import BaselineConfig
from eegwb.evaluation.metrics import LEVELS
from eegwb.model.config import BACKBONES, MASK_STYLES
from eegwb.train.config import TrackingConfig
from eegwb.train.labels import LabelSource

STRATEGIES = ("frozen", "full", "scratch")


@dataclass
class PretrainedConfig:
    """Where the pretrained backbone comes from, in this order of precedence:
    `checkpoint` (a path), `mlflow_run` (its `eegwb.checkpoint` tag), else the name the
    original derived from the model (`mamba2_eeg_d128_l6_m50_mae.pt`) in `checkpoint_dir`."""

    checkpoint: str | None = None
    mlflow_run: str | None = None  # run id in tracking.uri (experiment does not matter)
    checkpoint_dir: str = "checkpoints"
    backbone: Literal["mamba2", "transformer"] = "mamba2"
    d_model: int = 128  # the original's pretrained model
    n_layers: int = 6
    mask_ratio: float = 0.5
    style: Literal["mae", "bert"] = "mae"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES or self.style not in MASK_STYLES:
            raise ValueError(f"pretrained: backbone/style must be in {BACKBONES}/{MASK_STYLES}")
        if self.d_model < 1 or self.n_layers < 1:
            raise ValueError(
                f"pretrained: d_model and n_layers must be >= 1, got {self.d_model}, "
                f"{self.n_layers}"
            )
        if not 0 <= self.mask_ratio <= 1:
            raise ValueError(f"pretrained.mask_ratio must be in [0, 1], got {self.mask_ratio}")


@dataclass
class FinetuneDataConfig:
    root: str = "data/synthetic"
    channels: list[str] | None = None  # e.g. [TP9, AF7, AF8, TP10]; None: every common channel
    normalisation: Literal["robust_z", "zscore", "none"] = "robust_z"  # per recording and channel
    max_windows: int | None = 32  # sequence chunk; ~4 min of 8 s windows per prediction unit
    cache_dir: str | None = None
    splits: str | None = None  # splits JSON with train/val/test; None: split below
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train/val/test participants
    split_seed: int = 0
    kfold: int = 0  # k >= 2: participant-grouped k-fold; every participant is tested once
    allow_leakage: bool = False  # run although the gate finds leakage (results tagged `leaky`)
    # Participants the backbone saw in pretraining (same dataset): "avoid" tests on the ones it
    # did not see, "refuse" stops if any test participant was seen, "allow" records the overlap.
    # Where pretraining's dataset cannot be found from here, "refuse" stops; the others warn.
    pretraining_overlap: Literal["avoid", "refuse", "allow"] = "avoid"
    # Every unit trained and tested on has the same number of windows, so length cannot give
    # the label (EEGMAT: rest recordings are 3x longer; length alone gave recording AUROC
    # 0.88-0.91 to a model that learnt nothing). crop: crops of crop_windows at the same
    # offsets in every recording; crop_all: every whole crop (more data, positions may differ
    # between classes); none: chunks of max_windows, tails kept. See train/length_match.py.
    length_match: Literal["crop", "crop_all", "none"] = "crop"
    crop_windows: int | None = None  # None: max_windows, at most the shortest labelled recording
    # The shortcut audit of the units fine-tuning evaluates (after length matching), before
    # training. refuse: stop when a shortcut the pipeline can remove (length, position, channel
    # set, sampling rate) clearly predicts the label; design confounds (recording order or
    # date, amplitude, line noise, metadata) cannot be cropped away and are reported. warn:
    # report all and go on. off: no audit.
    shortcut_gate: Literal["refuse", "warn", "off"] = "refuse"

    def __post_init__(self) -> None:
        fr = self.split_fractions
        if (
            len(fr) != 3
            or any(f < 0 for f in fr)
            or abs(sum(fr) - 1) > 1e-6
            or fr[0] <= 0
            or fr[2] <= 0
        ):
            raise ValueError(
                "split_fractions: need train, val, test >= 0 summing to 1 (train, test > 0), got "
                f"{fr}"
            )
        if self.kfold == 1 or self.kfold < 0:
            raise ValueError(f"kfold must be 0 (off) or >= 2, got {self.kfold}")
        if self.kfold and self.splits is not None:
            raise ValueError(
                "kfold and splits cannot both be given: a splits file fixes one test set"
            )
        if self.max_windows is not None and self.max_windows < 1:
            raise ValueError(f"max_windows must be >= 1 or null, got {self.max_windows}")
        if self.crop_windows is not None and self.crop_windows < 1:
            raise ValueError(f"crop_windows must be >= 1 or null, got {self.crop_windows}")


@dataclass
class FinetuneTrainConfig:
    strategies: list[Literal["frozen", "full", "scratch"]] = field(
        default_factory=lambda: list(STRATEGIES)
    )
    epochs: int = 30
    batch_size: int = 32
    lr_head: float = 1e-3  # the head starts from zero knowledge: a head-sized LR
    lr_backbone: float = 1e-4  # full: 10x smaller, so pretrained features are adjusted, not erased
    lr_scratch: float = 3e-4  # scratch trains the whole model from random init (pretraining's LR)
    weight_decay: float = 0.01
    dropout: float = 0.1  # on the pooled embedding, before the head
    pooling: Literal["mean", "mean_std"] = (
        "mean_std"  # mean: the original; std adds power over windows
    )
    grad_clip: float = 1.0
    patience: int = 5  # epochs without a better validation loss before stopping; 0 disables
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threshold: Literal["val", "fixed"] = "val"  # val: maximise balanced accuracy on val; fixed: 0.5
    checkpoint_dir: str = "checkpoints"
    overwrite: bool = False  # replace existing fine-tuned checkpoints (else refuse before training)
    autopsy: bool = False  # run the model autopsy once on each fine-tuned checkpoint when done

    def __post_init__(self) -> None:
        if not self.strategies:
            raise ValueError("strategies: give at least one of frozen, full, scratch")
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad or len(set(self.strategies)) != len(self.strategies):
            raise ValueError(
                f"strategies: {self.strategies} must be distinct names from {STRATEGIES}"
            )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_head", "lr_backbone", "lr_scratch"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.patience < 0:
            raise ValueError("weight_decay, grad_clip and patience must be >= 0")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class EvalConfig:
    level: Literal["prediction", "recording", "participant"] = "recording"  # headline level
    n_boot: int = 2000  # bootstrap resamples of participants
    confidence: float = 0.95
    method: Literal["bca", "percentile"] = "bca"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        if self.n_boot < 10:
            raise ValueError(f"n_boot must be >= 10, got {self.n_boot}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass
class BaselineSection(BaselineConfig):
    enabled: bool = True  # band powers + logistic regression on the same splits


@dataclass
class FinetuneConfig:
    pretrained: PretrainedConfig = field(default_factory=PretrainedConfig)
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    labels: LabelSource = field(default_factory=LabelSource)
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    baseline: BaselineSection = field(default_factory=BaselineSection)
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="finetune"))

    def check_paths(self) -> None:
        """Fail before any work when the dataset, splits or label file is missing."""
        if not Path(self.data.root).is_dir():
            raise ConfigError(f"data.root: dataset directory {self.data.root!r} does not exist")
        if self.data.splits is not None and not Path(self.data.splits).is_file():
            raise ConfigError(f"data.splits: splits file {self.data.splits!r} does not exist")
        if self.labels.path is not None and not Path(self.labels.path).is_file():
            raise ConfigError(f"labels.path: label file {self.labels.path!r} does not exist")
        if (
            self.pretrained.checkpoint is not None
            and not Path(self.pretrained.checkpoint).is_file()
        ):
            raise ConfigError(
                f"pretrained.checkpoint: {self.pretrained.checkpoint!r} does not exist"
            )
