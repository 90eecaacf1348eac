"""Predictions against targets on a fixed probe set, and against the information floors.

Every autopsy section scores the same `ProbeSet` (the same sequences, the same masks), so
the numbers of predictions, gradients, attributions, ablations and failures are about the
same inputs. A `Subject` says what the model is and how one sample is scored:

    reconstruction  a pretrained EEGModel; loss = MSE over the masked windows; the scalar
                    an attribution explains is minus each sequence's masked MSE
    classifier      an EEGClassifier; loss = binary cross-entropy; the scalar is the logit

Reconstruction numbers follow the original collapse checks (variance across positions,
eegwb.train.collapse) and compare the model with the information floors of the same masked
tokens, learnt on the training participants as `eegwb control` learns them
(`reconstruction.py`). Classifier numbers: AUROC, confusion at the checkpoint's threshold,
calibration (reliability bins, ECE, Brier) and per-participant accuracy.

Shapes: n probe sequences, l windows, t samples per window, o output width, m masked tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from eegwb.evaluation.floors import Floors
from eegwb.evaluation.metrics import auroc, balanced_accuracy, confusion_matrix
from eegwb.experiments.reconstruction import (
    reconstruction_findings,
    reconstruction_numbers,
    residual_histogram,
)
from eegwb.experiments.report import Finding, Section

ECE_WARN = 0.1  # 10 points between predicted risk and observed frequency
CALIBRATION_BINS = 10


@dataclass
class ProbeSet:
    """The fixed inputs every section scores (CPU tensors)."""

    x: torch.Tensor  # (n, l, t) the model's input; masked windows hidden for reconstruction
    coords: torch.Tensor  # (n, 3)
    pad_mask: torch.Tensor  # (n, l) True at pads
    meta: pl.DataFrame  # probe order: seq_index, participant, run, channel, row_start, n_windows
    target: torch.Tensor | None = None  # (n, l, o) reconstruction targets
    mask: torch.Tensor | None = None  # (n, l) True at masked real windows (the scored ones)
    label: torch.Tensor | None = None  # (n,) float 0/1 for classifiers
    kept: torch.Tensor | None = None  # (n, l) masked windows BERT style left as they were: seen
    floors: Floors | None = None  # of the masked tokens (reconstruction.probe_floors)

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def visible(self) -> torch.Tensor:
        """(n, l) bool: real windows the model sees (not pads; not masked, or masked and kept)."""
        vis = ~self.pad_mask
        if self.mask is None:
            return vis
        hidden = self.mask if self.kept is None else self.mask & ~self.kept
        return vis & ~hidden

    @property
    def channels(self) -> np.ndarray:
        return self.meta["channel"].to_numpy()

    def slices(self, batch_size: int) -> Iterator[slice]:
        for i in range(0, len(self), batch_size):
            yield slice(i, min(i + batch_size, len(self)))

    def forward_args(self, sl: slice = slice(None)) -> tuple:
        """(coords, pad_mask, target, mask) of rows `sl`: what `Subject.score` takes after x."""
        target = None if self.target is None else self.target[sl]
        return (
            self.coords[sl],
            self.pad_mask[sl],
            target,
            None if self.mask is None else self.mask[sl],
        )


@dataclass
class Subject:
    """The model under autopsy and how it is scored (module in eval mode, on `device`)."""

    kind: Literal["reconstruction", "classifier"]
    module: (
        nn.Module
    )  # EEGModel or EEGClassifier (any module called as module(x, coords, pad_mask))
    model: nn.Module  # the EEGModel inside (the module itself when there is none)
    threshold: float = 0.5  # classifier decision threshold (the checkpoint's)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def output(self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """(b, l, o) reconstruction or (b,) logits. An EEGClassifier is called through
        `classify(pool(...))`, its forward without the frozen strategy's no_grad (and with its
        own pooling, mean or mean+std), so gradients reach the input with the same numbers;
        any other module is called as `module(x, coords, pad_mask)`."""
        if (
            self.kind == "classifier"
            and hasattr(self.module, "classify")
            and hasattr(self.module, "pool")
        ):
            return self.module.classify(self.module.pool(x, coords, pad_mask))
        return self.module(x, coords, pad_mask)

    def sample_loss(
        self,
        out: torch.Tensor,
        target: torch.Tensor | None,
        mask: torch.Tensor | None,
        label: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(b,) loss of each sequence: mean masked-window MSE (0 with none masked), or BCE."""
        if self.kind == "classifier":
            return F.binary_cross_entropy_with_logits(out, label.to(out.dtype), reduction="none")
        err = (out - target).square().mean(-1) * mask  # (b, l)
        return err.sum(1) / mask.sum(1).clamp(min=1)

    def score(
        self,
        x: torch.Tensor,
        coords: torch.Tensor,
        pad_mask: torch.Tensor,
        target: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(b,) the scalar attributions explain: the logit, or minus the masked MSE."""
        out = self.output(x, coords, pad_mask)
        if self.kind == "classifier":
            return out
        return -self.sample_loss(out, target, mask)

    def weights(self, probe: ProbeSet) -> torch.Tensor:
        """(n,) each sequence's weight in the overall loss: masked windows, or 1."""
        if self.kind == "classifier":
            return torch.ones(len(probe))
        return probe.mask.sum(1).float()


def to_device(v: Any, device: torch.device) -> Any:
    return v.to(device) if isinstance(v, torch.Tensor) else v


@torch.no_grad()
def predict(
    subject: Subject, probe: ProbeSet, batch_size: int, x: torch.Tensor | None = None
) -> torch.Tensor:
    """Outputs for every probe sequence on CPU, (n, l, o) or (n,); `x` replaces probe.x."""
    x = probe.x if x is None else x
    dev = subject.device
    outs = [
        subject.output(x[sl].to(dev), probe.coords[sl].to(dev), probe.pad_mask[sl].to(dev))
        .float()
        .cpu()
        for sl in probe.slices(batch_size)
    ]
    return torch.cat(outs)


def sample_losses(subject: Subject, probe: ProbeSet, out: torch.Tensor) -> torch.Tensor:
    """(n,) per-sequence loss of precomputed outputs."""
    return subject.sample_loss(out, probe.target, probe.mask, probe.label)


def overall_loss(subject: Subject, probe: ProbeSet, losses: torch.Tensor) -> float:
    """The split's loss: masked MSE over all masked windows, or mean BCE."""
    w = subject.weights(probe).double()
    return float((losses.double() * w).sum() / w.sum().clamp(min=1))


# ----------------------------------------------------------------------------- classifier


def calibration_table(
    prob: np.ndarray, label: np.ndarray, bins: int = CALIBRATION_BINS
) -> pl.DataFrame:
    """Reliability bins of equal width: n, mean predicted probability, observed frequency."""
    which = np.minimum((prob * bins).astype(int), bins - 1)
    rows = [
        {
            "bin": b,
            "lower": b / bins,
            "n": int((which == b).sum()),
            "mean_prob": float(prob[which == b].mean()),
            "frac_positive": float(label[which == b].mean()),
        }
        for b in range(bins)
        if (which == b).any()
    ]
    return pl.DataFrame(
        rows,
        schema={
            "bin": pl.Int64,
            "lower": pl.Float64,
            "n": pl.Int64,
            "mean_prob": pl.Float64,
            "frac_positive": pl.Float64,
        },
    )


def _classifier_numbers(out: torch.Tensor, probe: ProbeSet, threshold: float) -> tuple[dict, dict]:

    prob = torch.sigmoid(out.double()).numpy()
    y = probe.label.numpy().astype(int)
    pred = (prob >= threshold).astype(int)
    cal = calibration_table(prob, y)
    ece = float((cal["n"] * (cal["mean_prob"] - cal["frac_positive"]).abs()).sum() / len(prob))
    base_rate = float(y.mean())
    brier = float(np.mean((prob - y) ** 2))
    (tn, fp), (fn, tp) = confusion_matrix(y, pred).tolist()
    numbers = {
        "n_sequences": len(y),
        "positive_rate": base_rate,
        "auroc": auroc(y, prob),
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": balanced_accuracy(y, pred),
        "threshold": threshold,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "prob_mean": float(prob.mean()),
        "prob_std": float(prob.std()),
        "ece": ece,
        "brier": brier,
        "brier_base_rate": base_rate * (1 - base_rate),
        "predicted_positive_rate": float(pred.mean()),
    }
    people = (
        probe.meta.select("participant")
        .with_columns(label=pl.Series(y), prob=pl.Series(prob), correct=pl.Series(pred == y))
        .group_by("participant")
        .agg(
            n=pl.len(),
            label=pl.col("label").mean(),
            mean_prob=pl.col("prob").mean(),
            accuracy=pl.col("correct").mean(),
        )
        .sort("participant")
    )
    confusion = pl.DataFrame(
        {"true": ["0", "0", "1", "1"], "predicted": ["0", "1", "0", "1"], "count": [tn, fp, fn, tp]}
    )
    return numbers, {"calibration": cal, "per_participant": people, "confusion": confusion}


def _classifier_findings(n: dict, people: pl.DataFrame) -> list[Finding]:
    out = []
    if n["prob_std"] < 0.01:
        out.append(
            Finding(
                "fail",
                f"Collapse: predicted probabilities barely vary (std {n['prob_std']:.3g}); "
                "the classifier gives every sequence the same answer.",
                "Check that the backbone is not frozen on collapsed features (run this autopsy on "
                "the "
                "pretrained checkpoint), raise the head learning rate, and compare with the "
                "scratch "
                "strategy and the band-power baseline.",
            )
        )
    if n["predicted_positive_rate"] in (0.0, 1.0):
        out.append(
            Finding(
                "warn",
                f"Every sequence is predicted as class {int(n['predicted_positive_rate'])} at "
                f"threshold {n['threshold']:.3g}.",
                "Choose the threshold on validation predictions (finetune train.threshold=val) or "
                "balance the classes (pos_weight).",
            )
        )
    if not n["auroc"] >= 0.6:
        out.append(
            Finding(
                "warn",
                f"AUROC {n['auroc']:.3f}: near chance on these sequences.",
                "Compare with the band-power baseline on the same participants; if it does better, "
                "the backbone's features miss what the label depends on.",
            )
        )
    if n["ece"] > ECE_WARN:
        out.append(
            Finding(
                "warn",
                f"Poor calibration: expected calibration error {n['ece']:.2f}; predicted "
                "probabilities are not observed frequencies.",
                "Do not read the probabilities as risks; recalibrate on validation predictions "
                "(Platt or isotonic) before reporting them.",
            )
        )
    worst = people.filter(pl.col("n") >= 2).sort("accuracy").head(1)
    if worst.height and n["accuracy"] >= 0.7 and worst["accuracy"][0] < 0.5:
        out.append(
            Finding(
                "warn",
                f"Participant {worst['participant'][0]} is mostly misclassified "
                f"(accuracy {worst['accuracy'][0]:.0%}) while the overall accuracy is "
                f"{n['accuracy']:.0%}.",
                "Inspect that participant's recordings (`eegwb validate`, notebook 02) and the "
                "failures section; a few people driving the errors calls for participant-level "
                "CIs.",
            )
        )
    return out


# ----------------------------------------------------------------------------- the section


def prediction_section(
    subject: Subject, probe: ProbeSet, out: torch.Tensor, config: dict | None = None
) -> Section:
    """Predictions vs targets (reconstruction) or vs labels (classifier) on the probe set;
    `config`: the checkpoint's config (its model and masking shape the advice)."""
    if subject.kind == "classifier":
        numbers, tables = _classifier_numbers(out, probe, subject.threshold)
        return Section(
            "predictions",
            "Predictions vs labels",
            numbers,
            tables,
            _classifier_findings(numbers, tables["per_participant"]),
            hidden=("confusion",),
        )
    numbers, table, floors = reconstruction_numbers(out, probe)
    tables = {"baselines": table, "residuals": residual_histogram(out, probe)}
    return Section(
        "predictions",
        "Predictions vs targets",
        numbers,
        tables,
        reconstruction_findings(numbers, floors, config),
        hidden=("residuals",),
    )


def prediction_charts(section: Section) -> dict[str, Any]:
    import altair as alt

    t = section.tables
    if "baselines" in t:
        return {
            "baselines": alt.Chart(
                t["baselines"], title="RMSE of the model and naive baselines (masked windows)"
            )
            .mark_bar()
            .encode(
                x=alt.X("rmse:Q"),
                y=alt.Y("predictor:N", sort=None),
                tooltip=["predictor", "rmse", "mse"],
            ),
            "residuals": alt.Chart(
                t["residuals"], title="Residuals (pred - target), 0.5-99.5 percentile range"
            )
            .mark_bar()
            .encode(
                x=alt.X("residual:Q", bin="binned", title="residual"),
                x2="residual_end:Q",
                y="count:Q",
            ),
        }
    cal = t["calibration"]
    diag = pl.DataFrame({"mean_prob": [0.0, 1.0], "frac_positive": [0.0, 1.0]})
    return {
        "calibration": (
            alt.Chart(diag)
            .mark_line(strokeDash=[4, 4], color="gray")
            .encode(x="mean_prob:Q", y="frac_positive:Q")
            + alt.Chart(cal, title="Reliability: observed frequency vs predicted probability")
            .mark_line(point=True)
            .encode(
                x=alt.X("mean_prob:Q", scale=alt.Scale(domain=[0, 1])),
                y=alt.Y("frac_positive:Q", scale=alt.Scale(domain=[0, 1])),
                tooltip=["n", "mean_prob", "frac_positive"],
            )
        ),
        "per_participant": alt.Chart(t["per_participant"], title="Accuracy per participant")
        .mark_bar()
        .encode(
            x=alt.X("participant:N", sort=None),
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
            color="label:Q",
            tooltip=["participant", "n", "label", "mean_prob", "accuracy"],
        ),
        "confusion": alt.Chart(t["confusion"], title="Confusion at the threshold")
        .mark_rect()
        .encode(
            x="predicted:N", y="true:N", color="count:Q", tooltip=["true", "predicted", "count"]
        ),
    }
