"""Checkpoints: named as the original pipeline named them, written atomically, read without pickle.

A checkpoint is a plain dict of tensors and builtins, so `torch.load(weights_only=True)`
reads it (no code runs on load):

    format       CHECKPOINT_FORMAT (added by `save_checkpoint`)
    tensor_sha256  sha256 over every tensor in the checkpoint (added by `save_checkpoint`,
                 verified by `load_checkpoint`; see `tensor_digest`)
    kind         "best" | "last"
    model        state_dict of the EEGModel (the backbone and heads, not the objective)
    objective    state_dict of the objective (EMA teacher etc.), may be empty
    optimizer    AdamW state_dict
    scheduler    {"name": "warmup_cosine", "step", "total_steps", "warmup_fraction"}
    step, epoch, step_in_epoch   position: `epoch` is 0-based and `step_in_epoch` batches of
                 it are done, so a resume continues at exactly the next batch
    epoch_sums   {"train_loss", "grad_norm", "steps"} summed over those batches (absent before
                 it was recorded: the epoch's means then cover only the steps after a resume)
    config       the PretrainConfig as plain data (eegwb.config.to_dict)
    run_uid      one id per run, kept across resumes (absent before it was recorded)
    rng          {"ranks": [one `rng_state` per DDP process]}: torch / CUDA / numpy / python
                 RNG states and the mask generator, as tensors and ints
    fingerprint  {"train": ..., "val": ..., "dataset": digest of both}
    assignment   {"train": [participants], "val": [...]}
    data_roots   {"train": absolute dataset root, "val": ...} (absent before it was recorded)
    gates, history, steps   gate results, one row per epoch (and mid-epoch validation), one
                 row per optimizer step
    best_val_loss, bad_epochs, stopped   early-stopping state and why the run stopped
    describe     the model's `describe()` (backbone, direction, kernel path), scalars only

`train/pretrain_state.py`'s `checkpoint_state` writes them. Fine-tuned checkpoints
(`finetune_report.save_finetuned`) hold other keys: see docs/architecture.md; they too are
written by `save_checkpoint`, so they carry `format` and `tensor_sha256`.

A flipped bit in a stored tensor still loads (torch does not check the zip's CRCs), and a
model with one wrong weight runs; so `load_checkpoint` recomputes the digest and refuses a
checkpoint whose tensors are not the ones saved, naming the file. Checkpoints saved before
the digest was recorded load with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eegwb.atomic import atomic_path, remove_stale_temps
from eegwb.errors import InputError
from eegwb.locks import hold

CHECKPOINT_FORMAT = 1
logger = logging.getLogger(__name__)
_UNVERIFIED: set[str] = set()  # files already warned about


class CheckpointError(InputError):
    """A checkpoint cannot be read or does not fit; the message names the file."""


def checkpoint_name(cfg: Any, kind: str = "best") -> str:
    """`mamba2_eeg_d128_l6_m50_mae.pt` (best) / `..._last.pt`: backbone, width, layers,
    mask percent and masking style, as the original named its files.

    `cfg` is a PretrainConfig or its plain-dict form.
    """
    model = cfg["model"] if isinstance(cfg, dict) else cfg.model
    masking = cfg["masking"] if isinstance(cfg, dict) else cfg.masking
    get = (lambda o, k: o[k]) if isinstance(model, dict) else getattr
    mask_pct = round(float(get(masking, "mask_ratio")) * 100)
    stem = (
        f"{get(model, 'backbone')}_eeg_d{get(model, 'd_model')}_l{get(model, 'n_layers')}"
        f"_m{mask_pct}_{get(masking, 'style')}"
    )
    if kind == "best":
        return f"{stem}.pt"
    if kind == "last":
        return f"{stem}_last.pt"
    raise ValueError(f"checkpoint kind must be 'best' or 'last', got {kind!r}")


@contextlib.contextmanager
def claim_checkpoint_name(checkpoint_dir: str | Path, cfg: Any) -> Iterator[list[Path]]:
    """Own `cfg`'s checkpoint name in `checkpoint_dir` for a whole run (eegwb.locks).

    A second run of the same name (same folder, same model and masking) fails at once with
    a LockedError naming the first, so the check "do these checkpoints exist?" and the
    writes after it belong to one run. Yields the temporary files that killed saves of this
    name left behind, removed (no live run can be writing them while we hold the name)."""
    folder = Path(checkpoint_dir)
    best, last = (folder / checkpoint_name(cfg, k) for k in ("best", "last"))
    stem = best.name.removesuffix(".pt")
    with hold(folder / f".{stem}.lock", f"train.checkpoint_dir {folder}: checkpoint name {stem}"):
        yield remove_stale_temps(best) + remove_stale_temps(last)


# --------------------------------------------------------------------------- RNG states as tensors


def rng_state(mask_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG a training step draws from, as tensors and ints (weights_only-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if mask_generator is not None:
        state["mask_generator"] = mask_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], mask_generator: torch.Generator | None = None) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["kind"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if mask_generator is not None and "mask_generator" in state:
        mask_generator.set_state(state["mask_generator"])


# ----------------------------------------------------------------------------- save / load


HASH_KEY = "tensor_sha256"


def _tensors(obj: Any, where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(key path, tensor) for every tensor in nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        yield where, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if not (where == "" and key == HASH_KEY):
                yield from _tensors(value, f"{where}/{key!r}")  # repr: 0 and '0' differ
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{where}[{i}]")


def tensor_digest(state: dict[str, Any]) -> str:
    """sha256 over every tensor of `state` in key-path order: path, dtype, shape, bytes.

    Values, not storage: a tensor saved as a view of another hashes as its own values, and
    the digest is the same before `torch.save` and after `torch.load` on any device."""
    h = hashlib.sha256()
    for where, t in sorted(_tensors(state), key=lambda item: item[0]):
        h.update(f"{where}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_checkpoint(path: str | Path, state: dict[str, Any], *, overwrite: bool = True) -> Path:
    """Write `state` with its tensor digest, atomically (temp file + fsync + rename): a
    crash mid-save leaves the previous checkpoint under `path` intact."""
    path = Path(path)
    state = {"format": CHECKPOINT_FORMAT, **state}
    state[HASH_KEY] = tensor_digest(state)
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `torch.load(weights_only=True)`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, pickle refused by weights_only, ...
        raise CheckpointError(
            f"{path}: cannot read checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not an eegwb checkpoint (no 'model'/'config' entries)")
    _verify(path, state)
    return state


def _verify(path: Path, state: dict[str, Any]) -> None:
    """Refuse tensors that are not the ones saved; warn (once per file) when unverifiable."""
    recorded = state.get(HASH_KEY)
    if recorded is None:
        if str(path) not in _UNVERIFIED:
            _UNVERIFIED.add(str(path))
            logger.warning(
                "%s: no %s (saved by an eegwb before checkpoints recorded one): its weights "
                "are not verified",
                path,
                HASH_KEY,
            )
        return
    actual = tensor_digest(state)
    if actual != recorded:
        raise CheckpointError(
            f"{path}: its tensors are not the ones saved (sha256 {actual[:16]}..., recorded "
            f"{str(recorded)[:16]}...): the file was corrupted or changed after saving; use "
            "another copy or checkpoint, or train again"
        )


def same_run(path: str | Path, ckpt: dict[str, Any], source: str | Path) -> bool:
    """Whether the checkpoint file `path` belongs to the run `ckpt` (read from `source`).

    Both carry a `run_uid`: they must match. Checkpoints written before run ids count as
    the run's own only if `path` is `source` or lies beside it (where a resume writes)."""
    path, source = Path(path).resolve(), Path(source).resolve()
    if path == source:
        return True
    try:
        theirs = load_checkpoint(path).get("run_uid")
    except CheckpointError:
        return False
    if theirs and ckpt.get("run_uid"):
        return theirs == ckpt["run_uid"]
    return path.parent == source.parent
