"""Masked reconstruction: hide windows, predict them, score only what was hidden.

One module holds the model, the masking config and (for `ema` targets) the teacher, so a
trainer calls `objective(batch)` then `objective.after_step()` after each optimiser step,
and `objective.state_dict()` carries everything needed to resume.

Shapes: b batch, l windows, t samples per window, o output width.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from eegwb.data.batch import Batch
from eegwb.model.config import MaskingConfig
from eegwb.model.eeg_model import EEGModel
from eegwb.model.masking import apply_mask, make_mask
from eegwb.model.targets import COLLAPSE_WARNING, EMATeacher, make_target

log = logging.getLogger(__name__)


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # () MSE over masked real positions
    pred: torch.Tensor  # (b, l, o) the model's reconstruction at every position
    target: torch.Tensor  # (b, l, o)
    mask: torch.Tensor  # (b, l) bool, True at masked real positions (those in the loss)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of the per-position mean squared error; 0 if none masked."""
    err = (pred - target).square().mean(-1)  # (b, l)
    err = torch.where(mask, err, torch.zeros_like(err))
    return err.sum() / mask.sum().clamp(min=1)


class MaskedReconstruction(nn.Module):
    def __init__(self, model: EEGModel, masking: MaskingConfig):
        super().__init__()
        self.model = model
        self.masking = masking
        self.target_kind = model.cfg.target
        if self.target_kind == "embedding":
            log.warning(COLLAPSE_WARNING)
        self.teacher = None
        if self.target_kind == "ema":
            self.teacher = EMATeacher(model.token_encoder, model.cfg.ema_decay)

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> ObjectiveOutput:
        mask = make_mask(batch.pad_mask, self.masking.mask_ratio, generator=generator)
        x_in = apply_mask(batch.x, mask, self.masking.style, generator=generator)
        pred = self.model(x_in, batch.coords, batch.pad_mask)  # (b, l, o)
        target = self.targets(batch)
        return ObjectiveOutput(masked_mse(pred, target, mask), pred, target, mask)

    def targets(self, batch: Batch) -> torch.Tensor:
        """(b, l, o) what each token should be reconstructed as (every position, pads too);
        the control floors take training participants' group means of these."""
        return make_target(self.target_kind, batch.x, self.model.token_encoder, self.teacher)

    def after_step(self) -> None:
        """Move the EMA teacher toward the student; nothing for other targets."""
        if self.teacher is not None:
            self.teacher.update(self.model.token_encoder)
