"""The data side of fine-tuning: the pretrained backbone, participant splits, the gates.

Nothing here trains. It answers, before any training starts:

- which backbone (a path, an MLflow run's `eegwb.checkpoint` tag, or the name the original
  derived from the model: `mamba2_eeg_d128_l6_m50_mae.pt` in `checkpoint_dir`);
- which participants train, validate and test (a splits file, a stratified participant
  split, or participant-grouped k-fold), built only from labelled recordings;
- whether the splits leak (the leakage gate of `eegwb.validation.leakage`), and whether
  any test participant was already seen by the backbone in pretraining (same dataset).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from eegwb.config import from_dict
from eegwb.data.layout import DatasetError
from eegwb.data.splits import (
    SplitData,
    empty_selection,
    grouped_kfold,
    load_splits,
    split_by_participant,
)
from eegwb.model.config import ModelConfig
from eegwb.train.checkpoints import CheckpointError, checkpoint_name, load_checkpoint
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.labels import participant_classes
from eegwb.train.tracking import TAG_CHECKPOINT, find_runs, resolve_tracking_uri
from eegwb.validation.leakage import ContentCache, LeakageError, leakage_gate

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
PRETRAIN_SPLITS = ("train", "val")  # what pretraining reads; its test fraction stays unseen


@dataclass
class Backbone:
    """The pretrained model to fine-tune (state None: none found, scratch only)."""

    path: Path | None
    stem: str  # checkpoint name without .pt: names the fine-tuned files
    model_cfg: ModelConfig
    state: dict | None
    found_by: str  # "path" | "mlflow run <id>" | "name"
    seen: set[str] = field(
        default_factory=set
    )  # participants of data.root pretraining trained/validated on
    unchecked: list[str] = field(
        default_factory=list
    )  # pretraining roots not found here: overlap unknown


@dataclass
class Fold:
    """One train/val/test assignment of participants (val may be empty)."""

    name: str
    selections: dict[str, pl.DataFrame]
    participants: dict[str, list[str]]


def checkpoint_source(cfg: FinetuneConfig) -> tuple[Path, str]:
    """Where the pretrained checkpoint is, and how it was found."""
    p = cfg.pretrained
    if p.checkpoint:
        return Path(p.checkpoint), "path"
    if p.mlflow_run:
        from mlflow import MlflowClient

        uri = resolve_tracking_uri(cfg.tracking.uri)
        try:
            run = MlflowClient(tracking_uri=uri).get_run(p.mlflow_run)
        except Exception as err:  # MlflowException for unknown ids, network errors, ...
            raise CheckpointError(
                f"pretrained.mlflow_run {p.mlflow_run!r}: not found at {uri} ({err})"
            ) from err
        tag = run.data.tags.get(TAG_CHECKPOINT)
        if not tag:
            raise CheckpointError(
                f"pretrained.mlflow_run {p.mlflow_run!r}: run has no {TAG_CHECKPOINT!r} tag"
            )
        return Path(tag), f"mlflow run {p.mlflow_run}"
    name = checkpoint_name(
        {
            "model": {"backbone": p.backbone, "d_model": p.d_model, "n_layers": p.n_layers},
            "masking": {"mask_ratio": p.mask_ratio, "style": p.style},
        }
    )
    return Path(p.checkpoint_dir) / name, "name"


def load_backbone(cfg: FinetuneConfig, window_samples: int) -> Backbone:
    """The pretrained backbone, or (scratch only, none found) an untrained config of the
    same shape; the model's dropout is set to `train.dropout` for fine-tuning."""
    path, found_by = checkpoint_source(cfg)
    needs_weights = any(s != "scratch" for s in cfg.train.strategies)
    if not path.is_file():
        if needs_weights:
            raise CheckpointError(
                f"{path}: no pretrained checkpoint (found by {found_by}); pretrain one "
                "(`eegwb pretrain`), or set pretrained.checkpoint / pretrained.mlflow_run"
            )
        p = cfg.pretrained
        model_cfg = ModelConfig(
            window_samples=window_samples,
            backbone=p.backbone,
            d_model=p.d_model,
            n_layers=p.n_layers,
            dropout=cfg.train.dropout,
        )
        log.info("%s not found: strategy 'scratch' uses an untrained %s", path, path.stem)
        return Backbone(None, path.stem, model_cfg, None, found_by)
    ckpt = load_checkpoint(path)
    try:
        model_cfg = from_dict(ModelConfig, ckpt["config"]["model"], where="model.")
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: no usable model config in the checkpoint ({err})") from err
    model_cfg = dataclasses.replace(model_cfg, dropout=cfg.train.dropout)
    seen, unchecked = _seen_in_pretraining(cfg, path, ckpt)
    return Backbone(path, path.stem, model_cfg, ckpt["model"], found_by, seen, unchecked)


def pretraining_roots(ckpt: dict) -> dict[str, Path]:
    """Split ("train", "val") -> the dataset root pretraining read it from.

    Checkpoints record the resolved roots (`data_roots`). Older ones hold only the config
    as typed, whose relative paths mean something only from the cwd pretraining ran in."""
    if ckpt.get("data_roots"):
        return {s: Path(r) for s, r in ckpt["data_roots"].items()}
    pre_data = ckpt["config"].get("data", {}) if isinstance(ckpt["config"], dict) else {}
    if pre_data.get("splits"):
        if not Path(pre_data["splits"]).is_file():
            return {s: Path(pre_data["splits"]) for s in PRETRAIN_SPLITS}
        spec = load_splits(pre_data["splits"])
        return {s: spec.root(s) for s in PRETRAIN_SPLITS if s in spec.splits}
    return {s: Path(pre_data["root"]) for s in PRETRAIN_SPLITS if pre_data.get("root")}


def _seen_in_pretraining(cfg: FinetuneConfig, path: Path, ckpt: dict) -> tuple[set[str], list[str]]:
    """Participants of `data.root` the backbone trained or validated on, and the recorded
    pretraining roots that cannot be found from here.

    An unfindable root cannot be compared, so overlap is unknown, not absent: "refuse"
    stops; "avoid" and "allow" go on with a warning (and a line in the leakage summary)."""

    assignment = ckpt.get("assignment") or {}
    seen: set[str] = set()
    unchecked = []
    for split, pre_root in pretraining_roots(ckpt).items():
        if not pre_root.exists():
            unchecked.append(str(pre_root))
        elif same_dataset(pre_root, Path(cfg.data.root)):
            seen |= {str(p) for p in assignment.get(split, [])}
    if unchecked:
        msg = (
            f"{path}: pretraining read {sorted(set(unchecked))}, not found from {Path.cwd()}, so "
            "whether "
            f"the backbone saw test participants of {cfg.data.root} cannot be checked"
        )
        if cfg.data.pretraining_overlap == "refuse" and not cfg.data.allow_leakage:
            raise LeakageError(
                f"{msg}; run from pretraining's directory, or set data.pretraining_overlap=allow"
            )
        log.warning(
            "%s; data.pretraining_overlap=%s goes on unchecked", msg, cfg.data.pretraining_overlap
        )
    return seen, sorted(set(unchecked))


def _selection(index: pl.DataFrame, labels: pl.DataFrame, participants: list[str]) -> pl.DataFrame:
    """Every window of every *labelled* recording of `participants`."""
    rec = labels.filter(pl.col("participant").is_in(participants)).select("file")
    return (
        index.join(rec, on="file")
        .select(
            "file",
            "participant",
            "run",
            pl.lit(0, pl.Int64).alias("row_start"),
            pl.col("n_windows").cast(pl.Int64).alias("row_end"),
        )
        .sort("file")
    )


def _fold(
    name: str, index: pl.DataFrame, labels: pl.DataFrame, assign: dict[str, list[str]]
) -> Fold:
    people = {s: sorted(assign.get(s, [])) for s in SPLITS}
    return Fold(name, {s: _selection(index, labels, people[s]) for s in SPLITS}, people)


def same_dataset(a: Path, b: Path) -> bool:
    return a.exists() and a.resolve() == b.resolve()


def make_folds(
    cfg: FinetuneConfig, index: pl.DataFrame, labels: pl.DataFrame, backbone: Backbone
) -> list[Fold]:
    """Participant-level folds (see the module docstring); applies `pretraining_overlap`."""
    d = cfg.data
    root = Path(d.root)
    if d.splits is not None:
        return [_splits_file_fold(cfg, root)]
    people = sorted(labels["participant"].unique().to_list())
    classes = participant_classes(labels)
    avoid = backbone.seen & set(people) if d.pretraining_overlap == "avoid" else set()
    train_f, val_f, test_f = d.split_fractions
    if d.kfold:
        if avoid:
            raise DatasetError(
                f"{root}: k-fold tests every participant, but the backbone was pretrained on "
                f"{len(avoid)} of them ({sorted(avoid)[:5]}); use a backbone pretrained on other "
                "participants or set data.pretraining_overlap=allow"
            )
        folds = []
        for i, f in enumerate(grouped_kfold(people, classes, d.kfold, d.split_seed)):
            inner = _train_val(f["train"], classes, train_f, val_f, d.split_seed)
            folds.append(_fold(f"fold{i + 1}", index, labels, {**inner, "test": f["val"]}))
        return folds
    if avoid:
        unseen = sorted(set(people) - avoid)
        test_classes = {classes[p] for p in unseen} if classes else {0, 1}
        if not unseen or len(test_classes) < 2:
            raise DatasetError(
                f"{root}: the backbone was pretrained on {len(avoid)} of these participants; the "
                f"{len(unseen)} it never saw ({unseen[:5]}) cannot form a test set with both "
                "classes. "
                "Use a backbone pretrained elsewhere or set data.pretraining_overlap=allow"
            )
        log.info("testing on the %d participants pretraining held out: %s", len(unseen), unseen)
        inner = _train_val(sorted(avoid), classes, train_f, val_f, d.split_seed)
        return [_fold("split", index, labels, {**inner, "test": unseen})]
    assign = split_by_participant(
        people, classes, (train_f, val_f, test_f), d.split_seed, names=("train", "val", "test")
    )
    return [_fold("split", index, labels, assign)]


def _train_val(
    people: list[str], classes: dict | None, train_f: float, val_f: float, seed: int
) -> dict:
    if val_f == 0 or len(people) < 2:
        return {"train": list(people), "val": []}
    total = train_f + val_f
    return split_by_participant(
        people, classes, (train_f / total, val_f / total), seed, names=("train", "val")
    )


def _splits_file_fold(cfg: FinetuneConfig, root: Path) -> Fold:
    spec = load_splits(cfg.data.splits)
    missing = [s for s in ("train", "test") if s not in spec.splits]
    if missing:
        raise DatasetError(
            f"{cfg.data.splits}: fine-tuning needs 'train' and 'test' splits, missing {missing}"
        )
    sels, people = {}, {}
    for s in SPLITS:
        if s not in spec.splits:
            sels[s], people[s] = empty_selection(), []
            continue
        if not same_dataset(spec.root(s, root), root):
            raise DatasetError(
                f"{cfg.data.splits}: split {s!r} uses dataset {spec.root(s, root)}, "
                f"but fine-tuning reads data.root {root}"
            )
        sels[s] = spec.resolve(s, root)
        people[s] = sorted(set(sels[s]["participant"].to_list()))
    return Fold("split", sels, people)


def check_folds(
    cfg: FinetuneConfig, folds: list[Fold], backbone: Backbone, progress: bool = False
) -> dict:
    """The leakage gate on each fold's train/val/test, then the pretraining-overlap rule.

    Every fold is checked: a copy inside one fold's training split crosses another's. The
    folds share one content search (`ContentCache`). Raises LeakageError naming the fold
    unless `data.allow_leakage`; returns {"leaky", "summary", "pretraining_overlap":
    [participants tested that pretraining saw]}."""

    root = Path(cfg.data.root)
    leaky, summaries, cache = False, [], ContentCache()
    for fold in folds:
        for s in ("train", "test"):
            if fold.selections[s].height == 0:
                raise DatasetError(
                    f"{root}: fold {fold.name!r} has no labelled recordings in its {s} split"
                )
        splits = {
            s: SplitData(root, fold.selections[s]) for s in SPLITS if fold.selections[s].height
        }
        try:
            result = leakage_gate(
                splits, allow_leakage=cfg.data.allow_leakage, progress=progress, content_cache=cache
            )
        except LeakageError as err:
            raise LeakageError(f"fold {fold.name!r}: {err}") from err
        leaky |= result.leaky
        summaries.append(f"{fold.name}: {result.summary()}")
    if backbone.unchecked:
        summaries.append(
            f"pretraining overlap NOT checked: {backbone.path} was pretrained on "
            f"{backbone.unchecked}, not found from {Path.cwd()}"
        )
    overlap = sorted(backbone.seen & {p for f in folds for p in f.participants["test"]})
    if overlap and cfg.data.pretraining_overlap != "allow" and not cfg.data.allow_leakage:
        raise LeakageError(
            f"{backbone.path}: pretraining saw {len(overlap)} test participant(s) of {root} "
            f"({overlap[:5]}); set data.pretraining_overlap=allow to run anyway (tagged 'leaky')"
        )
    return {
        "leaky": leaky or bool(overlap),
        "summary": "\n".join(summaries),
        "pretraining_overlap": overlap,
    }


def sequence_labels(index: pl.DataFrame, labels: pl.DataFrame, where: str) -> np.ndarray:
    """(n_sequences,) float32 class of each sequence, indexed by `seq_index`."""
    joined = index.select("seq_index", "participant", "run").join(
        labels.select("participant", "run", "label"), on=["participant", "run"], how="left"
    )
    missing = joined.filter(pl.col("label").is_null())
    if missing.height:
        raise DatasetError(
            f"{where}: {missing.height} sequences have no label, e.g. "
            f"{missing.select('participant', 'run').unique().rows()[:3]}"
        )
    out = np.full(int(index["seq_index"].max()) + 1, np.nan, np.float32)
    out[joined["seq_index"].to_numpy()] = joined["label"].to_numpy()
    return out


def pretrained_choices(
    checkpoint_dir: str | Path, uri: str | None = None, experiment: str = "pretrain"
) -> dict[str, str]:
    """{label: checkpoint path} of pretrained backbones to pick from: best checkpoints in
    `checkpoint_dir` (not `_last` or fine-tuned ones) and MLflow runs of `experiment` that
    recorded one. MLflow being unreachable only drops its entries."""
    out = {}
    for path in sorted(Path(checkpoint_dir).glob("*.pt")):
        if not (
            path.stem.endswith("_last") or "_finetuned" in path.stem or path.name.startswith(".")
        ):
            out[f"file: {path.name}"] = str(path)
    try:
        runs = find_runs(uri, experiment)
    except Exception as err:  # noqa: BLE001 - no store yet, server down: files still work
        log.info("no MLflow runs listed from %s (%s)", uri, err)
        return out
    for run_id, name, ckpt in runs.select("run_id", "run_name", "checkpoint").iter_rows():
        if ckpt and Path(ckpt).is_file():
            out[f"mlflow: {name or run_id} ({run_id[:8]})"] = ckpt
    return out
