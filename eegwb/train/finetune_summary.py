"""A fine-tuning result in words: did pretraining beat the baseline, and what an odd number
means.

A table of AUROCs with CIs leaves the reader to compare intervals by eye, and intervals
that overlap do not answer "did A beat B" (both were scored on the same people). So each
comparison here is a paired participant bootstrap of the AUROC difference
(`eegwb.evaluation.metrics.paired_auroc_difference`), said as one sentence with its CI:
pretrained strategies against the band-power baseline, and against the same model trained
from scratch. AUROCs below chance and intervals that collapse to a point get a comment.
"""

from __future__ import annotations

import math

import polars as pl

from eegwb.evaluation.metrics import MetricsError, PairedDifference, paired_auroc_difference
from eegwb.train.finetune_report import FinetuneResult

PRETRAINED = ("frozen", "full")  # strategies that start from the pretrained backbone
BASELINE = "baseline"
SCRATCH = "scratch"


def _ci(low: float, high: float) -> str:
    return f"[{low:.3f}, {high:.3f}]"


def compare(d: PairedDifference, a: str, b: str) -> str:
    """One sentence: who won, by how much, with the paired CI."""
    lo, hi = d.ci
    numbers = (
        f"AUROC {d.auroc_a:.3f} vs {d.auroc_b:.3f}, difference {d.difference:+.3f} "
        f"(95% CI {_ci(lo, hi)}, paired bootstrap over {d.n_participants} test participants, "
        f"{d.level} level)"
    )
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"**{a} vs {b}**: {numbers}; too few participants to tell them apart."
    if lo > 0:
        return f"**{a} beat {b}**: {numbers}."
    if hi < 0:
        return f"**{b} beat {a}**: {numbers}."
    return f"**{a} and {b} cannot be told apart** on this test set: {numbers}."


def auroc_comments(result: FinetuneResult) -> list[str]:
    """What an AUROC below chance, or an interval of a single point, means."""
    notes = []
    for r in result.headline().iter_rows(named=True):
        if r["auroc"] is None or not math.isfinite(r["auroc"]):
            continue
        name, auc, lo, hi = r["strategy"], r["auroc"], r["auroc_low"], r["auroc_high"]
        shown = f"{name}: AUROC {auc:.3f} {_ci(lo, hi)}"
        if math.isfinite(hi) and hi < 0.5:
            notes.append(
                f"{shown} is below chance on every resample: its scores rank the test "
                "classes the wrong way round (0 = every negative scored above every positive). "
                f"With {r['n_participants']} test participants that is one arrangement of a "
                "few people, not an inverse effect; look at its validation loss (over-fitting "
                "the training participants) before reading more into it."
            )
        elif math.isfinite(lo) and lo == hi:
            notes.append(
                f"{shown}: the interval is a single point because every resample of the "
                f"{r['n_participants']} test participants scores the same (complete "
                "separation); read it with the number of participants, not as certainty."
            )
    return notes


def conclusions(result: FinetuneResult, *, n_boot: int = 2000, seed: int = 0) -> list[str]:
    """Sentences for the reader: the answer first (did a pretrained strategy beat the
    baseline?), then each comparison with its CI, then comments on odd AUROCs."""
    preds = result.predictions
    lines, beat, lost = [], [], []
    for strategy in (s for s in PRETRAINED if s in preds):
        for other in (BASELINE, SCRATCH):
            if other not in preds:
                continue
            try:
                d = paired_auroc_difference(
                    preds[strategy], preds[other], result.level, n_boot=n_boot, seed=seed
                )
            except MetricsError as err:
                lines.append(f"{strategy} vs {other}: no comparison ({err}).")
                continue
            lines.append(compare(d, strategy, other))
            if other == BASELINE and d.ci[0] > 0:
                beat.append(strategy)
            elif other == BASELINE and d.ci[1] < 0:
                lost.append(strategy)
    tried = [s for s in PRETRAINED if s in preds]
    if not tried:
        answer = "No pretrained strategy ran (frozen or full): nothing here says whether it helps."
    elif BASELINE not in preds:
        answer = "The band-power baseline did not run: only pretrained vs scratch is compared."
    elif beat:
        answer = f"**Yes**: {' and '.join(beat)} beat the band-power baseline on this test set."
    elif len(lost) == len(tried):
        answer = "**No**: the band-power baseline beat every pretrained strategy."
    else:
        answer = (
            "**Not shown**: no pretrained strategy beat the band-power baseline on this "
            "test set (the intervals of the differences include 0)."
        )
    return [answer, *lines, *auroc_comments(result)]


def roc_frame(result: FinetuneResult, level: str | None = None) -> pl.DataFrame:
    """`result.roc(level)` with each strategy named with its AUROC ("frozen (AUROC 1.00)"),
    so curves drawn on top of each other are still told apart in the legend."""
    level = level or result.level
    aucs = {
        r["strategy"]: r["auroc"]
        for r in result.table.filter(pl.col("level") == level).iter_rows(named=True)
    }
    names = {s: f"{s} (AUROC {a:.2f})" if a is not None else s for s, a in aucs.items()}
    return result.roc(level).with_columns(pl.col("strategy").replace(names))
