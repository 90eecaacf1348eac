"""A classifier over a (pretrained) EEG model: pooled embedding -> head -> one logit.

Three strategies, one architecture, so their results differ only by what they test:

    frozen   the original: pretrained backbone fixed (eval mode, no gradients), head trained
    full     pretrained backbone and head trained together (backbone at a smaller LR)
    scratch  the same EEGModel from random init, trained like `full`: the control that
             says whether pretraining helped at all

The head sees `EEGModel.pooled_embedding` (the mean of `encode` over real windows), so it
works for any channel set: each sequence carries its electrode position, and a backbone
pretrained on a 19- or 64-channel cap scores a 4-channel Muse recording unchanged.

Shapes: b batch, l windows, t samples per window, d model width.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from eegwb.model.config import ModelConfig
from eegwb.model.eeg_model import EEGModel

STRATEGIES = ("frozen", "full", "scratch")


class EEGClassifier(nn.Module):
    def __init__(self, model: EEGModel, strategy: str, dropout: float = 0.1):
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
        self.model = model
        self.strategy = strategy
        d = model.cfg.d_model
        # LayerNorm first: pooled embeddings of a frozen backbone have arbitrary scale.
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Dropout(dropout), nn.Linear(d, 1))
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
        """x (b, l, t), coords (b, 3), pad_mask (b, l) -> pooled embedding (b, d)."""
        if self.frozen:
            with torch.no_grad():
                return self.model.pooled_embedding(x, coords, pad_mask)
        return self.model.pooled_embedding(x, coords, pad_mask)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """(b, d) pooled embeddings -> (b,) logits."""
        return self.head(embedding).squeeze(-1)

    def forward(self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """(b,) logits of class 1."""
        return self.classify(self.embed(x, coords, pad_mask))

    def param_groups(self, lr_head: float, lr_backbone: float, weight_decay: float) -> list[dict]:
        """AdamW groups: head and backbone at their own LRs; no weight decay on biases, norms
        and Mamba-2's A_log, D, dt_bias (marked `_no_weight_decay`, as upstream)."""
        groups = []
        parts = [(self.head, lr_head)] + ([] if self.frozen else [(self.model, lr_backbone)])
        for module, lr in parts:
            decay, no_decay = [], []
            for p in module.parameters():
                if p.requires_grad:
                    (no_decay if p.ndim < 2 or getattr(p, "_no_weight_decay", False) else decay).append(p)
            groups += [{"params": decay, "lr": lr, "weight_decay": weight_decay},
                       {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]


def build_classifier(
    strategy: str,
    model_cfg: ModelConfig,
    pretrained: Mapping[str, torch.Tensor] | None,
    *,
    dropout: float = 0.1,
    seed: int = 0,
) -> EEGClassifier:
    """A classifier for `strategy`; `pretrained` (an EEGModel state_dict) is loaded strictly
    unless the strategy is `scratch`, which keeps the seeded random init."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EEGModel(model_cfg)
        clf = EEGClassifier(model, strategy, dropout)
    if strategy != "scratch":
        if pretrained is None:
            raise ValueError(f"strategy {strategy!r} needs a pretrained state_dict")
        model.load_state_dict(pretrained, strict=True)
    return clf
