"""The single steps of masked-reconstruction pretraining as plain functions: `lr_at`,
`train_step`, `evaluate`, `make_optimizer`, `check_gates`, `loss_chart` (nanoGPT's `get_lr`,
its step and `estimate_loss`). `pretrain.py` strings them into a run.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

from eegwb.model.eeg_model import EEGModel
from eegwb.model.objective import MaskedReconstruction
from eegwb.model.param_groups import weight_decay_groups
from eegwb.train.collapse import CollapseStats
from eegwb.train.config import PretrainConfig, TrainConfig

if TYPE_CHECKING:
    import altair as alt

EVAL_SEED_OFFSET = 1_000_003  # validation masks: fixed per run, unrelated to training masks


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate for 0-based `step`: linear warmup, then cosine down to lr * min_lr_ratio."""
    warmup = math.ceil(cfg.warmup_fraction * total_steps)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    )


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (precision auto/bf16), fp32 elsewhere unless bf16 is asked for."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def build_objective(
    cfg: PretrainConfig, device: torch.device
) -> tuple[EEGModel, MaskedReconstruction]:
    """(model, objective holding it); seeded, so every rank and rerun starts from the same
    weights."""
    torch.manual_seed(cfg.train.seed)
    model = EEGModel(cfg.model)
    return model, MaskedReconstruction(model, cfg.masking).to(device)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms and parameters marked `_no_weight_decay`
    (Mamba-2's A_log, D, dt_bias, as upstream)."""
    groups = weight_decay_groups(model, cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def train_step(
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch,
    *,
    lr: float,
    grad_clip: float,
    generator: torch.Generator | None,
    precision: str = "auto",
) -> dict[str, float]:
    """One optimizer step on `batch` (already on the device): {"train_loss", "grad_norm", "lr"}."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    objective.train()
    device = batch.x.device
    with autocast_for(device, precision):
        out = objective(batch, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    optimizer.step()
    unwrap(objective).after_step()
    return {"train_loss": float(out.loss.detach()), "grad_norm": float(norm), "lr": lr}


@torch.no_grad()
def evaluate(
    objective: nn.Module, batches: Iterable, *, seed: int, precision: str = "auto"
) -> dict[str, float]:
    """Validation loss (MSE over all masked positions of the split) and the collapse stats.

    Masks come from a generator seeded with `seed`, so successive evaluations of one run
    score the same masked positions and their losses are comparable.
    """
    objective = unwrap(objective)
    was_training = objective.training
    objective.eval()
    stats = CollapseStats()
    total, count = 0.0, 0
    generator = None
    for batch in batches:
        if generator is None:
            generator = torch.Generator(device=batch.x.device).manual_seed(seed)
        with autocast_for(batch.x.device, precision):
            out = objective(batch, generator=generator)
        n = int(out.mask.sum())
        if n:
            total += float(out.loss) * n
            count += n
            stats.update(out.pred.float(), out.target.float(), out.mask)
    objective.train(was_training)
    return {"val_loss": total / count if count else float("nan"), **stats.result()}


def check_gates(cfg: PretrainConfig, epoch: int, row: dict) -> tuple[list[dict], list[str], bool]:
    """Gates due at the end of `epoch` (1-based): (results, failure messages, stop?)."""
    results, failures, stop = [], [], False
    for g in cfg.gates:
        if g.epoch != epoch:
            continue
        res = g.check(row[g.metric])
        results.append(res)
        if not res["passed"]:
            bounds = (
                f"<= {g.max}" if g.max is not None else "",
                f">= {g.min}" if g.min is not None else "",
            )
            failures.append(
                f"gate failed at epoch {g.epoch}: {g.metric} = {res['value']:.4g}, "
                f"required {' and '.join(b for b in bounds if b)} (action: {g.action})"
            )
            stop = stop or g.action == "stop"
    return results, failures, stop


def loss_chart(
    history: list[dict], title: str = "loss per epoch", floors: dict[str, float] | None = None
) -> alt.Chart | alt.LayerChart:
    """Train and validation loss per epoch, the axis zoomed to the values drawn.

    `floors` ({"dataset mean": 1.02, "position": 0.97, ...}, the information floors of the
    validation data for `signal` targets) are drawn as labelled dashed lines: whether 0.97
    is the position floor or below it is the question, and on an axis from 0 both look
    the same."""
    import altair as alt
    import polars as pl

    rows = [
        {"epoch": h["epoch"], "split": split, "loss": h[key]}
        for h in history
        if h.get("kind", "epoch") == "epoch"
        for split, key in (("train", "train_loss"), ("val", "val_loss"))
        if h.get(key) is not None and math.isfinite(h[key])
    ]
    data = pl.DataFrame(rows, schema={"epoch": pl.Int64, "split": pl.String, "loss": pl.Float64})
    lines = {k: v for k, v in (floors or {}).items() if v is not None and math.isfinite(v)}
    shown = [*data["loss"].to_list(), *lines.values()]
    lo, hi = (min(shown), max(shown)) if shown else (0.0, 1.0)
    pad = 0.08 * (hi - lo) or 0.05 * abs(hi) or 0.05
    y = alt.Y(
        "loss:Q",
        title="MSE (masked)",
        scale=alt.Scale(domain=[lo - pad, hi + pad], zero=False, nice=False),
    )
    chart = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
            y=y,
            color="split:N",
            tooltip=["epoch", "split", alt.Tooltip("loss:Q", format=".4f")],
        )
    )
    if lines:
        ref = pl.DataFrame(
            {
                "floor": [f"{k} floor {v:.4f}" for k, v in lines.items()],
                "loss": list(lines.values()),
            }
        )
        rules = alt.Chart(ref).mark_rule(color="gray", strokeDash=[4, 3]).encode(y=y)
        labels = (
            alt.Chart(ref)
            .mark_text(align="left", dx=4, dy=-6, color="gray", fontSize=10)
            .encode(y=y, x=alt.value(0), text="floor:N")
        )
        chart = rules + labels + chart
    return chart.properties(title=title)
