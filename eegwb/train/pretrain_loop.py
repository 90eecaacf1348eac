"""The epoch loop behind `eegwb.train.pretrain.pretrain`: steps, validation, collapse
checks, gates, early stopping, checkpoints, MLflow and progress output.

The position in training is (epoch, step_in_epoch, every RNG). Batches of an epoch come
from `distributed.epoch_batches(seed, epoch)`, a pure function of the epoch, so resuming
at step_in_epoch k just skips the first k batches, and N/2 steps + resume + N/2 steps
give the same parameters as N steps straight.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from eegwb.config import ConfigError, dump_yaml, to_dict
from eegwb.data.dataset import collate
from eegwb.model.eeg_model import EEGModel
from eegwb.model.objective import MaskedReconstruction
from eegwb.train import distributed as ddp
from eegwb.train.checkpoints import rng_state, same_run, save_checkpoint, set_rng_state
from eegwb.train.collapse import collapse_warnings
from eegwb.train.config import PretrainConfig, TrainConfig
from eegwb.train.pretrain import (
    EVAL_SEED_OFFSET,
    RunResult,
    evaluate,
    loss_chart,
    lr_at,
    make_optimizer,
    train_step,
)
from eegwb.train.pretrain_data import RunData
from eegwb.train.tracking import (
    TAG_CHECKPOINT,
    TAG_CHECKPOINT_LAST,
    TAG_DATASET_FINGERPRINT,
    TAG_KERNEL,
    Tracker,
)

logger = logging.getLogger(__name__)


def build_objective(cfg: PretrainConfig, device: torch.device):

    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank and rerun
    model = EEGModel(cfg.model)
    return model, MaskedReconstruction(model, cfg.masking).to(device)


EMPTY_SUMS = {"train_loss": 0.0, "grad_norm": 0.0, "steps": 0}
EPOCH_LOG_KEYS = ("train_loss", "val_loss", "grad_norm", "lr", "pred_var", "pred_mean", "target_var",
                  "target_mean", "var_ratio")  # fmt: skip


def check_gates(cfg: PretrainConfig, epoch: int, row: dict) -> tuple[list[dict], list[str], bool]:
    """Gates due at the end of `epoch` (1-based): (results, failure messages, stop?)."""
    results, failures, stop = [], [], False
    for g in cfg.gates:
        if g.epoch != epoch:
            continue
        res = g.check(row[g.metric])
        results.append(res)
        if not res["passed"]:
            bound = " and ".join(
                b for b in (f"<= {g.max}" if g.max is not None else "",
                            f">= {g.min}" if g.min is not None else "") if b
            )  # fmt: skip
            failures.append(
                f"gate failed at epoch {g.epoch}: {g.metric} = {res['value']:.4g}, "
                f"required {bound} (action: {g.action})"
            )
            stop = stop or g.action == "stop"
    return results, failures, stop


def at_max_steps(step: int, tc: TrainConfig) -> bool:
    return tc.max_steps is not None and step >= tc.max_steps


def _restore(ckpt: dict, model, objective, optimizer, prefix: str, mask_gen, rank: int,
             world_size: int) -> None:
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
            len(ranks), world_size,
        )
    set_rng_state(ranks[rank] if rank < len(ranks) else ranks[0], mask_gen)


def _model_prefix(objective, model) -> str:
    for name, child in objective.named_children():
        if child is model:
            return f"{name}."
    raise RuntimeError("the objective does not hold the model as a direct submodule")


def run_loop(
    cfg: PretrainConfig,
    data: RunData,
    info: ddp.DistInfo,
    paths: dict[str, Path],
    *,
    ckpt: dict | None,
    progress: Callable[[dict], None] | None,
    bar: bool,
    resume_path: str | Path | None,
) -> RunResult:

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
    total_steps = tc.epochs * per_epoch
    mask_gen = torch.Generator(device=device).manual_seed(tc.seed * 7919 + info.rank + 1)
    r = RunResult(
        best_checkpoint=None,
        last_checkpoint=None,
        config=to_dict(cfg),
        fingerprint=data.fingerprint,
        leaky=data.leaky,
    )
    epoch, step_in_epoch, step, bad_epochs = 0, 0, 0, 0
    run_uid = (ckpt or {}).get("run_uid") or uuid.uuid4().hex
    # Running sums of the epoch under way: saved, so a mid-epoch resume averages all its steps.
    sums = dict((ckpt or {}).get("epoch_sums") or EMPTY_SUMS)
    if ckpt is not None:
        _restore(ckpt, model, objective, optimizer, prefix, mask_gen, info.rank, info.world_size)
        epoch, step_in_epoch, step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["step"]
        bad_epochs, r.best_val_loss = ckpt["bad_epochs"], ckpt["best_val_loss"]
        r.history, r.steps, r.gates = (
            list(ckpt["history"]),
            list(ckpt["steps"]),
            list(ckpt["gates"]),
        )
    train_obj = objective
    if info.distributed:
        train_obj = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device] if device.type == "cuda" else None
        )
    describe = model.describe()
    r.kernel_path = str(describe.get("kernel_path", ""))
    stem = paths["best"].name.removesuffix(".pt")
    tags = {
        TAG_KERNEL: r.kernel_path,
        TAG_DATASET_FINGERPRINT: data.fingerprint["dataset"],
        "eegwb.device": str(device),
        "eegwb.world_size": str(info.world_size),
        "eegwb.backbone": cfg.model.backbone,
        **cfg.tracking.tags,
    }
    if data.leaky:
        tags["leaky"] = "true"
    if resume_path is not None:
        tags["eegwb.resumed_from"] = str(resume_path)
    val_loader = DataLoader(
        data.val,
        batch_size=tc.batch_size,
        shuffle=False,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(tc.seed),
    )

    def validate() -> dict[str, float]:
        out = None
        if info.is_main:
            out = evaluate(
                objective,
                (b.to(device) for b in val_loader),
                seed=tc.seed + EVAL_SEED_OFFSET,
                precision=tc.precision,
            )
        return ddp.broadcast_object(out, info)

    def state(kind: str) -> dict:
        full = objective.state_dict()
        return {
            "kind": kind,
            "model": model.state_dict(),
            "objective": {k: v for k, v in full.items() if not k.startswith(prefix)},
            "optimizer": optimizer.state_dict(),
            "scheduler": {
                "name": "warmup_cosine",
                "step": step,
                "total_steps": total_steps,
                "warmup_fraction": tc.warmup_fraction,
            },
            "step": step,
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "epoch_sums": dict(sums),
            "config": to_dict(cfg),
            "run_uid": run_uid,
            "rng": {"ranks": ranks_rng},
            "fingerprint": dict(data.fingerprint),
            "assignment": data.assignment,
            # resolved, so fine-tuning from another directory still knows whom pretraining saw
            "data_roots": {s: str(Path(root).resolve()) for s, root in data.roots.items()},
            "gates": list(r.gates),
            "history": list(r.history),
            "steps": list(r.steps),
            "best_val_loss": r.best_val_loss,
            "bad_epochs": bad_epochs,
            "stopped": r.stopped,
            "describe": {
                k: v for k, v in describe.items() if isinstance(v, (str, int, float, bool))
            },
        }

    def gather_rng() -> list:
        mine = rng_state(mask_gen)
        if not info.distributed:
            return [mine]
        out = [None] * info.world_size
        torch.distributed.all_gather_object(out, mine)
        return out

    with Tracker(
        cfg.tracking.uri,
        cfg.tracking.experiment,
        run_name=cfg.tracking.run_name or stem,
        tags=tags,
        enabled=cfg.tracking.enabled and info.is_main,
    ) as tracker:
        tracker.log_params(to_dict(cfg))
        tracker.log_text(dump_yaml(cfg), "config.yaml")
        r.run_id, r.tracking_uri = tracker.run_id, tracker.tracking_uri
        pbar = None
        if bar:
            from tqdm.auto import tqdm

            pbar = tqdm(total=total_steps, initial=step, desc=stem, unit="step", dynamic_ncols=True)
        stop = False
        while epoch < tc.epochs and not stop:
            t_epoch = time.perf_counter()
            batches = ddp.epoch_batches(
                len(data.train),
                tc.batch_size,
                seed=tc.seed,
                epoch=epoch,
                rank=info.rank,
                world_size=info.world_size,
            )
            # A private generator: creating a loader must not draw from the global RNG.
            loader = DataLoader(
                data.train,
                batch_sampler=batches[step_in_epoch:],
                collate_fn=collate,
                num_workers=cfg.data.num_workers,
                generator=torch.Generator().manual_seed(tc.seed + epoch),
            )
            hit_max = False
            for batch in loader:
                if at_max_steps(step, tc):  # a resume of a run that stopped there
                    hit_max = True
                    break
                m = train_step(
                    train_obj,
                    optimizer,
                    batch.to(device),
                    lr=lr_at(step, total_steps, tc),
                    grad_clip=tc.grad_clip,
                    generator=mask_gen,
                    precision=tc.precision,
                )
                m = ddp.all_reduce_mean(m, info)
                step, step_in_epoch = step + 1, step_in_epoch + 1
                if not math.isfinite(m["train_loss"]):
                    raise FloatingPointError(
                        f"train loss is {m['train_loss']} at step {step} (epoch {epoch + 1}); "
                        f"last good checkpoint: {r.last_checkpoint or 'none yet'}"
                    )
                sums["train_loss"] += m["train_loss"]
                sums["grad_norm"] += m["grad_norm"]
                sums["steps"] += 1
                r.steps.append({"step": step, **m})
                if step % tc.log_every_steps == 0:
                    tracker.log_metrics(m, step=step)
                if pbar is not None:
                    pbar.update(1)
                    pbar.set_postfix(loss=f"{m['train_loss']:.4f}", epoch=epoch + 1)
                if progress is not None and info.is_main:
                    progress(
                        {
                            "kind": "step",
                            "epoch": epoch + 1,
                            "step": step,
                            "total_steps": total_steps,
                            **m,
                        }
                    )
                if tc.val_every_steps and step % tc.val_every_steps == 0:
                    v = validate()
                    r.history.append({"kind": "val", "epoch": epoch + 1, "step": step, **v})
                    tracker.log_metrics({"val_loss_step": v["val_loss"]}, step=step)
                    if progress is not None and info.is_main:
                        progress({"kind": "val", "epoch": epoch + 1, "step": step, **v})
                if at_max_steps(step, tc):
                    hit_max = True
                    break
            epoch_done = step_in_epoch >= per_epoch
            if epoch_done:
                v = validate()
                row = {
                    "kind": "epoch",
                    "epoch": epoch + 1,
                    "step": step,
                    "train_loss": sums["train_loss"] / max(1, sums["steps"]),
                    "grad_norm": sums["grad_norm"] / max(1, sums["steps"]),
                    "lr": lr_at(max(0, step - 1), total_steps, tc),
                    **v,
                    "epoch_s": time.perf_counter() - t_epoch,
                }
                r.history.append(row)
                warnings = collapse_warnings(v)
                row["warnings"] = warnings
                for w in warnings:
                    logger.warning("epoch %d: %s", epoch + 1, w)
                logged = {k: row[k] for k in EPOCH_LOG_KEYS if math.isfinite(row.get(k, math.nan))}
                tracker.log_metrics(logged, step=step)
                results, failures, gate_stop = check_gates(cfg, epoch + 1, row)
                r.gates += results
                tracker.log_metrics(
                    {
                        f"gate_{g['metric']}_e{g['epoch']}_passed": float(g["passed"])
                        for g in results
                    },
                    step=step,
                )
                for msg in failures:
                    logger.warning(msg)
                if failures:
                    tracker.set_tags({"eegwb.gate_failed": "; ".join(failures)})
                if gate_stop:
                    stop, r.stopped = True, "gate"
                improved = v["val_loss"] < r.best_val_loss - tc.min_delta
                if improved:
                    r.best_val_loss, bad_epochs = v["val_loss"], 0
                else:
                    bad_epochs += 1
                    if tc.patience and bad_epochs >= tc.patience and not stop:
                        stop, r.stopped = True, "early_stopping"
                epoch, step_in_epoch, sums = epoch + 1, 0, dict(EMPTY_SUMS)
                if not pbar and info.is_main:
                    logger.info(
                        "%s epoch %d/%d step %d: train %.4f val %.4f var_ratio %.3g (%.1f s)%s",
                        stem,
                        epoch,
                        tc.epochs,
                        step,
                        row["train_loss"],
                        row["val_loss"],
                        row["var_ratio"],
                        row["epoch_s"],
                        " *" if improved else "",
                    )
                if progress is not None and info.is_main:
                    progress({**row, "total_steps": total_steps})
            else:
                improved = False
            if hit_max and not stop:
                stop, r.stopped = True, "max_steps"
            ranks_rng = gather_rng()
            if info.is_main:
                if improved:
                    r.best_checkpoint = save_checkpoint(paths["best"], state("best"))
                r.last_checkpoint = save_checkpoint(paths["last"], state("last"))
        if pbar is not None:
            pbar.close()
        if info.is_main:
            tracker.set_tags(
                {
                    TAG_CHECKPOINT: str(r.best_checkpoint or ""),
                    TAG_CHECKPOINT_LAST: str(r.last_checkpoint or ""),
                    "eegwb.stopped": r.stopped,
                }
            )
            tracker.log_text(
                json.dumps(
                    {
                        "best": str(r.best_checkpoint or ""),
                        "last": str(r.last_checkpoint or ""),
                        "gates": r.gates,
                        "history": r.history,
                    },
                    indent=1,
                    default=str,
                ),
                "run_summary.json",
            )
            if tracker.enabled and any(h.get("kind") == "epoch" for h in r.history):
                tracker.log_chart(loss_chart(r.history, title=stem), "loss_chart.html")
        r.tracking_failures = list(tracker.failures)
    best = paths["best"]
    if (
        r.best_checkpoint is None
        and ckpt is not None
        and best.exists()
        and same_run(best, ckpt, resume_path)
    ):
        r.best_checkpoint = best  # written before the resume
    return r
