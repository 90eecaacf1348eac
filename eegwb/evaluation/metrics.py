"""Classification metrics on held-out participants, with honest uncertainty.

A fine-tuned model (or the band-power baseline) scores *prediction units*: one channel
sequence, or one window. Those units are not independent: a participant contributes many
of them, correlated through the person. So

- scores are aggregated to the recording (participant, run) and participant level by
  averaging probabilities, and each level is reported on its own;
- 95% confidence intervals come from a bootstrap (BCa by default) that resamples
  **participants** (with all of their units), never individual units; resampling units
  would treat 400 windows of 5 people as 400 people and give intervals that are far too
  narrow.

The prediction table every function here speaks (Polars):

    participant  str    who the unit belongs to
    run          str    recording id within the participant
    label        int    true class, 0 or 1
    score        float  predicted probability of class 1

AUROC is the Mann-Whitney statistic (ties count one half), so it agrees with
`sklearn.metrics.roc_auc_score` without needing it in the bootstrap loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.stats import norm, rankdata

from eegwb.errors import InputError

LEVELS = ("prediction", "recording", "participant")
REQUIRED_COLUMNS = ("participant", "run", "label", "score")


class MetricsError(InputError):
    """Bad prediction table or an evaluation that cannot be computed."""


def auroc(label: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present. label (n,) 0/1, score (n,)."""
    label = np.asarray(label).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(label.sum())
    n_neg = label.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)  # average ranks: a tie between classes counts one half
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def balanced_accuracy(label: np.ndarray, pred: np.ndarray) -> float:
    """Mean of sensitivity and specificity; NaN when only one class is present."""
    label = np.asarray(label).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if label.all() or not label.any():
        return float("nan")
    return float(0.5 * (pred[label].mean() + (~pred[~label]).mean()))


def confusion_matrix(label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(2, 2) int counts [[tn, fp], [fn, tp]] (rows true class, columns predicted)."""
    label = np.asarray(label).astype(int)
    pred = np.asarray(pred).astype(int)
    out = np.zeros((2, 2), dtype=np.int64)
    np.add.at(out, (label, pred), 1)
    return out


def roc_curve(label: np.ndarray, score: np.ndarray) -> pl.DataFrame:
    """ROC points (fpr, tpr, threshold), from (0, 0) to (1, 1); one point per distinct score."""
    label = np.asarray(label).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        raise MetricsError(f"ROC curve needs both classes (got {n_pos} positive, {n_neg} negative)")
    order = np.argsort(-score, kind="stable")
    s, y = score[order], label[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(~y)[last_of_tie]
    return pl.DataFrame(
        {
            "fpr": np.r_[0.0, fp / n_neg],
            "tpr": np.r_[0.0, tp / n_pos],
            "threshold": np.r_[np.inf, s[last_of_tie]],
        }
    )


def check_predictions(pred: pl.DataFrame, where: str = "predictions") -> pl.DataFrame:
    """Validate a prediction table; returns it with normalised dtypes."""
    missing = [c for c in REQUIRED_COLUMNS if c not in pred.columns]
    if missing:
        raise MetricsError(f"{where}: missing columns {missing} (have {pred.columns})")
    if pred.height == 0:
        raise MetricsError(f"{where}: no predictions")
    pred = pred.with_columns(
        pl.col("participant").cast(pl.String),
        pl.col("run").cast(pl.String),
        pl.col("label").cast(pl.Int64),
        pl.col("score").cast(pl.Float64),
    )
    bad_labels = pred.filter(~pl.col("label").is_in([0, 1]))
    if bad_labels.height:
        raise MetricsError(
            f"{where}: labels must be 0 or 1, got {bad_labels['label'].unique().to_list()}"
        )
    if not pred["score"].is_finite().all():
        raise MetricsError(
            f"{where}: {pred.height - pred['score'].is_finite().sum()} non-finite scores"
        )
    return pred


def aggregate(pred: pl.DataFrame, level: str) -> pl.DataFrame:
    """Mean score per recording or per participant (level "prediction" returns rows as given).

    Raises MetricsError when a group mixes labels (e.g. per-recording labels asked at the
    participant level), since a mean score of a mixed group has no true class.
    """
    if level not in LEVELS:
        raise MetricsError(f"unknown level {level!r}; expected one of {LEVELS}")
    pred = check_predictions(pred)
    if level == "prediction":
        return pred
    keys = ["participant"] if level == "participant" else ["participant", "run"]
    out = pred.group_by(keys, maintain_order=True).agg(
        pl.col("label").first(),
        pl.col("label").n_unique().alias("_n_labels"),
        pl.col("score").mean(),
        pl.len().alias("n_units"),
    )
    mixed = out.filter(pl.col("_n_labels") > 1)
    if mixed.height:
        raise MetricsError(
            f"{level} level: the label varies within a {level} ({mixed.height} of "
            f"{out.height} have more than one label, e.g. {'/'.join(mixed.select(keys).row(0))})"
        )
    if level == "participant":
        out = out.with_columns(pl.lit("*").alias("run"))
    return out.drop("_n_labels")


def _weighted_auroc(weights: np.ndarray, label: np.ndarray, score: np.ndarray) -> np.ndarray:
    """AUROC for many integer weightings of the same units at once.

    weights (r, n) — how often each unit is drawn in each of r resamples; label (n,) bool;
    score (n,). Equals `auroc` on the units repeated by their weights (ties count one half).
    NaN where a resample lacks a class.
    """
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]  # first index of each tie group
    w = weights[:, order]
    pos = np.add.reduceat(w * label[order], starts, axis=1)  # (r, g) positive weight per tie group
    neg = np.add.reduceat(w * ~label[order], starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)


def _weighted_metrics(
    w: np.ndarray, label: np.ndarray, score: np.ndarray, pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and balanced accuracy of r weightings w (r, n) of the same units; NaN where a
    weighting lacks a class."""
    auc = _weighted_auroc(w, label, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = (w * (label & pred)).sum(1) / (w * label).sum(1)
        spec = (w * (~label & ~pred)).sum(1) / (w * ~label).sum(1)
    bacc = 0.5 * (sens + spec)
    bacc[~np.isfinite(auc)] = np.nan
    return auc, bacc


def _bca_interval(
    boot: np.ndarray, estimate: float, jack: np.ndarray, confidence: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated percentile interval (Efron 1987); the acceleration
    comes from the leave-one-participant-out jackknife. Falls back to plain percentiles
    when the correction is undefined (e.g. every resample equals the estimate)."""
    tail = (1 - confidence) / 2
    levels = np.array([tail, 1 - tail])
    jack = jack[np.isfinite(jack)]
    below = (np.sum(boot < estimate) + 0.5 * np.sum(boot == estimate)) / boot.size
    z0 = norm.ppf(below)
    d = jack.mean() - jack if jack.size else np.zeros(1)
    denom = 6 * (d**2).sum() ** 1.5
    accel = (d**3).sum() / denom if denom > 0 else 0.0
    if np.isfinite(z0) and np.isfinite(accel):
        z = norm.ppf(levels)
        levels = norm.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    lo, hi = np.percentile(boot, 100 * np.clip(levels, 0, 1))
    return (float(lo), float(hi))


def bootstrap_ci(
    label: np.ndarray,
    score: np.ndarray,
    participant: Sequence[str] | np.ndarray,
    *,
    threshold: float = 0.5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "bca",
) -> dict[str, tuple[float, float]]:
    """Bootstrap CIs of AUROC and balanced accuracy, resampling participants.

    Each resample draws as many participants as there are, with replacement, and keeps all
    units of each draw (a participant drawn twice counts twice). Resamples with a single
    class are skipped. `method` "bca" (default: closer to nominal coverage with the 8-20
    held-out participants EEG studies have) or "percentile". With perfect separation every
    resample scores the same, so the interval collapses to a point: read it with the number
    of participants, not as certainty. Returns {"auroc": (low, high),
    "balanced_accuracy": (low, high), "n_valid": (resamples used, resamples drawn)}; NaN
    intervals with fewer than 10 usable resamples (e.g. a single participant).
    """
    if not 0 < confidence < 1:
        raise MetricsError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise MetricsError(f"n_boot must be >= 1, got {n_boot}")
    if method not in ("bca", "percentile"):
        raise MetricsError(f"bootstrap method must be 'bca' or 'percentile', got {method!r}")
    label = np.asarray(label).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    pred = score >= threshold
    _, group = np.unique(np.asarray(participant, dtype=str), return_inverse=True)
    n_groups = int(group.max()) + 1
    rng = np.random.default_rng(seed)
    aucs, baccs = [], []
    chunk = max(1, 2_000_000 // max(label.size, 1))  # bound the (r, n) weight matrix to ~16 MB
    for first in range(0, n_boot if n_groups >= 2 else 0, chunk):
        r = min(chunk, n_boot - first)
        draws = rng.integers(0, n_groups, (r, n_groups))
        counts = np.zeros((r, n_groups))
        np.add.at(counts, (np.arange(r)[:, None], draws), 1)
        auc, bacc = _weighted_metrics(counts[:, group], label, score, pred)  # (r,) each
        aucs.append(auc[np.isfinite(auc)])
        baccs.append(bacc[np.isfinite(auc)])
    boots = {
        "auroc": np.concatenate(aucs) if aucs else np.array([]),
        "balanced_accuracy": np.concatenate(baccs) if baccs else np.array([]),
    }
    if method == "bca" and n_groups >= 2:
        keep = 1.0 - (group[None, :] == np.arange(n_groups)[:, None])  # (groups, n) leave one out
        jack = dict(
            zip(
                ("auroc", "balanced_accuracy"),
                _weighted_metrics(keep, label, score, pred),
                strict=True,
            )
        )
        full = dict(
            zip(
                ("auroc", "balanced_accuracy"),
                _weighted_metrics(np.ones((1, label.size)), label, score, pred),
                strict=True,
            )
        )
    out: dict[str, tuple] = {}
    for name, values in boots.items():
        if values.size < 10:
            out[name] = (float("nan"), float("nan"))
        elif method == "bca":
            out[name] = _bca_interval(values, float(full[name][0]), jack[name], confidence)
        else:
            tail = 100 * (1 - confidence) / 2
            lo, hi = np.percentile(values, [tail, 100 - tail])
            out[name] = (float(lo), float(hi))
    out["n_valid"] = (int(boots["auroc"].size), n_boot)
    return out


@dataclass
class LevelMetrics:
    """Metrics of one aggregation level, with participant-bootstrap CIs."""

    level: str
    n_units: int
    n_participants: int
    n_positive: int
    n_negative: int
    auroc: float
    auroc_ci: tuple[float, float]
    balanced_accuracy: float
    balanced_accuracy_ci: tuple[float, float]
    confusion: list[list[int]]  # [[tn, fp], [fn, tp]]
    threshold: float
    roc: pl.DataFrame = field(repr=False)

    def summary(self) -> dict[str, object]:
        """Flat, JSON-friendly numbers (no ROC points)."""
        return {
            "level": self.level,
            "n_units": self.n_units,
            "n_participants": self.n_participants,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "auroc": self.auroc,
            "auroc_low": self.auroc_ci[0],
            "auroc_high": self.auroc_ci[1],
            "balanced_accuracy": self.balanced_accuracy,
            "balanced_accuracy_low": self.balanced_accuracy_ci[0],
            "balanced_accuracy_high": self.balanced_accuracy_ci[1],
            "tn": self.confusion[0][0],
            "fp": self.confusion[0][1],
            "fn": self.confusion[1][0],
            "tp": self.confusion[1][1],
        }


def evaluate(
    pred: pl.DataFrame,
    level: str = "recording",
    *,
    threshold: float = 0.5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "bca",
) -> LevelMetrics:
    """AUROC, balanced accuracy (score >= threshold is class 1), confusion, ROC at one level."""
    units = aggregate(pred, level)
    y = units["label"].to_numpy()
    s = units["score"].to_numpy()
    if y.all() or not y.any():
        raise MetricsError(
            f"{level} level: the held-out set has only class {int(y[0])}; AUROC undefined"
        )
    ci = bootstrap_ci(
        y,
        s,
        units["participant"].to_numpy(),
        threshold=threshold,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        method=method,
    )
    return LevelMetrics(
        level=level,
        n_units=units.height,
        n_participants=units["participant"].n_unique(),
        n_positive=int(y.sum()),
        n_negative=int((1 - y).sum()),
        auroc=auroc(y, s),
        auroc_ci=ci["auroc"],
        balanced_accuracy=balanced_accuracy(y, s >= threshold),
        balanced_accuracy_ci=ci["balanced_accuracy"],
        confusion=confusion_matrix(y, s >= threshold).tolist(),
        threshold=threshold,
        roc=roc_curve(y, s),
    )


def evaluate_levels(
    pred: pl.DataFrame,
    levels: Sequence[str] = LEVELS,
    **kwargs: object,
) -> dict[str, LevelMetrics | str]:
    """`evaluate` at each level; a level that cannot be computed maps to the reason why."""
    out: dict[str, LevelMetrics | str] = {}
    for level in levels:
        try:
            out[level] = evaluate(pred, level, **kwargs)  # type: ignore[arg-type]
        except MetricsError as err:
            out[level] = str(err)
    return out


def best_threshold(label: np.ndarray, score: np.ndarray) -> float:
    """The score threshold that maximises balanced accuracy (for choosing on validation data).

    Ties go to the threshold nearest 0.5, so an uninformative model keeps the default.
    """
    label = np.asarray(label).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    if label.all() or not label.any():
        return 0.5
    candidates = np.unique(score)
    baccs = np.array([balanced_accuracy(label, score >= c) for c in candidates])
    best = np.flatnonzero(baccs >= baccs.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


@dataclass(frozen=True)
class PairedDifference:
    """AUROC(a) - AUROC(b) on the units both scored, with a paired participant-bootstrap CI."""

    level: str
    auroc_a: float
    auroc_b: float
    difference: float
    ci: tuple[float, float]
    n_units: int
    n_participants: int


def paired_auroc_difference(
    a: pl.DataFrame,
    b: pl.DataFrame,
    level: str = "recording",
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Did `a` rank the test units better than `b`? Both are scored on the same resampled
    participants in every bootstrap draw, so the interval answers that question directly;
    two separate intervals that overlap do not (they ignore that both models saw the same
    people). Percentile interval; `level` "prediction" compares recordings, since two
    models need not predict the same units (the baseline scores windows)."""
    level = "recording" if level == "prediction" else level
    keys = ["participant", "run"]
    units = aggregate(a, level).join(
        aggregate(b, level).select(*keys, pl.col("score").alias("score_b")), on=keys, how="inner"
    )
    if units.height == 0:
        raise MetricsError(f"{level} level: the two prediction tables share no units")
    label = units["label"].to_numpy().astype(bool)
    sa, sb = units["score"].to_numpy(), units["score_b"].to_numpy()
    _, group = np.unique(units["participant"].to_numpy().astype(str), return_inverse=True)
    n_groups = int(group.max()) + 1
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, n_groups))
    np.add.at(
        counts, (np.arange(n_boot)[:, None], rng.integers(0, n_groups, (n_boot, n_groups))), 1
    )
    weights = counts[:, group]
    diff = _weighted_auroc(weights, label, sa) - _weighted_auroc(weights, label, sb)
    diff = diff[np.isfinite(diff)]
    tail = 100 * (1 - confidence) / 2
    ci = (
        tuple(float(v) for v in np.percentile(diff, [tail, 100 - tail]))
        if diff.size >= 10 and n_groups >= 2
        else (float("nan"), float("nan"))
    )
    auc_a, auc_b = auroc(label, sa), auroc(label, sb)
    return PairedDifference(level, auc_a, auc_b, auc_a - auc_b, ci, units.height, n_groups)


def roc_chart(
    roc: pl.DataFrame, color: str = "strategy", title: str = "ROC on held-out participants"
):
    """Altair ROC curves, one per value of `color`, over the chance diagonal.
    `roc` has columns fpr, tpr and `color` (e.g. stacked `LevelMetrics.roc` frames)."""
    import altair as alt

    diagonal = (
        alt.Chart(pl.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}))
        .mark_line(strokeDash=[4, 4], color="gray")
        .encode(
            x=alt.X("fpr:Q", scale=alt.Scale(domain=[-0.03, 1.03], nice=False)),
            y=alt.Y("tpr:Q", scale=alt.Scale(domain=[-0.03, 1.03], nice=False)),
        )
    )
    # keep the curve order; drop the thresholds (the first is +inf, which JSON cannot hold)
    roc = roc.select("fpr", "tpr", color).with_columns(
        pl.int_range(pl.len()).over(color).alias("point")
    )
    # a margin around the unit square: a perfect curve (AUROC 1) runs along x = 0 and y = 1,
    # and on a domain of exactly [0, 1] it hides in the chart's border
    unit = alt.Scale(domain=[-0.03, 1.03], nice=False)
    ticks = alt.Axis(values=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
    curves = (
        alt.Chart(roc, title=title)
        .mark_line(strokeWidth=2.5)
        .encode(
            x=alt.X("fpr:Q", title="false positive rate", scale=unit, axis=ticks),
            y=alt.Y("tpr:Q", title="true positive rate", scale=unit, axis=ticks),
            color=alt.Color(f"{color}:N"),
            order="point:Q",
            tooltip=[color, alt.Tooltip("fpr:Q", format=".2f"), alt.Tooltip("tpr:Q", format=".2f")],
        )
    )
    return (diagonal + curves).properties(width=320, height=320)
