"""Masked-reconstruction pretraining as plain functions: `lr_at`, `train_step`, `evaluate`,
and `pretrain(cfg)`, the loop that ties them to data, checkpoints and MLflow.

What a run does, in order: check the config's paths (before any work), split by
participant (or read a splits file), run the leakage gate, open the datasets, build the
model, then per epoch: train (AdamW, warmup + cosine LR, grad clipping, bf16 autocast on
CUDA), validate with fixed masks, run the original's collapse checks, evaluate gates,
early-stop, and write `best` and `last` checkpoints atomically. A `last` checkpoint holds
the exact position (epoch, batch within it, every RNG), so `resume=` continues as if the
run had never stopped. Under torchrun the same function runs DDP (see distributed.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from eegwb.config import ConfigError, config_diff, to_dict
from eegwb.model.param_groups import weight_decay_groups
from eegwb.train import distributed as ddp
from eegwb.train.autopsy_hook import AutopsyHook, autopsy_checkpoint, require_hook
from eegwb.train.checkpoints import (
    CheckpointError,
    checkpoint_name,
    load_checkpoint,
    same_run,
)
from eegwb.train.collapse import CollapseStats
from eegwb.train.config import PretrainConfig, TrainConfig
from eegwb.train.pretrain_data import prepare_data

if TYPE_CHECKING:
    import altair as alt
    import polars as pl

logger = logging.getLogger(__name__)

# Keys a resume may change: they never alter what the next step computes.
RESUME_MAY_CHANGE = (
    "train.max_steps",
    "train.overwrite",
    "train.log_every_steps",
    "train.checkpoint_dir",
    "train.device",
    "train.patience",
    "train.min_delta",
    "train.val_every_steps",
    "data.num_workers",
    "data.cache_dir",
    "data.allow_leakage",
    "tracking.",
)
EVAL_SEED_OFFSET = 1_000_003  # validation masks: fixed per run, unrelated to training masks


@dataclass
class RunResult:
    """What `pretrain` returns; `history` has one row per epoch (plus mid-epoch validations)."""

    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)  # {"step", "train_loss", "lr", "grad_norm"}
    best_val_loss: float = float("inf")
    stopped: str = "completed"  # completed | early_stopping | gate | max_steps
    gates: list[dict] = field(default_factory=list)
    run_id: str | None = None
    tracking_uri: str | None = None
    tracking_failures: list[str] = field(default_factory=list)
    kernel_path: str = ""
    fingerprint: dict = field(default_factory=dict)
    leaky: bool = False
    elapsed_s: float = 0.0
    config: dict = field(default_factory=dict)

    def history_frame(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(self.history, infer_schema_length=None)

    def summary(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        return {
            "best_val_loss": self.best_val_loss,
            "final_train_loss": last.get("train_loss", float("nan")),
            "epochs": last.get("epoch", 0),
            "steps": last.get("step", 0),
            "stopped": self.stopped,
            "kernel_path": self.kernel_path,
            "run_id": self.run_id or "",
            "best_checkpoint": str(self.best_checkpoint or ""),
            "elapsed_s": round(self.elapsed_s, 2),
        }


# ----------------------------------------------------------------------------- the plain functions


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


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


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
    _unwrap(objective).after_step()
    return {"train_loss": float(out.loss.detach()), "grad_norm": float(norm), "lr": lr}


@torch.no_grad()
def evaluate(
    objective: nn.Module, batches: Iterable, *, seed: int, precision: str = "auto"
) -> dict[str, float]:
    """Validation loss (MSE over all masked positions of the split) and the collapse stats.

    Masks come from a generator seeded with `seed`, so successive evaluations of one run
    score the same masked positions and their losses are comparable.
    """
    objective = _unwrap(objective)
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


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms and parameters marked `_no_weight_decay`
    (Mamba-2's A_log, D, dt_bias, as upstream)."""
    groups = weight_decay_groups(model, cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def loss_chart(history: list[dict], title: str = "loss per epoch") -> alt.Chart:
    """Altair line chart of train and validation loss per epoch."""
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
    return (
        alt.Chart(data, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch"),
            y=alt.Y("loss:Q", title="MSE (masked)"),
            color="split:N",
            tooltip=["epoch", "split", alt.Tooltip("loss:Q", format=".4f")],
        )
    )


# ----------------------------------------------------------------------------- the loop


def pretrain(
    cfg: PretrainConfig,
    progress: Callable[[dict], None] | None = None,
    *,
    resume: str | Path | None = None,
    bar: bool | None = None,
    autopsy: AutopsyHook | None = None,
) -> RunResult:
    """Run one pretraining (DDP when started by torchrun). See the module docstring.

    `progress` is called with {"kind": "step"|"epoch"|"val", ...metrics} on the main
    process (the notebook's progress bar and live chart). `bar`: tqdm bar; None means
    "when stderr is a terminal and $CI is unset" (else one log line per epoch).
    `autopsy`: called on the best checkpoint at the end when `train.autopsy` is set
    (see autopsy_hook.py).
    """
    from eegwb.train.pretrain_loop import run_loop  # the loop imports this module's steps


    t0 = time.perf_counter()
    cfg.check_paths()
    require_hook(cfg.train.autopsy, autopsy)
    info = ddp.init_distributed(cfg.train.device)
    try:
        ckpt = _load_resume(resume, cfg) if resume is not None else None
        paths = {
            k: Path(cfg.train.checkpoint_dir) / checkpoint_name(cfg, k) for k in ("best", "last")
        }
        if not cfg.train.overwrite:
            _refuse_foreign_checkpoints(paths, ckpt, resume)
        data = prepare_data(cfg, info)
        if (
            ckpt is not None
            and ckpt.get("fingerprint", {}).get("dataset") != data.fingerprint["dataset"]
        ):
            raise CheckpointError(
                f"{resume}: was trained on dataset fingerprint {ckpt.get('fingerprint')}, "
                f"this config resolves to {data.fingerprint}; resume needs the same data and split"
            )
        show_bar = bar if bar is not None else (sys.stderr.isatty() and not os.environ.get("CI"))
        result = run_loop(
            cfg,
            data,
            info,
            paths,
            ckpt=ckpt,
            progress=progress,
            bar=show_bar and info.is_main,
            resume_path=resume,
        )
    finally:
        ddp.cleanup(info)
    result.elapsed_s = time.perf_counter() - t0
    if cfg.train.autopsy and info.is_main:
        # The best checkpoint (the last if none). `autopsy_once` keeps a marker, so a finished
        # run that also stopped early, or a resumed run ending on the same file, is one autopsy.
        checkpoint = Path(result.best_checkpoint or result.last_checkpoint)
        autopsy_checkpoint(autopsy, checkpoint, run_id=result.run_id, tracking_uri=result.tracking_uri)
    return result


def _refuse_foreign_checkpoints(
    paths: dict[str, Path], ckpt: dict | None, resume: str | Path | None
) -> None:
    """A run writes over no other run's checkpoints: a fresh run over none at all, a resumed
    one only over its own (`train.checkpoint_dir` may change on resume)."""
    existing = [p for p in paths.values() if p.exists()]
    if ckpt is None and existing:
        raise ConfigError(
            f"train.overwrite: {existing[0]} already exists (set train.overwrite=true "
            "/ --overwrite to replace it, or --resume it)"
        )
    foreign = [str(p) for p in existing if ckpt is not None and not same_run(p, ckpt, resume)]
    if foreign:
        raise ConfigError(
            f"train.overwrite: {foreign} belong to another run than {resume}; resuming would "
            "replace them (set train.overwrite=true / --overwrite, or another train.checkpoint_dir)"
        )


def _load_resume(path: str | Path, cfg: PretrainConfig) -> dict:
    ckpt = load_checkpoint(path)
    diff = {
        k: v
        for k, v in config_diff(ckpt["config"], to_dict(cfg)).items()
        if not k.startswith(RESUME_MAY_CHANGE)
    }
    if diff:
        shown = "; ".join(
            f"{k}: checkpoint {a!r} vs config {b!r}"
            for k, a, b in ((k, *v) for k, v in list(diff.items())[:5])
        )
        raise CheckpointError(f"{path}: cannot resume with a different config ({shown})")
    if "step_in_epoch" not in ckpt:
        raise CheckpointError(f"{path}: holds no training position (not a pretraining checkpoint)")
    return ckpt
