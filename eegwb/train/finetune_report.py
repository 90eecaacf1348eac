"""What a fine-tuning run leaves behind: the results table, checkpoints, the MLflow run.

`FinetuneResult` holds every strategy's (and the baseline's) test metrics side by side,
each row saying what one prediction is (a channel-sequence for the deep models, an
all-channel window for the baseline; a recording or participant averages them); a level
no strategy can be scored at (participants, when the label varies within them) is left
out with one line saying why, as are the length matching used and the shortcut audit;
`save_finetuned` / `load_finetuned` write and read fine-tuned checkpoints (plain dicts,
`torch.load(weights_only=True)`); `log_run` records params, metrics, the ROC chart, the
results table and the splits in MLflow through `eegwb.train.tracking.Tracker`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from eegwb.config import dump_yaml, from_dict, to_dict
from eegwb.evaluation.metrics import LevelMetrics, roc_chart
from eegwb.model.classifier import EEGClassifier
from eegwb.model.config import ModelConfig
from eegwb.model.eeg_model import EEGModel
from eegwb.train.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from eegwb.train.tracking import Tracker

TABLE_SCHEMA = {
    "strategy": pl.String,
    "level": pl.String,
    "auroc": pl.Float64,
    "auroc_low": pl.Float64,
    "auroc_high": pl.Float64,
    "balanced_accuracy": pl.Float64,
    "balanced_accuracy_low": pl.Float64,
    "balanced_accuracy_high": pl.Float64,
    "n_units": pl.Int64,
    "n_participants": pl.Int64,
    "threshold": pl.Float64,
    "unit": pl.String,  # what one scored unit is at this level
}
LEVEL_UNITS = {"recording": "recording (mean of its predictions)",
               "participant": "participant (mean of its predictions)"}  # fmt: skip
TAG_FINETUNED = "eegwb.finetuned_checkpoint"
TAG_PRETRAINED = "eegwb.pretrained_checkpoint"
TAG_LEAKY = "eegwb.leaky"


@dataclass
class FinetuneResult:
    table: pl.DataFrame  # one row per (strategy, level): AUROC and balanced accuracy with CIs
    metrics: dict[str, dict[str, LevelMetrics | str]]  # strategy -> level -> metrics or why not
    predictions: dict[str, pl.DataFrame]  # strategy -> test predictions (all folds)
    history: pl.DataFrame  # strategy, fold, epoch, train_loss, val_loss
    thresholds: dict[str, float]
    checkpoints: dict[str, list[Path]]
    folds: list[dict[str, list[str]]]  # participants per split, per fold
    leaky: bool
    leakage_summary: str
    pretraining_overlap: list[str]
    pretrained: str  # checkpoint path, or "none (scratch only)"
    level: str  # the headline level
    run_id: str | None = None
    elapsed_s: float = 0.0
    config: dict = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # level -> why it was not scored
    length_match: str = ""  # how recordings were cut into units (train/length_match.py)
    shortcuts: pl.DataFrame | None = None  # the shortcut gate's table (None: gate off)

    def roc(self, level: str | None = None) -> pl.DataFrame:
        """ROC points of every strategy at `level` (default: the headline level)."""
        level = level or self.level
        frames = [
            m[level].roc.with_columns(pl.lit(s).alias("strategy"))
            for s, m in self.metrics.items()
            if isinstance(m.get(level), LevelMetrics)
        ]
        if not frames:
            return pl.DataFrame(
                schema={
                    "fpr": pl.Float64,
                    "tpr": pl.Float64,
                    "threshold": pl.Float64,
                    "strategy": pl.String,
                }
            )
        return pl.concat(frames)

    def roc_chart(self, level: str | None = None):
        level = level or self.level
        return roc_chart(self.roc(level), title=f"ROC on held-out participants ({level} level)")

    def headline(self) -> pl.DataFrame:
        return self.table.filter(pl.col("level") == self.level)

    def format(self, level: str | None = None) -> str:
        """A plain-text results table (what `eegwb finetune` prints); level "all": every level."""
        rows = (
            self.table
            if level == "all"
            else self.table.filter(pl.col("level") == (level or self.level))
        )
        head = (
            f"{'strategy':<10} {'level':<11} {'AUROC [95% CI]':<23} {'bal. acc. [95% CI]':<23} "
            "participants"
        )
        lines = [head + "  one unit"]
        for r in rows.iter_rows(named=True):
            auc = f"{r['auroc']:.3f} [{r['auroc_low']:.3f}, {r['auroc_high']:.3f}]"
            bac = (
                f"{r['balanced_accuracy']:.3f} [{r['balanced_accuracy_low']:.3f}, "
                f"{r['balanced_accuracy_high']:.3f}]"
            )
            lines.append(
                f"{r['strategy']:<10} {r['level']:<11} {auc:<23} {bac:<23} "
                f"{r['n_participants']:<12}  {r['unit']}"
            )
        shown = (
            self.dropped
            if level == "all"
            else {k: v for k, v in self.dropped.items() if k == (level or self.level)}
        )
        lines += [f"{lvl} level not scored: {why}" for lvl, why in shown.items()]
        if self.length_match:
            lines.append(f"units: {self.length_match}")
        if self.shortcuts is not None:
            flagged = self.shortcuts.filter(pl.col("status") != "pass")
            lines.append(
                f"shortcut audit of these units: {flagged.height} of "
                f"{self.shortcuts.height} nuisance variables flagged"
            )
            lines += [
                f"  {r['status'].upper():4}  {r['check']}: {r['summary']}"
                for r in flagged.iter_rows(named=True)
            ]
        return "\n".join(lines)


def results_table(
    metrics: dict[str, dict[str, LevelMetrics | str]],
    thresholds: dict[str, float],
    units: dict[str, str],
) -> tuple[pl.DataFrame, dict[str, str]]:
    """(one row per strategy and level that could be scored, {level: why not} for the rest).
    `units`: strategy -> what one of its predictions is."""
    rows, dropped = [], {}
    for strategy, levels in metrics.items():
        for level, m in levels.items():
            if not isinstance(m, LevelMetrics):
                why = m.split(": ", 1)[-1] if m.startswith(f"{level} level") else m
                dropped[level] = why if dropped.get(level, why) == why else "see metrics"
                continue
            s = m.summary()
            unit = units[strategy] if level == "prediction" else LEVEL_UNITS[level]
            rows.append(
                {k: s.get(k) for k in TABLE_SCHEMA}
                | {
                    "strategy": strategy,
                    "level": level,
                    "threshold": thresholds[strategy],
                    "unit": unit,
                }
            )
    return pl.DataFrame(rows, schema=TABLE_SCHEMA, orient="row"), dropped


def save_finetuned(path: Path, clf, state: dict[str, Any], overwrite: bool) -> Path:
    """Atomically write a fine-tuned classifier: {"model" (classifier state_dict),
    "config" (FinetuneConfig), "model_config", "strategy", "threshold", ...}."""
    state = {"kind": "finetuned", "model": clf.state_dict(), "strategy": clf.strategy, **state}
    return save_checkpoint(path, state, overwrite=overwrite)


def load_finetuned(path: str | Path, map_location: str = "cpu"):
    """(EEGClassifier, checkpoint dict) from a fine-tuned checkpoint (weights only)."""

    ckpt = load_checkpoint(path, map_location=map_location)
    if ckpt.get("kind") != "finetuned":
        raise CheckpointError(f"{path}: not a fine-tuned checkpoint (kind {ckpt.get('kind')!r})")
    model = EEGModel(from_dict(ModelConfig, ckpt["model_config"]))
    clf = EEGClassifier(model, ckpt["strategy"], pooling=ckpt.get("pooling", "mean"))
    clf.load_state_dict(ckpt["model"])
    return clf.eval(), ckpt


def metric_dict(table: pl.DataFrame) -> dict[str, float]:
    """{"frozen.recording.auroc": 0.91, ...}: finite numbers of the results table."""
    out = {}
    for r in table.iter_rows(named=True):
        for k in (
            "auroc",
            "auroc_low",
            "auroc_high",
            "balanced_accuracy",
            "balanced_accuracy_low",
            "balanced_accuracy_high",
            "threshold",
        ):
            if r[k] is not None and math.isfinite(r[k]):
                out[f"{r['strategy']}.{r['level']}.{k}"] = float(r[k])
    return out


def log_run(result: FinetuneResult, cfg, stem: str) -> str | None:
    """One MLflow run with everything needed to trust (or doubt) the numbers; never raises."""

    t = cfg.tracking
    tags = {
        TAG_PRETRAINED: result.pretrained,
        TAG_LEAKY: str(result.leaky).lower(),
        "eegwb.label": cfg.labels.name,
        "eegwb.dataset": cfg.data.root,
        "eegwb.length_match": cfg.data.length_match,
    }
    if result.shortcuts is not None:
        flagged = result.shortcuts.filter(pl.col("status") == "fail")["check"].to_list()
        tags["eegwb.shortcuts_failing"] = ",".join(flagged) or "none"
    if result.checkpoints:
        tags[TAG_FINETUNED] = str(next(iter(result.checkpoints.values()))[0])
    with Tracker(
        t.uri,
        t.experiment,
        run_name=t.run_name or f"{stem}_finetuned",
        tags=tags,
        enabled=t.enabled,
    ) as tracker:
        tracker.log_params(to_dict(cfg))
        tracker.log_text(dump_yaml(cfg), "config.yaml")
        tracker.log_metrics(metric_dict(result.table))
        for row in result.history.iter_rows(named=True):
            tracker.log_metrics(
                {
                    f"{row['strategy']}.{row['fold']}.train_loss": row["train_loss"],
                    f"{row['strategy']}.{row['fold']}.val_loss": row["val_loss"],
                },
                step=row["epoch"],
            )
        tracker.log_text(result.table.write_csv(), "results.csv")
        tracker.log_text(result.format("all"), "results.txt")
        tracker.log_text(
            json.dumps(
                {"folds": result.folds, "pretraining_overlap": result.pretraining_overlap}, indent=2
            ),
            "splits.json",
        )
        tracker.log_text(result.leakage_summary, "leakage.txt")
        if result.shortcuts is not None:
            tracker.log_text(result.shortcuts.write_csv(), "shortcuts.csv")
        if result.roc().height:
            tracker.log_chart(result.roc_chart(), "roc.html")
        return tracker.run_id
