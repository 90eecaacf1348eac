"""Model diagnostics on a checkpoint and a split: the original hand analysis, made precise.

One pass over the split with fixed masks scores the model's loss and, on exactly the
same masked tokens, the targets' information floors (eegwb.evaluation.floors) and the
predictions' statistics:

    var_ratio           prediction variance across tokens / target variance
    pred_mean           vs target_mean
    corr_t              the original's number: corr(t/T, per-token mean prediction)
    position_eta2       fraction of prediction variance explained by position
    channel_std         the original's number: std over channels of the mean prediction
    channel_eta2        fraction of prediction variance explained by channel
    top3_var            variance of the predictions in their top 3 principal components
    consistency_ratio   same token under two masks vs two samples of its channel x position
                        group: ~0 sample-specific and stable, ~1 noise (mask < 1 only)
    target_var          variance of the targets across tokens (embedding targets collapse)

`eta2` is between-group / total variance of the predictions (the same group keys as the
floors), so "explained by position" means what the floors mean by position.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from eegwb.config import from_dict
from eegwb.data.dataset import EEGDataset
from eegwb.errors import InputError
from eegwb.evaluation.floor_data import TokenKeys
from eegwb.evaluation.floors import FloorAccumulator, Floors
from eegwb.model.eeg_model import EEGModel
from eegwb.model.objective import MaskedReconstruction
from eegwb.train.checkpoints import CheckpointError, load_checkpoint
from eegwb.train.collapse import PRED_COLLAPSE_RATIO, TARGET_COLLAPSE_VAR
from eegwb.train.config import PretrainConfig
from eegwb.train.pretrain_data import split_selections

# name -> (rule, threshold, the original analysis's value or rule, reading if hit, if not)
THRESHOLDS: dict[str, tuple[str, float, str, str, str]] = {
    "var_ratio": (
        "<",
        PRED_COLLAPSE_RATIO,
        "collapse check: < 0.01",
        "predictions nearly constant (the dataset mean)",
        "predictions vary",
    ),
    "corr_t": (
        "|r| >=",
        0.3,
        "0.40 with the temporal encoding on",
        "predictions follow t/T",
        "no linear trend with t/T",
    ),
    "position_eta2": (
        ">=",
        0.10,
        "(new)",
        "position explains the predictions",
        "position explains little",
    ),
    "channel_std": (
        "<",
        0.01,
        "0.0000 (channels ignored)",
        "no channel diversity in the mean prediction",
        "mean prediction differs by channel",
    ),
    "channel_eta2": (
        ">=",
        0.10,
        "(new)",
        "channel explains the predictions",
        "channel explains little",
    ),
    "top3_var": (
        ">=",
        0.90,
        "(new)",
        "predictions live in <= 3 directions (templates)",
        "predictions are high-dimensional",
    ),
    "consistency_ratio": (
        "<",
        0.5,
        "(new)",
        "predictions are sample-specific",
        "predictions are not sample-specific",
    ),
    "target_var": (
        "<",
        TARGET_COLLAPSE_VAR,
        "collapse check: < 1e-4",
        "targets collapsed",
        "targets vary",
    ),
}


@dataclass(frozen=True)
class ModelDiagnostics:
    val_loss: float  # MSE over the probed masked tokens (the floors' tokens)
    n_tokens: int
    pred_mean: float
    target_mean: float
    pred_var: float  # per element, across tokens
    target_var: float
    var_ratio: float
    corr_t: float
    position_eta2: float
    channel_eta2: float
    channel_position_eta2: float
    channel_std: float
    top3_var: float
    consistency_same: float  # mean squared change of a token's prediction under a second mask
    consistency_between: float  # expected squared difference of two samples of its group
    consistency_ratio: float  # same / between; NaN at mask 1.0 (both masks hide everything)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def rows(self) -> list[dict[str, Any]]:
        """The diagnostics table: value, the threshold beside it, and what it says."""
        out = []
        for name, value in asdict(self).items():
            if name not in THRESHOLDS:
                continue
            rule, limit, original, if_hit, if_not = THRESHOLDS[name]
            hit = _hits(rule, float(value), limit)
            reading = "n/a" if hit is None else (if_hit if hit else if_not)
            out.append(
                {
                    "diagnostic": name,
                    "value": float(value),
                    "threshold": f"{rule} {limit:g}",
                    "original": original,
                    "reading": reading,
                }
            )
        out.insert(
            1,
            {
                "diagnostic": "pred_mean - target_mean",
                "value": self.pred_mean - self.target_mean,
                "threshold": "",
                "original": "pred mean ~ target mean",
                "reading": "the mean is learnt"
                if abs(self.pred_mean - self.target_mean)
                <= 0.1 * math.sqrt(max(self.target_var, 0.0))
                else "mean is off",
            },
        )
        return out


def _hits(rule: str, value: float, limit: float) -> bool | None:
    if not math.isfinite(value):
        return None
    if rule == "<":
        return value < limit
    if rule == ">=":
        return value >= limit
    return abs(value) >= limit  # "|r| >="


@torch.no_grad()
def probe(
    objective: torch.nn.Module,
    batches: Iterable,
    *,
    seed: int = 0,
    consistency: bool = True,
    pca_tokens: int = 4096,
    keys: TokenKeys | None = None,
    people: torch.Tensor | None = None,
    train: FloorAccumulator | None = None,
) -> tuple[Floors, ModelDiagnostics]:
    """Floors of the targets and diagnostics of the predictions over masked tokens.

    objective: a MaskedReconstruction (or anything returning ObjectiveOutput(loss, pred,
    target, mask) from `objective(batch, generator=...)`); batches: Batch objects already
    on the objective's device. Masks come from a generator seeded with `seed`. For
    transfer floors: `train` (eegwb.evaluation.floor_data.fit_floors of the training
    split), the `keys` it was fitted with, and `people` (participant id by seq_index).
    """
    was_training = objective.training
    objective.eval()
    keys = keys or TokenKeys()
    targets, preds = FloorAccumulator(), FloorAccumulator()
    sse, n_el = 0.0, 0
    corr = torch.zeros(6, dtype=torch.float64)  # n, sx, sy, sxx, syy, sxy
    same_sum, same_n = 0.0, 0
    sample_gen = torch.Generator().manual_seed(seed)
    sample: list[torch.Tensor] = []
    gens = None
    try:
        for batch in batches:
            device = batch.x.device
            if gens is None:
                gens = [torch.Generator(device=device).manual_seed(seed + k) for k in (0, 1)]
            out = objective(batch, generator=gens[0])
            mask = out.mask  # (b, l)
            who = None if people is None else people[batch.seq_index.cpu()]
            index, length, chan, *person = keys.of(batch.coords, batch.lengths, mask, who)  # (m,)
            p = out.pred[mask].double()  # (m, o)
            t = out.target[mask].double()
            if p.shape[0] == 0:
                continue
            targets.update(t, index, length, chan, *person)
            preds.update(p, index, length, chan)
            sse += float((p - t).square().sum())
            n_el += p.numel()
            x = (index.double() / length.double()).cpu()  # t/T as the temporal encoding sees it
            y = p.mean(1).cpu()
            corr += torch.stack(
                [
                    torch.tensor(float(len(x)), dtype=torch.float64),
                    x.sum(),
                    y.sum(),
                    (x * x).sum(),
                    (y * y).sum(),
                    (x * y).sum(),
                ]
            )
            keep = torch.randperm(p.shape[0], generator=sample_gen)[: max(1, pca_tokens // 4)]
            sample.append(p[keep.to(device)].cpu())
            if (
                consistency
                and float(getattr(getattr(objective, "masking", None), "mask_ratio", 0.0)) < 1.0
            ):
                out2 = objective(batch, generator=gens[1])
                both = mask & out2.mask
                diff = (out.pred - out2.pred).double().square().mean(-1)[both]
                same_sum += float(diff.sum())
                same_n += int(both.sum())
    finally:
        objective.train(was_training)
    if n_el == 0:
        raise InputError(
            "probe: no masked tokens in the given batches (empty split or mask_ratio 0)"
        )
    return targets.result(train), _diagnostics(
        targets,
        preds,
        sse / n_el,
        corr,
        sample,
        same_sum / same_n if same_n else math.nan,
        pca_tokens,
        seed,
    )


def _diagnostics(
    targets: FloorAccumulator,
    preds: FloorAccumulator,
    loss: float,
    corr: torch.Tensor,
    sample: list[torch.Tensor],
    same: float,
    pca_tokens: int,
    seed: int,
) -> ModelDiagnostics:
    tf, pf = targets.result(), preds.result()
    total = pf.nothing.mse

    def eta2(kind: str) -> float:
        return min(1.0, max(0.0, 1.0 - pf.mse(kind) / total)) if total > 0 else 0.0

    n, sx, sy, sxx, syy, sxy = corr.tolist()
    cov = sxy / n - sx * sy / n**2
    vx, vy = sxx / n - (sx / n) ** 2, syy / n - (sy / n) ** 2
    r = cov / math.sqrt(vx * vy) if vx > 1e-12 and vy > 1e-12 else 0.0
    chan_means = preds.groups["channel"].mean.mean(1)  # (channels,) mean prediction per channel
    chan_std = float(chan_means.std(unbiased=False)) if len(chan_means) > 1 else 0.0
    stack = torch.cat(sample)
    if stack.shape[0] > pca_tokens:
        stack = stack[
            torch.randperm(stack.shape[0], generator=torch.Generator().manual_seed(seed))[
                :pca_tokens
            ]
        ]
    centred = stack - stack.mean(0)
    sv2 = torch.linalg.svdvals(centred).square()
    top3 = float(sv2[:3].sum() / sv2.sum()) if float(sv2.sum()) > 1e-18 else 1.0
    between = 2.0 * pf.mse("channel_position", unbiased=True)  # E|a - b|^2, a, b from one group
    ratio = same / between if math.isfinite(same) and between > 1e-12 else math.nan
    return ModelDiagnostics(
        val_loss=loss,
        n_tokens=tf.n_tokens,
        pred_mean=pf.target_mean,
        target_mean=tf.target_mean,
        pred_var=total,
        target_var=tf.target_var,
        var_ratio=total / tf.target_var if tf.target_var > 0 else math.nan,
        corr_t=r,
        position_eta2=eta2("position"),
        channel_eta2=eta2("channel"),
        channel_position_eta2=eta2("channel_position"),
        channel_std=chan_std,
        top3_var=top3,
        consistency_same=same,
        consistency_between=between,
        consistency_ratio=ratio,
    )


# ----------------------------------------------------------------------------- checkpoint + split


def load_objective(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """(MaskedReconstruction with the checkpoint's weights, its PretrainConfig), in eval mode."""

    ckpt = load_checkpoint(checkpoint, map_location=device)
    try:
        cfg = from_dict(PretrainConfig, ckpt["config"])
    except ValueError as err:
        raise CheckpointError(f"{checkpoint}: its config does not load ({err})") from err
    model = EEGModel(cfg.model)
    objective = MaskedReconstruction(model, cfg.masking)
    prefix = next(name for name, child in objective.named_children() if child is model) + "."
    state = {prefix + k: v for k, v in ckpt["model"].items()}
    state.update(ckpt.get("objective") or {})
    try:
        objective.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{checkpoint}: weights do not fit its config ({err})") from err
    return objective.to(device).eval(), cfg


def open_split(cfg: Any, split: str = "val", data_root: str | Path | None = None) -> Any:
    """The EEGDataset of a config's split ("train", "val" or "all" sequences).

    With `data_root`, the config's split fractions and seed are applied to that dataset
    instead (its splits file, which names another dataset, is not used).
    """

    if split not in ("train", "val", "all"):
        raise InputError(f"split must be 'train', 'val' or 'all', got {split!r}")
    cfg = copy.deepcopy(cfg)
    if data_root is not None:
        cfg.data.root, cfg.data.splits = str(data_root), None
    if split == "all":
        root, selection = Path(cfg.data.root), None
    else:
        roots, sels, _ = split_selections(cfg)
        root, selection = roots[split], sels[split]
    return EEGDataset.open(
        root,
        selection=selection,
        channels=cfg.data.channels,
        normalisation=cfg.data.normalisation,
        max_windows=cfg.data.max_windows,
        cache_dir=cfg.data.cache_dir,
    )
