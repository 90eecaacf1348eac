"""DistributedDataParallel plumbing: process group set-up from torchrun's environment,
the per-epoch batch order every rank agrees on, and small collectives.

Under `torchrun --nproc_per_node=N -m eegwb pretrain ...` each process reads RANK,
WORLD_SIZE and LOCAL_RANK; gloo on CPU, nccl on CUDA. Without those variables everything
here runs as a single process (rank 0 of 1) and never touches torch.distributed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from eegwb.config import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialised_here: bool = False  # we created the process group, so we destroy it

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints and logs to MLflow."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto`: this process's GPU when CUDA is available, else CPU; `cuda` without CUDA raises."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            "train.device: 'cuda' was asked for but torch.cuda.is_available() is False"
        )
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world <= 1:
        return DistInfo(device=device)
    created = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        created = True
        logger.info("DDP: rank %d of %d on %s (%s)", rank, world, device, backend)
    return DistInfo(
        rank=rank, world_size=world, local_rank=local_rank, device=device, initialised_here=created
    )


def cleanup(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def epoch_batches(
    n_items: int, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """This rank's batches for one epoch (lists of dataset indices).

    The order is a permutation drawn from a generator seeded by (seed, epoch), so it is
    the same after a resume and on every rank. Global batch i is items
    [i*B, (i+1)*B) of the permutation; rank r takes every world_size-th of them, i.e. a
    per-rank batch of B / world_size. The last incomplete global batch is dropped, so
    every step has the same batch size everywhere (as DistributedSampler(drop_last=True)).
    """
    if batch_size % world_size:
        raise ConfigError(
            f"train.batch_size: {batch_size} is not divisible by the {world_size} DDP processes"
        )
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_items, generator=g).tolist()
    n_batches = n_items // batch_size
    return [
        order[i * batch_size : (i + 1) * batch_size][rank::world_size] for i in range(n_batches)
    ]


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over ranks (identity in a single process)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return dict(zip(keys, t.tolist()))


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank (e.g. a stop decision)."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
