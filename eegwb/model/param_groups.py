"""AdamW parameter groups shared by pretraining and fine-tuning.

No weight decay on biases, norms, and parameters marked `_no_weight_decay` (Mamba-2's
A_log, D, dt_bias, as upstream): decaying them pulls the state-space dynamics towards
zero instead of regularising.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def weight_decay_groups(module: nn.Module, weight_decay: float, **extra: Any) -> list[dict]:
    """[{decayed params}, {no-decay params}] of `module`'s trainable parameters; `extra`
    (e.g. lr=...) is added to both groups; empty groups are dropped."""
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or getattr(p, "_no_weight_decay", False) else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay, **extra},
        {"params": no_decay, "weight_decay": 0.0, **extra},
    ]
    return [g for g in groups if g["params"]]
