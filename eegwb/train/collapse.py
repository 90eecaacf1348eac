"""The original pipeline's real-time collapse checks, computed over masked positions.

A masked-reconstruction model collapses when it predicts (nearly) the same output at
every masked position whatever the input; an `embedding` target collapses when the
trainable target encoder maps every window to (nearly) the same vector, so the loss can
fall to zero while nothing is learnt. Both show up as a tiny *variance across positions*:

    pred_var    = mean over output features of Var_positions(pred[..., f])
    target_var  = the same for the target
    var_ratio   = pred_var / target_var    (near 0: predictions ignore the input)

plus the overall means (a model that outputs the dataset mean has pred_mean ~ target_mean
and var_ratio ~ 0). Accumulated in float64 over every masked position of a split.
"""

from __future__ import annotations

import logging
import math

import torch

logger = logging.getLogger(__name__)

PRED_COLLAPSE_RATIO = 0.01  # predictions vary < 1% as much as targets: collapsed
TARGET_COLLAPSE_VAR = 1e-4  # normalised targets have variance ~1; ~0 means the target collapsed


class CollapseStats:
    """Running sums of predictions and targets at masked positions."""

    def __init__(self) -> None:
        self.n = 0
        self.sums: dict[str, torch.Tensor] = {}

    def update(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
        """pred, target (b, l, o); mask (b, l) True at masked real positions."""
        p = pred.detach()[mask].double()  # (m, o)
        t = target.detach()[mask].double()  # (m, o)
        if p.numel() == 0:
            return
        parts = {"p": p.sum(0), "pp": (p * p).sum(0), "t": t.sum(0), "tt": (t * t).sum(0)}
        for k, v in parts.items():
            self.sums[k] = self.sums[k] + v.cpu() if k in self.sums else v.cpu()
        self.n += p.shape[0]

    def result(self) -> dict[str, float]:
        """pred_var, pred_mean, target_var, target_mean, var_ratio (NaN when nothing was masked)."""
        if self.n == 0:
            nan = float("nan")
            return {
                k: nan for k in ("pred_var", "pred_mean", "target_var", "target_mean", "var_ratio")
            }
        n = self.n
        out = {}
        for name, s, ss in (("pred", "p", "pp"), ("target", "t", "tt")):
            mean_f = self.sums[s] / n  # (o,)
            var_f = (self.sums[ss] / n - mean_f**2).clamp_min(0.0)  # (o,)
            out[f"{name}_var"] = float(var_f.mean())
            out[f"{name}_mean"] = float(mean_f.mean())
        out["var_ratio"] = (
            out["pred_var"] / out["target_var"] if out["target_var"] > 0 else float("nan")
        )
        return out


def collapse_warnings(stats: dict[str, float]) -> list[str]:
    """Plain-words warnings for collapsed predictions or targets (empty when healthy)."""
    out = []
    if stats.get("target_var", 1.0) < TARGET_COLLAPSE_VAR:
        out.append(
            f"target collapse: target variance across masked positions is "
            f"{stats['target_var']:.3g} (the target encoder maps every window alike)"
        )
    ratio = stats.get("var_ratio", 1.0)
    if math.isfinite(ratio) and ratio < PRED_COLLAPSE_RATIO:
        out.append(
            f"prediction collapse: predictions vary {ratio:.3g}x as much as targets across "
            f"masked positions (pred mean {stats['pred_mean']:.3g}, target mean "
            f"{stats['target_mean']:.3g})"
        )
    return out
