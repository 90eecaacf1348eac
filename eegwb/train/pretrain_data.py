"""The data side of a pretraining run: split by participant (or a splits file), run the
leakage gate, open the train and val datasets, and fingerprint them.

Only participant-level splits are made here: windows of one person on both sides of a
split would let validation loss reward memorising that person. The test fraction is
held out and never read by pretraining, so fine-tuning can evaluate on people the
backbone has never seen when it uses the same split seed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import torch
import xxhash

from eegwb.config import ConfigError
from eegwb.data.dataset import EEGDataset
from eegwb.data.dataset_record import require_complete
from eegwb.data.layout import DatasetError, recordings_index
from eegwb.data.splits import SplitData, load_splits, participant_selection, split_by_participant
from eegwb.train import distributed as ddp
from eegwb.train.config import PretrainConfig
from eegwb.validation.leakage import leakage_gate

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    train: EEGDataset
    val: EEGDataset
    roots: dict[str, Path]
    assignment: dict[str, list[str]]  # split -> participants
    fingerprint: dict[
        str, str
    ]  # {"dataset": digest of both splits' data, "train": ..., "val": ...}
    leaky: bool = False
    leakage_summary: str = ""
    extra: dict = field(default_factory=dict)


def split_selections(
    cfg: PretrainConfig,
) -> tuple[dict[str, Path], dict[str, pl.DataFrame], dict[str, list[str]]]:
    """Roots, selections and participants of the train and val splits."""

    d = cfg.data
    if d.splits is not None:
        spec = load_splits(d.splits)
        missing = [s for s in ("train", "val") if s not in spec.splits]
        if missing:
            raise DatasetError(
                f"{d.splits}: data.splits needs 'train' and 'val' splits, missing {missing}"
            )
        roots = {s: spec.root(s) for s in ("train", "val")}
        sels = {s: spec.resolve(s) for s in ("train", "val")}
    else:
        root = Path(d.root)
        participants = sorted(set(recordings_index(root)["participant"].to_list()))
        assign = split_by_participant(participants, fractions=d.split_fractions, seed=d.split_seed)
        roots = {s: root for s in ("train", "val")}
        sels = {s: participant_selection(root, assign[s]) for s in ("train", "val")}
    people = {s: sorted(set(sels[s]["participant"].to_list())) for s in sels}
    return roots, sels, people


def run_leakage_gate(
    roots: dict[str, Path], sels: dict[str, pl.DataFrame], allow: bool
) -> tuple[bool, str]:
    """The leakage audit between train and val (raises LeakageError unless `allow`)."""

    result = leakage_gate({s: SplitData(roots[s], sels[s]) for s in sels}, allow_leakage=allow)
    leaky, summary = bool(result.leaky), result.summary()
    if leaky:
        logger.warning(
            "train/val leak and data.allow_leakage is true: the run is tagged 'leaky'. %s", summary
        )
    return leaky, summary


def prepare_data(cfg: PretrainConfig, info: ddp.DistInfo) -> RunData:
    """Splits, leakage gate (main process; its verdict is shared), datasets, fingerprints."""

    roots, sels, people = split_selections(cfg)
    for root in dict.fromkeys(roots.values()):
        require_complete(root, "pretraining")
    verdict: tuple[bool, str] | str
    if info.is_main:
        try:
            verdict = run_leakage_gate(roots, sels, cfg.data.allow_leakage)
        except Exception as err:  # share the refusal with the other ranks, then raise
            ddp.broadcast_object(f"{type(err).__name__}: {err}", info)
            raise
        ddp.broadcast_object(verdict, info)
    else:
        verdict = ddp.broadcast_object(None, info)
        if isinstance(verdict, str):
            raise RuntimeError(f"rank 0 refused the data: {verdict}")
    leaky, summary = verdict

    def open_split(s: str) -> EEGDataset:
        return EEGDataset.open(
            roots[s],
            selection=sels[s],
            channels=cfg.data.channels,
            normalisation=cfg.data.normalisation,
            max_windows=cfg.data.max_windows,
            cache_dir=cfg.data.cache_dir,
        )

    # The main process fills the cache first, so ranks do not decode the same files at once.
    if info.distributed and not info.is_main:
        torch.distributed.barrier()
    train, val = open_split("train"), open_split("val")
    if info.distributed and info.is_main:
        torch.distributed.barrier()
    for s, ds in (("train", train), ("val", val)):
        if len(ds) == 0:
            raise DatasetError(
                f"{roots[s]}: the {s} split holds no sequences (participants {people[s]})"
            )
        if ds.window_samples != cfg.model.window_samples:
            raise ConfigError(
                f"model.window_samples: {cfg.model.window_samples}, but {roots[s]} has windows of "
                f"{ds.window_samples} samples"
            )
    fp = {"train": train.fingerprint(), "val": val.fingerprint()}
    fp["dataset"] = xxhash.xxh3_128_hexdigest(json.dumps(fp, sort_keys=True).encode())
    return RunData(
        train=train,
        val=val,
        roots=roots,
        assignment=people,
        fingerprint=fp,
        leaky=leaky,
        leakage_summary=summary,
    )
