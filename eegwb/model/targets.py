"""What a masked window should be reconstructed as.

- `signal` (default): the normalised window itself. It cannot move, so it cannot collapse.
- `embedding`: the original pipeline's target, token_encoder(window) WITH gradient. The
  encoder then shapes its own targets and can shrink them toward a constant (collapse);
  kept to reproduce the original, with a warning.
- `embedding_stopgrad`: the same embedding, detached.
- `ema`: an exponential-moving-average teacher copy of the token encoder (BYOL/data2vec).

Shapes: b batch, l windows, t samples per window, d model width.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from eegwb.model.encoders import TokenEncoder

log = logging.getLogger(__name__)

COLLAPSE_WARNING = (
    "target='embedding' trains the token encoder on targets it produces itself; the loss "
    "can fall by collapsing every embedding toward a constant. Prefer 'signal', "
    "'embedding_stopgrad' or 'ema' unless you are reproducing the original pipeline."
)


class EMATeacher(nn.Module):
    """A frozen copy of the token encoder that follows it by EMA (decay per step)."""

    def __init__(self, student: TokenEncoder, decay: float):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMATeacher: decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.encoder = copy.deepcopy(student).requires_grad_(False)

    @torch.no_grad()
    def update(self, student: TokenEncoder) -> None:
        """teacher <- decay * teacher + (1 - decay) * student, parameters and buffers."""
        for t, s in zip(self.encoder.parameters(), student.parameters(), strict=True):
            t.lerp_(s.detach().to(t.dtype), 1.0 - self.decay)
        for t, s in zip(self.encoder.buffers(), student.buffers(), strict=True):
            t.copy_(s)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


FIXED_TARGETS = ("signal",)  # functions of the window alone: their floors need no model


def fixed_target(kind: str, x: torch.Tensor) -> torch.Tensor:
    """The target of a kind that no model shapes, for clean windows x (b, l, t); learnt
    targets (embeddings, EMA) need the model: a ValueError says so."""
    if kind not in FIXED_TARGETS:
        raise ValueError(
            f"target {kind!r} is learnt by the model (fixed targets: "
            f"{', '.join(FIXED_TARGETS)}); its floors need a checkpoint: eegwb control"
        )
    return make_target(kind, x, token_encoder=None)  # type: ignore[arg-type]


def make_target(
    kind: str, x: torch.Tensor, token_encoder: TokenEncoder, teacher: EMATeacher | None = None
) -> torch.Tensor:
    """The reconstruction target for clean windows x (b, l, t): (b, l, t) or (b, l, d)."""
    if kind == "signal":
        return x
    if kind == "embedding":
        return token_encoder(x)
    if kind == "embedding_stopgrad":
        with torch.no_grad():
            return token_encoder(x)
    if kind == "ema":
        if teacher is None:
            raise ValueError("make_target: target 'ema' needs an EMATeacher")
        return teacher(x)
    raise ValueError(
        f"make_target: target {kind!r} is not one of signal, embedding, embedding_stopgrad, ema"
    )
