"""How long a pretraining run will take here, said before it starts.

Measured, not modelled: two optimizer steps of the configured model on a real batch of
the configured data, on the device the run would use, times the steps the run will make
(epochs x training sequences // batch size), plus one validation pass per epoch. A CPU
that a laptop shares with a browser is slower than a benchmark; the estimate says what
this machine does now. Notebook 03 shows it beside the Train button.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from eegwb.config import ConfigError
from eegwb.data.dataset import EEGDataset, collate
from eegwb.train.config import PretrainConfig
from eegwb.train.distributed import resolve_device
from eegwb.train.pretrain_data import split_selections
from eegwb.train.pretrain_steps import build_objective, make_optimizer, train_step

MEASURED_STEPS = 2  # the first pays for allocation and kernel choice; the faster one counts


@dataclass(frozen=True)
class RunEstimate:
    """Seconds a run will take: steps x measured seconds per step, plus validation."""

    epochs: int
    steps_per_epoch: int
    seconds_per_step: float
    val_batches: int
    seconds_per_val_batch: float
    device: str
    train_sequences: int
    val_sequences: int
    max_steps: int | None = None  # train.max_steps: the run stops there
    may_stop_early: bool = False  # train.patience > 0: early stopping can end it sooner

    @property
    def total_s(self) -> float:
        steps = self.epochs * self.steps_per_epoch
        if self.max_steps is not None:
            steps = min(steps, self.max_steps)
        epochs = math.ceil(steps / self.steps_per_epoch)
        return (
            steps * self.seconds_per_step + epochs * self.val_batches * self.seconds_per_val_batch
        )

    def text(self) -> str:
        """One sentence: "about 2 min: 12 epochs x 45 steps at 0.21 s/step on cpu, ..."."""
        bound = "at most" if self.may_stop_early else "about"
        steps = f"{self.steps_per_epoch} step{'s' if self.steps_per_epoch != 1 else ''}"
        return (
            f"{bound} {format_duration(self.total_s)}: {self.epochs} epochs x {steps} at "
            f"{self.seconds_per_step:.2g} s/step on {self.device} ({self.train_sequences} "
            f"training, {self.val_sequences} validation sequences; measured on this model "
            "here, now)"
        )


def format_duration(seconds: float) -> str:
    """12 s, 4 min, 2.5 h: the unit a person plans with."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def estimate_pretrain(cfg: PretrainConfig) -> RunEstimate:
    """Open the run's train and val splits (no leakage gate: nothing trains), build its
    model and time `MEASURED_STEPS` steps on the first training batch."""
    roots, sels, _ = split_selections(cfg)
    d = cfg.data
    splits = {
        s: EEGDataset.open(
            roots[s],
            selection=sels[s],
            channels=d.channels,
            normalisation=d.normalisation,
            max_windows=d.max_windows,
            cache_dir=d.cache_dir,
        )
        for s in ("train", "val")
    }
    train, val = splits["train"], splits["val"]
    tc = cfg.train
    if len(train) < tc.batch_size:
        raise ConfigError(
            f"train.batch_size: {tc.batch_size} is larger than the {len(train)} "
            f"training sequences of {roots['train']}"
        )
    device = resolve_device(tc.device)
    _, objective = build_objective(cfg, device)
    optimizer = make_optimizer(objective, tc)
    batch = collate([train[i] for i in range(tc.batch_size)]).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    step_s = []
    for _ in range(MEASURED_STEPS):
        _sync(device)
        t0 = time.perf_counter()
        train_step(
            objective,
            optimizer,
            batch,
            lr=tc.lr,
            grad_clip=tc.grad_clip,
            generator=generator,
            precision=tc.precision,
        )
        _sync(device)
        step_s.append(time.perf_counter() - t0)
    objective.eval()
    with torch.no_grad():
        _sync(device)
        t0 = time.perf_counter()
        objective(batch, generator=generator)
        _sync(device)
        val_s = time.perf_counter() - t0
    return RunEstimate(
        epochs=tc.epochs,
        steps_per_epoch=len(train) // tc.batch_size,
        seconds_per_step=min(step_s),
        val_batches=math.ceil(len(val) / tc.batch_size),
        seconds_per_val_batch=val_s,
        device=str(device),
        train_sequences=len(train),
        val_sequences=len(val),
        max_steps=tc.max_steps,
        may_stop_early=tc.patience > 0,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
