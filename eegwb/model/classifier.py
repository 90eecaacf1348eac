"""A classifier over a (pretrained) EEG model: pooled embedding -> head -> one logit.

Three strategies, one architecture, so their results differ only by what they test:

    frozen   the original: pretrained backbone fixed (eval mode, no gradients), head trained
    full     pretrained backbone and head trained together (backbone at a smaller LR)
    scratch  the same EEGModel from random init, trained like `full`: the control that
             says whether pretraining helped at all

The head sees the sequence's embeddings pooled over its real windows: the mean
(`EEGModel.pooled_embedding`, the original's choice) or the mean and standard deviation
("mean_std"). Tokens are LayerNorm-ed projections of the samples, so a window's power
barely moves their mean; how much they vary across windows carries it. Pooling works for
any channel set: each sequence carries its electrode position, and a backbone pretrained
on a 19- or 64-channel cap scores a 4-channel Muse recording unchanged.

Shapes: b batch, l windows, t samples per window, d model width.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from eegwb.model.config import ModelConfig
from eegwb.model.eeg_model import EEGModel
from eegwb.model.param_groups import weight_decay_groups

STRATEGIES = ("frozen", "full", "scratch")
POOLINGS = ("mean", "mean_std")


class EEGClassifier(nn.Module):
    unit = "channel-sequence"  # what one prediction is: one channel's sequence of windows

    def __init__(self, model: EEGModel, strategy: str, dropout: float = 0.1, pooling: str = "mean"):
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r} is not one of {POOLINGS}")
        self.model = model
        self.strategy = strategy
        self.pooling = pooling
        d = model.cfg.d_model * (2 if pooling == "mean_std" else 1)
        # Standardise each feature with batch statistics (running ones at eval), as a
        # StandardScaler before logistic regression; a LayerNorm would instead divide out each
        # sequence's overall scale, which is where the pooled standard deviations carry power.
        self.head = nn.Sequential(
            nn.BatchNorm1d(d, affine=False), nn.Dropout(dropout), nn.Linear(d, 1)
        )
        if strategy == "frozen":
            model.requires_grad_(False)
        else:
            # The reconstruction head is not on the classification path.
            model.head.requires_grad_(False)

    @property
    def frozen(self) -> bool:
        return self.strategy == "frozen"

    def train(self, mode: bool = True) -> EEGClassifier:
        super().train(mode)
        if self.frozen:
            self.model.eval()  # a frozen backbone keeps its dropout off
        return self

    def embed(self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """x (b, l, t), coords (b, 3), pad_mask (b, l) -> pooled embedding (b, d) or (b, 2d);
        no graph through a frozen backbone."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.pool(x, coords, pad_mask)

    def pool(self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """`embed` with gradients wherever autograd is on, frozen or not: the same numbers, for
        diagnostics (attributions, gradient flow) that need gradients at the input."""
        if self.pooling == "mean":
            return self.model.pooled_embedding(x, coords, pad_mask)
        h = self.model.encode(x, coords, pad_mask)  # (b, l, d), zero at pads
        real = (~pad_mask).unsqueeze(-1).to(h.dtype)  # (b, l, 1)
        n = real.sum(1).clamp(min=1)  # (b, 1)
        mean = (h * real).sum(1) / n  # (b, d)
        var = (((h - mean.unsqueeze(1)) * real) ** 2).sum(1) / n
        return torch.cat([mean, (var + 1e-6).sqrt()], dim=-1)  # (b, 2d)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """(b, d) pooled embeddings -> (b,) logits."""
        return self.head(embedding).squeeze(-1)

    def forward(
        self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor
    ) -> torch.Tensor:
        """(b,) logits of class 1."""
        return self.classify(self.embed(x, coords, pad_mask))

    def param_groups(self, lr_head: float, lr_backbone: float, weight_decay: float) -> list[dict]:
        """AdamW groups: head and backbone at their own LRs; no weight decay on biases, norms
        and Mamba-2's A_log, D, dt_bias (marked `_no_weight_decay`, as upstream)."""
        parts = [(self.head, lr_head)] + ([] if self.frozen else [(self.model, lr_backbone)])
        return [g for module, lr in parts for g in weight_decay_groups(module, weight_decay, lr=lr)]


def build_classifier(
    strategy: str,
    model_cfg: ModelConfig,
    pretrained: Mapping[str, torch.Tensor] | None,
    *,
    dropout: float = 0.1,
    pooling: str = "mean",
    seed: int = 0,
) -> EEGClassifier:
    """A classifier for `strategy`; `pretrained` (an EEGModel state_dict) is loaded strictly
    unless the strategy is `scratch`, which keeps the seeded random init."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EEGModel(model_cfg)
        clf = EEGClassifier(model, strategy, dropout, pooling)
    if strategy != "scratch":
        if pretrained is None:
            raise ValueError(f"strategy {strategy!r} needs a pretrained state_dict")
        model.load_state_dict(pretrained, strict=True)
    return clf
