"""Model and masking configs: every default with its reason, validated on construction.

Both are plain dataclasses so `eegwb/config.py` can load them from YAML and apply
`--set model.d_model=256`; a bad value raises `ValueError` naming the field.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

BACKBONES = ("mamba2", "transformer")
KERNEL_BACKENDS = ("auto", "ref", "fused")
TARGETS = ("signal", "embedding", "embedding_stopgrad", "ema")
MASK_STYLES = ("mae", "bert")


def _check_types(obj: Any) -> None:
    """Reject values whose type does not match the annotation (YAML gives strings easily)."""
    hints = typing.get_type_hints(type(obj))
    name = type(obj).__name__
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        if get_origin(hint) is Literal:
            if value not in get_args(hint):
                raise ValueError(f"{name}.{f.name}: {value!r} is not one of {get_args(hint)}")
        elif hint is bool and not isinstance(value, bool):
            raise ValueError(f"{name}.{f.name}: expected true/false, got {value!r}")
        elif hint is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name}.{f.name}: expected an integer, got {value!r}")
        elif hint is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{name}.{f.name}: expected a number, got {value!r}")


def _require(ok: bool, cls: str, field: str, problem: str) -> None:
    if not ok:
        raise ValueError(f"{cls}.{field}: {problem}")


@dataclass
class ModelConfig:
    """What the EEG model is; the defaults are the original pipeline's model."""

    window_samples: int = 2048  # one token = one window (8 s at a Muse headset's 256 Hz)
    d_model: int = 128  # the original width
    n_layers: int = 6  # the original depth
    backbone: Literal["mamba2", "transformer"] = "mamba2"  # never swapped silently
    bidirectional: bool = True  # masked reconstruction may look both ways; False = original
    d_state: int = 64  # SSM state per head; upstream's 128 is sized for language models
    d_conv: int = 4  # upstream default: a short causal conv before the scan
    expand: int = 2  # upstream default: d_inner = 2 * d_model
    headdim: int = 32  # 8 heads at d_model=128 (upstream's 64 would leave 4)
    ngroups: int = 1  # upstream default: B and C shared by all heads
    chunk_size: int = 64  # sequences are ~100 windows; 256 would pad most of a chunk
    n_heads: int = 4  # transformer only: head width 32 at d_model=128
    dropout: float = 0.0  # masking already regularises pretraining; raise for small fine-tunes
    disable_temporal_encoding: bool = False  # on: the control experiments switch it off
    disable_spatial_encoding: bool = False  # on: likewise, to test "channels ignored"
    spatial_seed: int = 0  # the fixed electrode projection; saved with the model too
    kernel_backend: Literal["auto", "ref", "fused"] = "auto"  # auto: fused on CUDA if it can
    # signal: a target the model cannot move, so it cannot collapse (see model/targets.py)
    target: Literal["signal", "embedding", "embedding_stopgrad", "ema"] = "signal"
    ema_decay: float = 0.996  # BYOL/data2vec-style teacher: ~250-step memory

    def __post_init__(self) -> None:
        _check_types(self)
        c = "ModelConfig"
        for name in (
            "window_samples",
            "d_model",
            "n_layers",
            "d_state",
            "d_conv",
            "expand",
            "headdim",
            "ngroups",
            "chunk_size",
            "n_heads",
        ):
            _require(getattr(self, name) >= 1, c, name, f"must be >= 1, got {getattr(self, name)}")
        d_inner = self.expand * self.d_model
        _require(
            d_inner % self.headdim == 0,
            c,
            "headdim",
            f"expand * d_model = {d_inner} is not a multiple of headdim={self.headdim}",
        )
        _require(
            self.nheads % self.ngroups == 0,
            c,
            "ngroups",
            f"{self.nheads} SSM heads cannot be split into {self.ngroups} groups",
        )
        if self.backbone == "transformer":
            _require(
                self.d_model % self.n_heads == 0,
                c,
                "n_heads",
                f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}",
            )
        _require(0.0 <= self.dropout < 1.0, c, "dropout", f"must be in [0, 1), got {self.dropout}")
        _require(
            0.0 <= self.ema_decay < 1.0, c, "ema_decay", f"must be in [0, 1), got {self.ema_decay}"
        )

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def nheads(self) -> int:
        """Number of SSM heads in each Mamba-2 block (upstream's `nheads`)."""
        return self.d_inner // self.headdim

    @property
    def out_dim(self) -> int:
        """Width of the reconstruction: a window of samples, or an embedding."""
        return self.window_samples if self.target == "signal" else self.d_model


@dataclass
class MaskingConfig:
    """Which windows the model must reconstruct, and how they are hidden."""

    mask_ratio: float = 0.5  # the original's ratio; 1.0 (all masked) is a legal control
    style: Literal["mae", "bert"] = "mae"  # mae: zero; bert: 80% zero/10% noise/10% unchanged

    def __post_init__(self) -> None:
        _check_types(self)
        _require(
            0.0 <= self.mask_ratio <= 1.0,
            "MaskingConfig",
            "mask_ratio",
            f"must be in [0, 1], got {self.mask_ratio}",
        )
