"""Masked-reconstruction pretraining, top to bottom: `pretrain(cfg)` sets a run up, then
per epoch trains, validates and writes checkpoints.

What a run does, in order: check the config's paths (before any work), own the
checkpoint name for the whole run (a lock: a second run of that name fails at once;
temporary files of killed saves are removed), split by participant (or read a splits
file), run the leakage gate, open the datasets, build the model (`setup`); then per
epoch (`train_epoch`): train (AdamW, warmup + cosine LR, grad clipping, bf16 autocast on
CUDA); at its end (`end_epoch`): validate with fixed masks, run the original's collapse
checks, evaluate gates, early-stop; then write `best` and `last` checkpoints atomically
(`save_checkpoints`). Under torchrun the same function runs DDP (see distributed.py).

The position in training is (epoch, step_in_epoch, every RNG). Batches of an epoch come
from `distributed.epoch_batches(seed, epoch)`, a pure function of the epoch, so resuming
at step_in_epoch k just skips the first k batches, and N/2 steps + resume + N/2 steps give
the same parameters as N steps straight. The single steps (`lr_at`, `train_step`,
`evaluate`) are in pretrain_steps.py; the run's state and checkpoints in pretrain_state.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from eegwb.config import dump_yaml, to_dict
from eegwb.data.dataset import collate
from eegwb.train import distributed as ddp
from eegwb.train.autopsy_hook import AutopsyHook, autopsy_checkpoint, require_hook
from eegwb.train.checkpoints import (
    CheckpointError,
    checkpoint_name,
    claim_checkpoint_name,
    same_run,
    save_checkpoint,
)
from eegwb.train.collapse import collapse_warnings
from eegwb.train.config import PretrainConfig, TrainConfig
from eegwb.train.pretrain_data import prepare_data
from eegwb.train.pretrain_state import (
    EMPTY_SUMS,
    Run,
    RunResult,
    checkpoint_state,
    gather_rng,
    load_resume,
    new_run,
    refuse_foreign_checkpoints,
)
from eegwb.train.pretrain_steps import (
    EVAL_SEED_OFFSET,
    check_gates,
    evaluate,
    loss_chart,
    lr_at,
    make_optimizer,
    train_step,
)
from eegwb.train.tracking import (
    TAG_CHECKPOINT,
    TAG_CHECKPOINT_LAST,
    TAG_DATASET_FINGERPRINT,
    TAG_KERNEL,
    Tracker,
)

# Names notebooks and tests use from here; they live in the step and state modules.
__all__ = [
    "RunResult",
    "evaluate",
    "loss_chart",
    "lr_at",
    "make_optimizer",
    "pretrain",
    "train_step",
]

logger = logging.getLogger(__name__)
Progress = Callable[[dict], None]
EPOCH_LOG_KEYS = (
    "train_loss",
    "val_loss",
    "grad_norm",
    "lr",
    "pred_var",
    "pred_mean",
    "target_var",
    "target_mean",
    "var_ratio",
)


def pretrain(
    cfg: PretrainConfig,
    progress: Progress | None = None,
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
    t0 = time.perf_counter()
    cfg.check_paths()
    require_hook(cfg.train.autopsy, autopsy)
    info = ddp.init_distributed(cfg.train.device)
    # The main process owns the checkpoint name for the whole run (a second run of the same
    # name fails at once, naming this one); torchrun stops the other ranks if it fails.
    owner = (
        claim_checkpoint_name(cfg.train.checkpoint_dir, cfg)
        if info.is_main
        else contextlib.nullcontext([])
    )
    with owner as stale:
        for tmp in stale:
            logger.info("removed %s (left by a killed save)", tmp)
        try:
            run = setup(cfg, info, resume)
            show_bar = (
                bar if bar is not None else (sys.stderr.isatty() and not os.environ.get("CI"))
            )
            result = train(run, progress, bar=show_bar and info.is_main)
        finally:
            ddp.cleanup(info)
        result.elapsed_s = time.perf_counter() - t0
        if cfg.train.autopsy and info.is_main:
            # The best checkpoint (the last if none). `autopsy_once` keeps a marker, so a finished
            # run that also stopped early, or a resumed run ending on the same file, is one autopsy.
            checkpoint = Path(result.best_checkpoint or result.last_checkpoint)
            autopsy_checkpoint(
                autopsy, checkpoint, run_id=result.run_id, tracking_uri=result.tracking_uri
            )
    return result


def setup(cfg: PretrainConfig, info: ddp.DistInfo, resume: str | Path | None) -> Run:
    """Checks that a resume fits and overwrites nothing foreign, the data (split, leakage
    gate), then the model, optimizer and position (restored when resuming)."""
    ckpt = load_resume(resume, cfg) if resume is not None else None
    paths = {k: Path(cfg.train.checkpoint_dir) / checkpoint_name(cfg, k) for k in ("best", "last")}
    if not cfg.train.overwrite:
        refuse_foreign_checkpoints(paths, ckpt, resume)
    data = prepare_data(cfg, info)
    if (
        ckpt is not None
        and ckpt.get("fingerprint", {}).get("dataset") != data.fingerprint["dataset"]
    ):
        raise CheckpointError(
            f"{resume}: was trained on dataset fingerprint {ckpt.get('fingerprint')}, "
            f"this config resolves to {data.fingerprint}; resume needs the same data and split"
        )
    return new_run(cfg, data, info, paths, ckpt, resume)


def train(run: Run, progress: Progress | None, *, bar: bool) -> RunResult:
    """Epochs until done, stopped (gate, early stopping, max_steps), logging to MLflow."""
    cfg, r, tc = run.cfg, run.result, run.cfg.train
    with Tracker(
        cfg.tracking.uri,
        cfg.tracking.experiment,
        run_name=cfg.tracking.run_name or run.stem,
        tags=run_tags(run),
        enabled=cfg.tracking.enabled and run.info.is_main,
    ) as tracker:
        tracker.log_params(to_dict(cfg))
        tracker.log_text(dump_yaml(cfg), "config.yaml")
        r.run_id, r.tracking_uri = tracker.run_id, tracker.tracking_uri
        pbar = None
        if bar:
            from tqdm.auto import tqdm

            pbar = tqdm(
                total=run.total_steps,
                initial=run.step,
                desc=run.stem,
                unit="step",
                dynamic_ncols=True,
            )
        while run.epoch < tc.epochs and not run.stop:
            t_epoch = time.perf_counter()
            hit_max = train_epoch(run, tracker, progress, pbar)
            improved = False
            if run.step_in_epoch >= run.per_epoch:
                improved = end_epoch(
                    run, tracker, progress, time.perf_counter() - t_epoch, pbar is None
                )
            if hit_max and not run.stop:
                run.stop, r.stopped = True, "max_steps"
            save_checkpoints(run, improved)
        if pbar is not None:
            pbar.close()
        if run.info.is_main:
            log_summary(run, tracker)
    r.tracking_failures = list(tracker.failures)  # after the end, which may fail too
    best = run.paths["best"]
    ckpt = run.resumed_from
    if (
        r.best_checkpoint is None
        and ckpt is not None
        and best.exists()
        and same_run(best, ckpt, run.resume_path)
    ):
        r.best_checkpoint = best  # written before the resume
    return r


def run_tags(run: Run) -> dict[str, str]:
    cfg, data = run.cfg, run.data
    tags = {
        TAG_KERNEL: run.result.kernel_path,
        TAG_DATASET_FINGERPRINT: data.fingerprint["dataset"],
        "eegwb.device": str(run.info.device),
        "eegwb.world_size": str(run.info.world_size),
        "eegwb.backbone": cfg.model.backbone,
        **cfg.tracking.tags,
    }
    if data.leaky:
        tags["leaky"] = "true"
    if run.resume_path is not None:
        tags["eegwb.resumed_from"] = str(run.resume_path)
    return tags


def train_epoch(run: Run, tracker: Tracker, progress: Progress | None, pbar) -> bool:
    """The rest of the current epoch's batches (all of them unless resuming mid-epoch), with
    mid-epoch validation every `val_every_steps`; True when `max_steps` was reached."""
    cfg, tc, info, r = run.cfg, run.cfg.train, run.info, run.result
    batches = ddp.epoch_batches(
        len(run.data.train),
        tc.batch_size,
        seed=tc.seed,
        epoch=run.epoch,
        rank=info.rank,
        world_size=info.world_size,
    )
    # A private generator: creating a loader must not draw from the global RNG.
    loader = DataLoader(
        run.data.train,
        batch_sampler=batches[run.step_in_epoch :],
        collate_fn=collate,
        num_workers=cfg.data.num_workers,
        generator=torch.Generator().manual_seed(tc.seed + run.epoch),
    )
    for batch in loader:
        if at_max_steps(run.step, tc):  # a resume of a run that stopped there
            return True
        m = train_step(
            run.train_obj,
            run.optimizer,
            batch.to(info.device),
            lr=lr_at(run.step, run.total_steps, tc),
            grad_clip=tc.grad_clip,
            generator=run.mask_gen,
            precision=tc.precision,
        )
        m = ddp.all_reduce_mean(m, info)
        run.step, run.step_in_epoch = run.step + 1, run.step_in_epoch + 1
        if not math.isfinite(m["train_loss"]):
            raise FloatingPointError(
                f"train loss is {m['train_loss']} at step {run.step} (epoch {run.epoch + 1}); "
                f"last good checkpoint: {r.last_checkpoint or 'none yet'}"
            )
        run.sums["train_loss"] += m["train_loss"]
        run.sums["grad_norm"] += m["grad_norm"]
        run.sums["steps"] += 1
        r.steps.append({"step": run.step, **m})
        if run.step % tc.log_every_steps == 0:
            tracker.log_metrics(m, step=run.step)
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(loss=f"{m['train_loss']:.4f}", epoch=run.epoch + 1)
        if progress is not None and info.is_main:
            progress(
                {
                    "kind": "step",
                    "epoch": run.epoch + 1,
                    "step": run.step,
                    "total_steps": run.total_steps,
                    **m,
                }
            )
        if tc.val_every_steps and run.step % tc.val_every_steps == 0:
            v = validate(run)
            r.history.append({"kind": "val", "epoch": run.epoch + 1, "step": run.step, **v})
            tracker.log_metrics({"val_loss_step": v["val_loss"]}, step=run.step)
            if progress is not None and info.is_main:
                progress({"kind": "val", "epoch": run.epoch + 1, "step": run.step, **v})
        if at_max_steps(run.step, tc):
            return True
    return False


def at_max_steps(step: int, tc: TrainConfig) -> bool:
    return tc.max_steps is not None and step >= tc.max_steps


def validate(run: Run) -> dict[str, float]:
    """Validation loss and collapse stats, computed on the main process, sent to all."""
    out = None
    if run.info.is_main:
        batches = (b.to(run.info.device) for b in run.val_loader)
        out = evaluate(
            run.objective,
            batches,
            seed=run.cfg.train.seed + EVAL_SEED_OFFSET,
            precision=run.cfg.train.precision,
        )
    return ddp.broadcast_object(out, run.info)


def end_epoch(
    run: Run, tracker: Tracker, progress: Progress | None, epoch_s: float, log_line: bool
) -> bool:
    """Validate, check collapse and gates, count towards early stopping, move to the next
    epoch; True when the validation loss improved (a new `best`)."""
    tc, r, step = run.cfg.train, run.result, run.step
    v = validate(run)
    n = max(1, run.sums["steps"])
    row = {
        "kind": "epoch",
        "epoch": run.epoch + 1,
        "step": step,
        "train_loss": run.sums["train_loss"] / n,
        "grad_norm": run.sums["grad_norm"] / n,
        "lr": lr_at(max(0, step - 1), run.total_steps, tc),
        **v,
        "epoch_s": epoch_s,
    }
    r.history.append(row)
    row["warnings"] = collapse_warnings(v)
    for w in row["warnings"]:
        logger.warning("epoch %d: %s", run.epoch + 1, w)
    tracker.log_metrics(
        {k: row[k] for k in EPOCH_LOG_KEYS if math.isfinite(row.get(k, math.nan))}, step=step
    )
    results, failures, gate_stop = check_gates(run.cfg, run.epoch + 1, row)
    r.gates += results
    tracker.log_metrics(
        {f"gate_{g['metric']}_e{g['epoch']}_passed": float(g["passed"]) for g in results}, step=step
    )
    for msg in failures:
        logger.warning(msg)
    if failures:
        tracker.set_tags({"eegwb.gate_failed": "; ".join(failures)})
    if gate_stop:
        run.stop, r.stopped = True, "gate"
    improved = v["val_loss"] < r.best_val_loss - tc.min_delta
    if improved:
        r.best_val_loss, run.bad_epochs = v["val_loss"], 0
    else:
        run.bad_epochs += 1
        if tc.patience and run.bad_epochs >= tc.patience and not run.stop:
            run.stop, r.stopped = True, "early_stopping"
    run.epoch, run.step_in_epoch, run.sums = run.epoch + 1, 0, dict(EMPTY_SUMS)
    if log_line and run.info.is_main:
        logger.info(
            "%s epoch %d/%d step %d: train %.4f val %.4f var_ratio %.3g (%.1f s)%s",
            run.stem,
            run.epoch,
            tc.epochs,
            step,
            row["train_loss"],
            row["val_loss"],
            row["var_ratio"],
            row["epoch_s"],
            " *" if improved else "",
        )
    if progress is not None and run.info.is_main:
        progress({**row, "total_steps": run.total_steps})
    return improved


def save_checkpoints(run: Run, improved: bool) -> None:
    """`last` after every epoch (and at a stop), `best` when validation improved; every rank
    contributes its RNG states, the main process writes."""
    ranks_rng = gather_rng(run)
    if run.info.is_main:
        r = run.result
        if improved:
            r.best_checkpoint = save_checkpoint(
                run.paths["best"], checkpoint_state(run, "best", ranks_rng)
            )
        r.last_checkpoint = save_checkpoint(
            run.paths["last"], checkpoint_state(run, "last", ranks_rng)
        )


def log_summary(run: Run, tracker: Tracker) -> None:
    """Checkpoint tags, the run summary and the loss chart, into the MLflow run."""
    r = run.result
    tracker.set_tags(
        {
            TAG_CHECKPOINT: str(r.best_checkpoint or ""),
            TAG_CHECKPOINT_LAST: str(r.last_checkpoint or ""),
            "eegwb.stopped": r.stopped,
        }
    )
    summary = {
        "best": str(r.best_checkpoint or ""),
        "last": str(r.last_checkpoint or ""),
        "gates": r.gates,
        "history": r.history,
    }
    tracker.log_text(json.dumps(summary, indent=1, default=str), "run_summary.json")
    if tracker.enabled and any(h.get("kind") == "epoch" for h in r.history):
        tracker.log_chart(loss_chart(r.history, title=run.stem), "loss_chart.html")
