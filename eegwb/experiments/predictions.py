"""Predictions against targets on a fixed probe set, and against naive baselines.

Every autopsy section scores the same `ProbeSet` (the same sequences, the same masks), so
the numbers of predictions, gradients, attributions, ablations and failures are about the
same inputs. A `Subject` says what the model is and how one sample is scored:

    reconstruction  a pretrained EEGModel; loss = MSE over the masked windows; the scalar
                    an attribution explains is minus each sequence's masked MSE
    classifier      an EEGClassifier; loss = binary cross-entropy; the scalar is the logit

Reconstruction numbers follow the original collapse checks (variance across positions,
eegwb.train.collapse) and add baselines fitted on the same masked tokens: predict the mean
window, the median window, or each channel's mean window. These are in-sample (optimistic)
floors, so a model that cannot beat them has learnt nothing the probe set's averages do not
already hold. Classifier numbers: AUROC, confusion at the checkpoint's threshold,
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

from eegwb.errors import InputError
from eegwb.evaluation.metrics import auroc, balanced_accuracy, confusion_matrix
from eegwb.experiments.report import Finding, Section

COLLAPSE_VAR_RATIO = 0.5  # the threshold: predictions vary < half as much as targets
MIN_IMPROVEMENT = 0.05  # beating the mean window by < 5% of its MSE is "barely"
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


# ----------------------------------------------------------------------------- reconstruction


def _reconstruction_numbers(out: torch.Tensor, probe: ProbeSet) -> tuple[dict, pl.DataFrame]:
    mask = probe.mask
    P = out[mask].double()  # (m, o)
    T = probe.target[mask].double()  # (m, o)
    if P.shape[0] < 2:
        raise InputError(
            "predictions: fewer than 2 masked windows in the probe set (mask_ratio 0?)"
        )
    chan = probe.channels[np.repeat(np.arange(len(probe)), mask.sum(1).numpy())]  # (m,)
    mse = float((P - T).square().mean())
    base = {"mean window": T.mean(0), "median window": T.median(0).values}
    chan_mean = torch.empty_like(T)
    for c in np.unique(chan):
        rows = torch.from_numpy(chan == c)
        chan_mean[rows] = T[rows].mean(0)
    mses = {k: float((T - v).square().mean()) for k, v in base.items()}
    mses["channel mean window"] = float((T - chan_mean).square().mean())
    pred_var, target_var = (
        float(P.var(0, unbiased=False).mean()),
        float(T.var(0, unbiased=False).mean()),
    )
    target_std = float(T.std(unbiased=False))
    resid = (P - T).flatten()
    q = torch.quantile(
        resid[
            torch.randperm(resid.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]
        ],
        torch.tensor([0.01, 0.05, 0.5, 0.95, 0.99], dtype=torch.float64),
    ).tolist()
    numbers = {
        "n_masked_windows": int(P.shape[0]),
        "pred_mean": float(P.mean()),
        "target_mean": float(T.mean()),
        "pred_std": float(P.std(unbiased=False)),
        "target_std": target_std,
        "pred_var": pred_var,
        "target_var": target_var,
        "var_ratio": pred_var / target_var if target_var > 0 else float("nan"),
        "mse": mse,
        "rmse": mse**0.5,
        "nrmse": mse**0.5 / target_std if target_std > 0 else float("nan"),
        **{f"mse_{k.replace(' ', '_')}": v for k, v in mses.items()},
        "improvement_over_mean": 1.0 - mse / mses["mean window"]
        if mses["mean window"] > 0
        else float("nan"),
        "residual_mean": float(resid.mean()),
        "residual_std": float(resid.std(unbiased=False)),
        **{f"residual_q{int(p * 100):02d}": v for p, v in zip((0.01, 0.05, 0.5, 0.95, 0.99), q)},
    }
    rows = [{"predictor": "model", "mse": mse}] + [
        {"predictor": k, "mse": v} for k, v in mses.items()
    ]
    table = pl.DataFrame(rows).with_columns(
        rmse=pl.col("mse").sqrt(), mse_vs_model=pl.col("mse") / mse if mse > 0 else pl.lit(None)
    )
    return numbers, table


def _residual_histogram(out: torch.Tensor, probe: ProbeSet, bins: int = 40) -> pl.DataFrame:
    resid = (out[probe.mask] - probe.target[probe.mask]).flatten().numpy()
    lo, hi = np.percentile(resid, [0.5, 99.5])
    counts, edges = np.histogram(
        np.clip(resid, lo, hi), bins=bins, range=(lo, hi) if hi > lo else None
    )
    return pl.DataFrame({"residual": edges[:-1], "residual_end": edges[1:], "count": counts})


def _reconstruction_findings(n: dict) -> list[Finding]:
    out = []
    if n["var_ratio"] < COLLAPSE_VAR_RATIO:
        out.append(
            Finding(
                "fail",
                f"Collapse: predictions vary only {n['var_ratio']:.1%} as much as the targets "
                "across "
                f"masked windows (threshold {COLLAPSE_VAR_RATIO:.0%}); the model outputs nearly "
                "the same window "
                "whatever the input.",
                "Run the control experiments (`eegwb control`) to see which floor the loss "
                "reaches; use the "
                "`signal` or `ema` target (an `embedding` target can collapse); lower "
                "masking.mask_ratio so "
                "context is visible; train longer or at a higher learning rate if the loss still "
                "falls.",
            )
        )
    if n["improvement_over_mean"] < MIN_IMPROVEMENT:
        gain = n["improvement_over_mean"]
        how = f"only {gain:.1%} below" if gain >= 0 else f"{-gain:.1%} above"
        out.append(
            Finding(
                "warn",
                f"The model's MSE is {how} that of predicting the mean window of these same masked "
                "tokens: it has learnt little beyond the dataset mean.",
                "Compare with the information floors (`eegwb control`); if position or channel "
                "floors are "
                "as low, the model uses only those; check that masked windows are not trivially "
                "predictable.",
            )
        )
    if n["mse_channel_mean_window"] < n["mse"]:
        out.append(
            Finding(
                "warn",
                "Predicting each channel's mean window beats the model: channel identity carries "
                "signal the model does not use.",
                "Check that the spatial encoding is on (model.disable_spatial_encoding) and that "
                "channel "
                "positions in the dataset are right (`eegwb validate`).",
            )
        )
    if abs(n["residual_mean"]) > 0.1 * n["target_std"]:
        out.append(
            Finding(
                "warn",
                f"Residuals are biased: mean(pred - target) = {n['residual_mean']:.3g} "
                f"({abs(n['residual_mean']) / n['target_std']:.0%} of the target std).",
                "Check normalisation (robust_z per recording and channel) and the head's bias; a "
                "constant offset often means train and probe data are normalised differently.",
            )
        )
    return out


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


def prediction_section(subject: Subject, probe: ProbeSet, out: torch.Tensor) -> Section:
    """Predictions vs targets (reconstruction) or vs labels (classifier) on the probe set."""
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
    numbers, table = _reconstruction_numbers(out, probe)
    tables = {"baselines": table, "residuals": _residual_histogram(out, probe)}
    return Section(
        "predictions",
        "Predictions vs targets",
        numbers,
        tables,
        _reconstruction_findings(numbers),
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
