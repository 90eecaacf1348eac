"""Fine-tuning a pretrained backbone on a clinical label, evaluated so that it cannot leak.

`finetune(cfg)` runs, in order: label table -> participant folds -> length matching (every
unit the same number of windows: `length_match.py`) -> leakage gate (and the
pretraining-overlap rule) -> shortcut gate (can a nuisance of those units give the label?)
-> refuse to overwrite outputs -> per fold: open the train /
val / test datasets, train each strategy (frozen, full, scratch; see
`eegwb.model.classifier`) with early stopping on validation loss, fit the band-power
baseline on the same participants -> pool test predictions -> threshold chosen on
validation predictions only -> metrics with participant-bootstrap CIs at the sequence,
recording and participant level -> fine-tuned checkpoints (atomic,
`mamba2_eeg_d256_l2_m20_mae_finetuned.pt` as the original named them) -> MLflow.

A prediction is one channel-sequence (one channel of one length-matched unit of windows;
the baseline: one window, all channels); recordings and participants are scored by
averaging their predictions' probabilities.
The plain functions (`train_epoch`, `predict`, `fit_strategy`) return plain values.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn
from tqdm.auto import tqdm

from eegwb.atomic import OutputExistsError
from eegwb.config import to_dict
from eegwb.data.batch import Batch
from eegwb.data.dataset import EEGDataset, collate
from eegwb.data.dataset_record import require_complete
from eegwb.data.layout import DatasetError, recordings_index
from eegwb.evaluation.baseline import UNIT as BASELINE_UNIT
from eegwb.evaluation.baseline import attach_labels, run_baseline, window_features
from eegwb.evaluation.metrics import LEVELS, aggregate, best_threshold, evaluate_levels
from eegwb.model.classifier import EEGClassifier, build_classifier
from eegwb.train.autopsy_hook import AutopsyHook, autopsy_checkpoint, require_hook
from eegwb.train.distributed import resolve_device
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.finetune_data import (
    Backbone,
    Fold,
    check_folds,
    load_backbone,
    make_folds,
    sequence_labels,
)
from eegwb.train.finetune_report import FinetuneResult, log_run, results_table, save_finetuned
from eegwb.train.finetune_units import (
    LengthMatch,
    crop_folds,
    fold_units,
    match_lengths,
    shortcut_gate,
)
from eegwb.train.labels import recording_labels

log = logging.getLogger(__name__)
BASELINE = "baseline"


# ----------------------------------------------------------------------------- the plain functions


def _logits(clf: EEGClassifier, inputs: Batch | torch.Tensor) -> torch.Tensor:
    """(b,) logits from a Batch, or from cached (b, d) pooled embeddings (frozen backbone)."""
    if isinstance(inputs, Batch):
        return clf(inputs.x, inputs.coords, inputs.pad_mask)
    return clf.classify(inputs)


def train_epoch(
    clf: EEGClassifier,
    batches: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    grad_clip: float,
) -> float:
    """One pass over (inputs, y, seq_index) batches; mean training loss per sequence."""
    clf.train()
    total, n = 0.0, 0
    for inputs, y, _ in batches:
        loss = loss_fn(_logits(clf, inputs), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], grad_clip
            )
        optimizer.step()
        total, n = total + float(loss.detach()) * len(y), n + len(y)
    return total / max(n, 1)


@torch.no_grad()
def predict(
    clf: EEGClassifier, batches: Iterable, loss_fn: nn.Module | None = None
) -> dict[str, np.ndarray | float]:
    """{"seq_index" (n,), "score" (n,) probability of class 1, "loss" mean over sequences}."""
    clf.eval()
    idx, scores, total, n = [], [], 0.0, 0
    for inputs, y, seq in batches:
        logits = _logits(clf, inputs)
        if loss_fn is not None:
            total, n = total + float(loss_fn(logits, y)) * len(y), n + len(y)
        idx.append(seq.cpu().numpy())
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
    return {
        "seq_index": np.concatenate(idx),
        "score": np.concatenate(scores),
        "loss": total / n if n else float("nan"),
    }


@dataclass
class FoldSplit:
    """One split of one fold, ready to batch: dataset, class per seq_index, cached embeddings."""

    dataset: object  # EEGDataset
    y: np.ndarray  # (n_sequences,) by seq_index
    embeddings: torch.Tensor | None = None  # (n, d) pooled, frozen backbone; rows by seq_index

    def batches(
        self,
        batch_size: int,
        device: torch.device,
        *,
        shuffle: bool = False,
        seed: int = 0,
        embedded: bool = False,
    ) -> Iterable:
        if embedded:
            assert self.embeddings is not None
            n = self.embeddings.shape[0]
            order = (
                torch.randperm(n, generator=torch.Generator().manual_seed(seed))
                if shuffle
                else torch.arange(n)
            )
            y = torch.from_numpy(self.y)
            for i in range(0, n, batch_size):
                j = order[i : i + batch_size]
                if shuffle and len(j) < 2 < n:
                    continue  # batch-norm statistics need two sequences; the next epoch reshuffles
                yield self.embeddings[j].to(device), y[j].to(device), j
            return
        from torch.utils.data import DataLoader

        n = len(self.y)
        loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(seed),
            drop_last=shuffle and n % batch_size == 1 and n > 1,
        )  # see above
        for batch in loader:
            batch = batch.to(device)
            yield (
                batch,
                torch.from_numpy(self.y[batch.seq_index.cpu().numpy()]).to(device),
                batch.seq_index,
            )


@torch.no_grad()
def embed_split(
    clf: EEGClassifier, split: FoldSplit, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Pooled embeddings (n, d) of every sequence, rows in seq_index order (CPU)."""
    clf.eval()
    n = len(split.y)
    out = None
    for batch, _, seq in split.batches(batch_size, device):
        emb = clf.embed(batch.x, batch.coords, batch.pad_mask).float().cpu()  # (b, d)
        out = torch.empty((n, emb.shape[1])) if out is None else out
        out[seq.cpu()] = emb
    return out


def fit_strategy(
    strategy: str,
    backbone: Backbone,
    data: dict[str, FoldSplit],
    cfg: FinetuneConfig,
    device: torch.device,
    fold: str = "split",
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[EEGClassifier, list[dict]]:
    """Train one strategy with early stopping on validation loss; returns the best model
    (by validation loss, or the last epoch without a validation split) and its history."""
    tc = cfg.train
    clf = build_classifier(
        strategy,
        backbone.model_cfg,
        backbone.state,
        dropout=tc.dropout,
        pooling=tc.pooling,
        seed=tc.seed,
    ).to(device)
    embedded = strategy == "frozen"
    if embedded:
        for split in data.values():
            if split is not None and split.embeddings is None:
                split.embeddings = embed_split(clf, split, tc.batch_size, device)
    lr_backbone = tc.lr_scratch if strategy == "scratch" else tc.lr_backbone
    optimizer = torch.optim.AdamW(clf.param_groups(tc.lr_head, lr_backbone, tc.weight_decay))
    y = data["train"].y
    pos = float(np.nansum(y))
    pos_weight = torch.tensor((len(y) - pos) / max(pos, 1.0), device=device)  # balance the classes
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    val = data.get("val")
    history, best, best_state, bad = [], float("inf"), None, 0
    torch.manual_seed(tc.seed)
    for epoch in range(1, tc.epochs + 1):
        train_loss = train_epoch(
            clf,
            data["train"].batches(
                tc.batch_size, device, shuffle=True, seed=tc.seed + epoch, embedded=embedded
            ),
            optimizer,
            loss_fn,
            tc.grad_clip,
        )
        val_loss = (
            predict(clf, val.batches(tc.batch_size, device, embedded=embedded), loss_fn)["loss"]
            if val is not None
            else float("nan")
        )
        row = {
            "strategy": strategy,
            "fold": fold,
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if val is None:
            continue
        if val_loss < best:
            best, best_state, bad = val_loss, copy.deepcopy(clf.state_dict()), 0
        else:
            bad += 1
            if tc.patience and bad >= tc.patience:
                break
    if best_state is not None:
        clf.load_state_dict(best_state)
    return clf, history


def _prediction_frame(split: FoldSplit, out: dict) -> pl.DataFrame:
    scores = pl.DataFrame(
        {"seq_index": out["seq_index"].astype(np.int64), "score": out["score"].astype(np.float64)}
    )
    index = split.dataset.index.select("seq_index", "participant", "run", "channel", "row_start")
    return index.join(scores, on="seq_index").with_columns(
        pl.Series("label", split.y[index["seq_index"].to_numpy()].astype(np.int64))
    )


# ----------------------------------------------------------------------------- one fold


def _open_fold(
    cfg: FinetuneConfig, fold: Fold, labels: pl.DataFrame, window_samples: int, lm: LengthMatch
) -> dict[str, FoldSplit | None]:

    d = cfg.data
    out: dict[str, FoldSplit | None] = {}
    channels = d.channels
    for s, sel in fold.selections.items():  # train first: val and test use its channels
        if sel.height == 0:
            out[s] = None
            continue
        ds = EEGDataset.open(
            d.root,
            selection=sel,
            channels=channels,
            normalisation=d.normalisation,
            max_windows=lm.max_windows,  # each unit of the (length-matched) selection: one sequence
            cache_dir=d.cache_dir,
        )
        channels = ds.channels
        if ds.window_samples != window_samples:
            raise DatasetError(
                f"{d.root}: windows of {ds.window_samples} samples, but the backbone was "
                "pretrained on "
                f"{window_samples}; re-ingest with window_samples={window_samples}"
            )
        out[s] = FoldSplit(ds, sequence_labels(ds.index, labels, f"{d.root} ({fold.name} {s})"))
    return out


def _baseline(
    cfg: FinetuneConfig, fold: Fold, labels: pl.DataFrame, channels: list[str]
) -> dict[str, pl.DataFrame]:

    sel = fold.selections
    test, model = run_baseline(
        cfg.data.root, sel["train"], sel["test"], labels, channels, cfg.baseline
    )
    out = {"test": test}
    if sel["val"].height:
        x, rows = window_features(cfg.data.root, sel["val"], channels, cfg.baseline)
        rows = attach_labels(rows, labels, f"{cfg.data.root} (baseline val)")
        out["val"] = rows.with_columns(pl.Series("score", model.predict_proba(x)[:, 1]))
    return out


def output_paths(cfg: FinetuneConfig, stem: str, n_folds: int) -> dict[tuple[str, int], Path]:
    """(strategy, fold) -> checkpoint path: `<stem>_finetuned.pt` for the original (frozen),
    `<stem>_finetuned_<strategy>.pt` for the others, `_fold<k>` added in k-fold mode."""
    out = {}
    for s in cfg.train.strategies:
        for k in range(n_folds):
            strategy = "" if s == "frozen" else f"_{s}"
            fold = f"_fold{k + 1}" if n_folds > 1 else ""
            name = f"{stem}_finetuned{strategy}{fold}.pt"
            out[(s, k)] = Path(cfg.train.checkpoint_dir) / name
    return out


# ----------------------------------------------------------------------------- the run


def finetune(
    cfg: FinetuneConfig,
    progress: Callable[[dict], None] | None = None,
    *,
    bar: bool = False,
    autopsy: AutopsyHook | None = None,
) -> FinetuneResult:
    """Fine-tune every strategy in `cfg.train.strategies` (and the baseline) and evaluate
    them on held-out participants; see the module docstring for the order of steps.

    `progress` is called with {"strategy", "fold", "epoch", "train_loss", "val_loss"} after
    each epoch (notebook progress bars); `bar` shows a tqdm bar over the trainings;
    `autopsy` is called on each fine-tuned checkpoint when `train.autopsy` is set.
    """

    t0 = time.perf_counter()
    cfg.check_paths()
    require_hook(cfg.train.autopsy, autopsy)
    require_complete(cfg.data.root, "fine-tuning")
    index = recordings_index(cfg.data.root)
    labels = recording_labels(cfg.data.root, cfg.labels, index)
    window_samples = int(index["window_samples"][0])
    backbone = load_backbone(cfg, window_samples)
    folds = make_folds(cfg, index, labels, backbone)
    lm = match_lengths(
        cfg.data.length_match,
        fold_units(folds),
        cfg.data.max_windows,
        cfg.data.crop_windows,
        str(cfg.data.root),
    )
    uncut, folds = fold_units(folds), crop_folds(folds, lm)
    gate = check_folds(cfg, folds, backbone)
    shortcuts = shortcut_gate(cfg, fold_units(folds), labels, index, lm)
    paths = output_paths(cfg, backbone.stem, len(folds))
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not cfg.train.overwrite:
        raise OutputExistsError(
            f"{existing[0]}: already exists (set train.overwrite=true / --overwrite)"
        )
    device = resolve_device(cfg.train.device)
    names = list(cfg.train.strategies) + ([BASELINE] if cfg.baseline.enabled else [])
    preds: dict[str, dict[str, list[pl.DataFrame]]] = {s: {"val": [], "test": []} for s in names}
    models: dict[tuple[str, int], EEGClassifier] = {}
    history: list[dict] = []
    fold_channels: list[list[str]] = []  # per fold: with data.channels unset, folds may differ
    jobs = tqdm(total=len(folds) * len(names), desc="fine-tune", disable=not bar)
    for k, fold in enumerate(folds):
        data = _open_fold(cfg, fold, labels, backbone.model_cfg.window_samples, lm)
        for strategy in cfg.train.strategies:
            jobs.set_postfix_str(f"{fold.name} {strategy}")
            clf, hist = fit_strategy(strategy, backbone, data, cfg, device, fold.name, progress)
            history += hist
            for s in ("val", "test"):
                if data[s] is not None:
                    out = predict(
                        clf,
                        data[s].batches(
                            cfg.train.batch_size, device, embedded=strategy == "frozen"
                        ),
                    )
                    preds[strategy][s].append(
                        _prediction_frame(data[s], out).with_columns(
                            pl.lit(fold.name).alias("fold")
                        )
                    )
            models[(strategy, k)] = clf.cpu()  # saved once the validation threshold is known
            jobs.update()
        channels = data["train"].dataset.channels
        fold_channels.append(channels)
        if cfg.baseline.enabled:
            for s, frame in _baseline(cfg, fold, labels, channels).items():
                preds[BASELINE][s].append(frame.with_columns(pl.lit(fold.name).alias("fold")))
            jobs.update()
    jobs.close()
    ev = cfg.eval
    metrics, thresholds, test_preds = {}, {}, {}
    for name in names:
        test_preds[name] = pl.concat(preds[name]["test"], how="diagonal")
        thresholds[name] = _threshold(cfg, preds[name]["val"])
        metrics[name] = evaluate_levels(
            test_preds[name],
            LEVELS,
            threshold=thresholds[name],
            n_boot=ev.n_boot,
            confidence=ev.confidence,
            seed=ev.seed,
            method=ev.method,
        )
    units = {s: f"{EEGClassifier.unit} ({lm.unit_name()})" for s in cfg.train.strategies}
    table, dropped = results_table(metrics, thresholds, units | {BASELINE: BASELINE_UNIT})
    pretrained = str(backbone.path) if backbone.path else "none (scratch only)"
    saved: dict[str, list[Path]] = {}
    for (strategy, k), clf in models.items():
        state = {
            "config": to_dict(cfg),
            "model_config": to_dict(clf.model.cfg),
            "pretrained": pretrained,
            "threshold": thresholds[strategy],
            "label": cfg.labels.name,
            "pooling": clf.pooling,
            "channels": fold_channels[k],
            "participants": folds[k].participants,
            "history": [
                h for h in history if h["strategy"] == strategy and h["fold"] == folds[k].name
            ],
        }
        saved.setdefault(strategy, []).append(
            save_finetuned(paths[(strategy, k)], clf, state, cfg.train.overwrite)
        )
    result = FinetuneResult(
        table=table,
        metrics=metrics,
        predictions=test_preds,
        history=pl.DataFrame(
            history,
            schema={
                "strategy": pl.String,
                "fold": pl.String,
                "epoch": pl.Int64,
                "train_loss": pl.Float64,
                "val_loss": pl.Float64,
            },
        ),
        thresholds=thresholds,
        checkpoints=saved,
        folds=[f.participants for f in folds],
        leaky=gate["leaky"],
        leakage_summary=gate["summary"],
        pretraining_overlap=gate["pretraining_overlap"],
        pretrained=pretrained,
        level=ev.level,
        config=to_dict(cfg),
        dropped=dropped,
        length_match=lm.describe(uncut, window_samples / float(index["sfreq"][0])),
        shortcuts=None if shortcuts is None else shortcuts.table(),
    )
    result.run_id = log_run(result, cfg, backbone.stem)
    result.elapsed_s = time.perf_counter() - t0
    if cfg.train.autopsy:
        for checkpoints in saved.values():
            autopsy_checkpoint(
                autopsy, checkpoints[0], run_id=result.run_id, tracking_uri=cfg.tracking.uri
            )
    return result


def _threshold(cfg: FinetuneConfig, val: list[pl.DataFrame]) -> float:
    """0.5, or the threshold maximising balanced accuracy on validation predictions at the
    headline level (never on test predictions)."""
    if cfg.train.threshold == "fixed" or not val:
        return 0.5
    try:
        units = aggregate(pl.concat(val, how="diagonal"), cfg.eval.level)
    except ValueError:  # e.g. a per-run label at the participant level
        return 0.5
    return best_threshold(units["label"].to_numpy(), units["score"].to_numpy())
