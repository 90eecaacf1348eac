"""What a pretraining run carries from step to step (`Run`), what it returns (`RunResult`),
and how both go into and come out of a checkpoint.

A `last` checkpoint holds the exact position in training: (epoch, step_in_epoch, every
RNG of every rank), the running sums of the epoch under way, the optimizer and the
history, so `pretrain(cfg, resume=path)` continues as if the run had never stopped. The
keys are listed in checkpoints.py's docstring; `checkpoint_state` writes them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from eegwb.config import ConfigError, config_diff, to_dict
from eegwb.data.dataset import collate
from eegwb.train import distributed as ddp
from eegwb.train.checkpoints import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    same_run,
    set_rng_state,
)
from eegwb.train.config import PretrainConfig
from eegwb.train.pretrain_data import RunData
from eegwb.train.pretrain_steps import build_objective, make_optimizer

if TYPE_CHECKING:
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
EMPTY_SUMS = {"train_loss": 0.0, "grad_norm": 0.0, "steps": 0}


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


@dataclass
class Run:
    """One pretraining run in progress: its parts, and its position (epoch, step_in_epoch,
    step, the epoch's running sums, early-stopping count). `stop` is set by a failed gate,
    early stopping or max_steps; `result.stopped` says which."""

    cfg: PretrainConfig
    data: RunData
    info: ddp.DistInfo
    paths: dict[str, Path]  # "best" and "last" checkpoint files
    model: nn.Module
    objective: nn.Module  # holds `model` under `prefix`, plus the target's state (EMA teacher)
    train_obj: nn.Module  # `objective`, DDP-wrapped under torchrun
    optimizer: torch.optim.Optimizer
    mask_gen: torch.Generator  # this rank's training masks
    prefix: str
    per_epoch: int  # optimizer steps per epoch
    total_steps: int
    val_loader: DataLoader
    describe: dict
    run_uid: str
    result: RunResult
    resumed_from: dict | None = None  # the `last` checkpoint this run continues
    resume_path: str | Path | None = None
    epoch: int = 0  # epochs done
    step_in_epoch: int = 0
    step: int = 0
    bad_epochs: int = 0
    sums: dict = field(default_factory=lambda: dict(EMPTY_SUMS))
    stop: bool = False

    @property
    def stem(self) -> str:
        return self.paths["best"].name.removesuffix(".pt")


def new_run(
    cfg: PretrainConfig,
    data: RunData,
    info: ddp.DistInfo,
    paths: dict[str, Path],
    ckpt: dict | None,
    resume_path: str | Path | None,
) -> Run:
    """Model, objective, optimizer and masks; restored from `ckpt` (a `last` checkpoint)."""
    tc, device = cfg.train, info.device
    model, objective = build_objective(cfg, device)
    prefix = _model_prefix(objective, model)
    optimizer = make_optimizer(objective, tc)
    per_epoch = len(data.train) // tc.batch_size
    if per_epoch == 0:
        raise ConfigError(
            f"train.batch_size: {tc.batch_size} is larger than the {len(data.train)} training "
            f"sequences of {data.roots['train']}"
        )
    mask_gen = torch.Generator(device=device).manual_seed(tc.seed * 7919 + info.rank + 1)
    result = RunResult(
        best_checkpoint=None,
        last_checkpoint=None,
        config=to_dict(cfg),
        fingerprint=data.fingerprint,
        leaky=data.leaky,
    )
    run_uid = (ckpt or {}).get("run_uid") or uuid.uuid4().hex
    # Running sums of the epoch under way: saved, so a mid-epoch resume averages all its steps.
    sums = dict((ckpt or {}).get("epoch_sums") or EMPTY_SUMS)
    if ckpt is not None:
        _restore(ckpt, model, objective, optimizer, prefix, mask_gen, info.rank, info.world_size)
    train_obj = objective
    if info.distributed:
        train_obj = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device] if device.type == "cuda" else None
        )
    describe = model.describe()
    result.kernel_path = str(describe.get("kernel_path", ""))
    val_loader = DataLoader(
        data.val,
        batch_size=tc.batch_size,
        shuffle=False,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(tc.seed),
    )
    run = Run(
        cfg,
        data,
        info,
        paths,
        model,
        objective,
        train_obj,
        optimizer,
        mask_gen,
        prefix,
        per_epoch,
        tc.epochs * per_epoch,
        val_loader,
        describe,
        run_uid,
        result,
        resumed_from=ckpt,
        resume_path=resume_path,
        sums=sums,
    )
    if ckpt is not None:
        run.epoch, run.step_in_epoch, run.step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["step"]
        run.bad_epochs, result.best_val_loss = ckpt["bad_epochs"], ckpt["best_val_loss"]
        result.history, result.steps, result.gates = (
            list(ckpt["history"]),
            list(ckpt["steps"]),
            list(ckpt["gates"]),
        )
    return run


def _model_prefix(objective: nn.Module, model: nn.Module) -> str:
    for name, child in objective.named_children():
        if child is model:
            return f"{name}."
    raise RuntimeError("the objective does not hold the model as a direct submodule")


def _restore(
    ckpt: dict, model, objective, optimizer, prefix: str, mask_gen, rank: int, world_size: int
) -> None:
    """Weights, optimizer and this rank's RNG states from a `last` checkpoint."""
    model.load_state_dict(ckpt["model"])
    objective.load_state_dict(
        {**{prefix + k: v for k, v in ckpt["model"].items()}, **ckpt["objective"]}
    )
    optimizer.load_state_dict(ckpt["optimizer"])
    ranks = ckpt["rng"]["ranks"]
    if len(ranks) != world_size and rank == 0:  # batches and masks are drawn per process
        logger.warning(
            "resuming a run of %d process(es) with %d: training goes on, but not exactly as "
            "the uninterrupted run would have (other batches and masks per process)",
            len(ranks),
            world_size,
        )
    set_rng_state(ranks[rank] if rank < len(ranks) else ranks[0], mask_gen)


def gather_rng(run: Run) -> list:
    """Every rank's RNG states (a collective under DDP: every rank calls it)."""
    mine = rng_state(run.mask_gen)
    if not run.info.distributed:
        return [mine]
    out = [None] * run.info.world_size
    torch.distributed.all_gather_object(out, mine)
    return out


def checkpoint_state(run: Run, kind: str, ranks_rng: list) -> dict:
    """The checkpoint dict of `run` at its current position (keys: checkpoints.py)."""
    r, tc = run.result, run.cfg.train
    full = run.objective.state_dict()
    return {
        "kind": kind,
        "model": run.model.state_dict(),
        "objective": {k: v for k, v in full.items() if not k.startswith(run.prefix)},
        "optimizer": run.optimizer.state_dict(),
        "scheduler": {
            "name": "warmup_cosine",
            "step": run.step,
            "total_steps": run.total_steps,
            "warmup_fraction": tc.warmup_fraction,
        },
        "step": run.step,
        "epoch": run.epoch,
        "step_in_epoch": run.step_in_epoch,
        "epoch_sums": dict(run.sums),
        "config": to_dict(run.cfg),
        "run_uid": run.run_uid,
        "rng": {"ranks": ranks_rng},
        "fingerprint": dict(run.data.fingerprint),
        "assignment": run.data.assignment,
        # resolved, so fine-tuning from another directory still knows whom pretraining saw
        "data_roots": {s: str(Path(root).resolve()) for s, root in run.data.roots.items()},
        "gates": list(r.gates),
        "history": list(r.history),
        "steps": list(r.steps),
        "best_val_loss": r.best_val_loss,
        "bad_epochs": run.bad_epochs,
        "stopped": r.stopped,
        "describe": {
            k: v for k, v in run.describe.items() if isinstance(v, (str, int, float, bool))
        },
    }


def load_resume(path: str | Path, cfg: PretrainConfig) -> dict:
    """The `last` checkpoint at `path`, if `cfg` differs from its config only in keys a
    resume may change (RESUME_MAY_CHANGE)."""
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


def refuse_foreign_checkpoints(
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
