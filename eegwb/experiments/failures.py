"""Failure modes: the worst samples, how errors are distributed, and where they are biased.

A sample is a masked window (reconstruction: its MSE) or a sequence (classifier: its
binary cross-entropy). Each carries its participant, run, channel and window row in the
recording file, so the worst ones can be looked up in notebook 02 or the raw data. Bias
is reported by target range (reconstruction: quintiles of the target window's RMS;
classifier: by true class) and by participant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from eegwb.experiments.predictions import ProbeSet, Subject
from eegwb.experiments.report import Finding, Section

HEAVY_TAIL = 20.0  # worst sample's error over the median
PARTICIPANT_BIAS = 2.0  # a participant's mean error over the median participant's
RANGE_BIAS = 3.0  # top target-range bin's error over the bottom bin's
N_RANGE_BINS = 5


def sample_errors(subject: Subject, probe: ProbeSet, out: torch.Tensor) -> pl.DataFrame:
    """One row per sample: participant, run, channel, window, error, residual, and context."""
    meta = probe.meta
    if subject.kind == "classifier":
        y = probe.label.double()
        prob = torch.sigmoid(out.double())
        err = F.binary_cross_entropy(prob.clamp(1e-7, 1 - 1e-7), y, reduction="none")
        rows = meta.with_columns(
            window=pl.format("{}-{}", "row_start", pl.col("row_start") + pl.col("n_windows") - 1)
        )
        return rows.select("seq_index", "participant", "run", "channel", "window").with_columns(
            label=pl.Series(y.numpy()),
            prob=pl.Series(prob.numpy()),
            error=pl.Series(err.numpy()),
            residual=pl.Series((prob - y).numpy()),
            target_range=pl.Series(y.numpy().astype(int).astype(str)),
        )
    seq, pos = torch.nonzero(probe.mask, as_tuple=True)  # (m,), (m,)
    pred, target = out[seq, pos].double(), probe.target[seq, pos].double()  # (m, o)
    rows = meta[seq.tolist()].select("seq_index", "participant", "run", "channel", "row_start")
    return rows.with_columns(
        position=pl.Series(pos.numpy()),
        window=pl.col("row_start") + pl.Series(pos.numpy()),
        error=pl.Series((pred - target).square().mean(1).numpy()),
        residual=pl.Series((pred - target).mean(1).numpy()),
        target_rms=pl.Series(target.square().mean(1).sqrt().numpy()),
        pred_rms=pl.Series(pred.square().mean(1).sqrt().numpy()),
    ).drop("row_start")


def _range_bias(samples: pl.DataFrame, classifier: bool) -> pl.DataFrame:
    if classifier:
        return (
            samples.group_by("target_range")
            .agg(
                n=pl.len(),
                mean_error=pl.col("error").mean(),
                mean_prob=pl.col("prob").mean(),
                accuracy=((pl.col("prob") >= 0.5) == (pl.col("label") >= 0.5)).mean(),
            )
            .sort("target_range")
        )
    edges = np.quantile(samples["target_rms"].to_numpy(), np.linspace(0, 1, N_RANGE_BINS + 1))
    which = np.clip(
        np.searchsorted(edges, samples["target_rms"].to_numpy(), side="right") - 1,
        0,
        N_RANGE_BINS - 1,
    )
    return (
        samples.with_columns(target_range=pl.Series(which))
        .group_by("target_range")
        .agg(
            n=pl.len(),
            target_rms=pl.col("target_rms").mean(),
            pred_rms=pl.col("pred_rms").mean(),
            mean_error=pl.col("error").mean(),
            mean_residual=pl.col("residual").mean(),
        )
        .with_columns(amplitude_ratio=pl.col("pred_rms") / pl.col("target_rms"))
        .sort("target_range")
        .with_columns(
            pl.format(
                "q{} (rms {})", pl.col("target_range") + 1, pl.col("target_rms").round(2)
            ).alias("target_range")
        )
    )


def _participant_bias(samples: pl.DataFrame) -> pl.DataFrame:
    people = (
        samples.group_by("participant")
        .agg(n=pl.len(), mean_error=pl.col("error").mean(), mean_residual=pl.col("residual").mean())
        .sort("participant")
    )
    median = people["mean_error"].median() or 0.0
    return people.with_columns(
        error_vs_median=pl.col("mean_error") / median if median > 0 else pl.lit(math.nan)
    )


def _findings(
    numbers: dict, by_range: pl.DataFrame, people: pl.DataFrame, classifier: bool
) -> list[Finding]:
    out = []
    if numbers["max_over_median"] > HEAVY_TAIL:
        out.append(
            Finding(
                "warn",
                f"A few samples dominate the error: the worst is {numbers['max_over_median']:.0f}x "
                "the median.",
                "Look at the worst samples below (participant, run, channel, window): blinks, "
                "electrode pops or flat stretches; robust_z normalisation and artifact rejection "
                "at ingest keep them from steering training.",
            )
        )
    if not classifier and by_range.height >= 2:
        lo, hi = by_range["mean_error"][0], by_range["mean_error"][-1]
        if lo > 0 and hi / lo > RANGE_BIAS:
            out.append(
                Finding(
                    "warn",
                    f"Errors grow with amplitude: the loudest fifth of windows has {hi / lo:.1f}x "
                    "the "
                    "error of the quietest.",
                    "High-amplitude windows are often artifacts; check them (failures table) "
                    "before "
                    "reading the loss as a measure of EEG modelling.",
                )
            )
        ratio = by_range["amplitude_ratio"][-1]
        if ratio < 0.5:
            out.append(
                Finding(
                    "warn",
                    f"The model shrinks large windows: predicted RMS is {ratio:.0%} of the target "
                    "RMS in the loudest fifth (regression to the mean).",
                    "Typical of a model that predicts the mean; see the collapse check and the "
                    "control experiments.",
                )
            )
    if classifier and by_range.height == 2:
        acc = by_range["accuracy"].to_list()
        if abs(acc[0] - acc[1]) > 0.3:
            out.append(
                Finding(
                    "warn",
                    f"Errors are one-sided: class accuracies {acc[0]:.0%} (class "
                    f"{by_range['target_range'][0]}) "
                    f"vs {acc[1]:.0%} (class {by_range['target_range'][1]}).",
                    "Move the threshold (chosen on validation data) or reweight the classes.",
                )
            )
    outliers = people.filter(pl.col("error_vs_median") > PARTICIPANT_BIAS)
    if outliers.height and people.height >= 3:
        names = ", ".join(
            f"{p} ({r:.1f}x)"
            for p, r in outliers.select("participant", "error_vs_median").rows()[:5]
        )
        out.append(
            Finding(
                "warn",
                f"Participants with errors above {PARTICIPANT_BIAS:g}x the median participant: "
                f"{names}.",
                "Check those recordings (notebook 02, per-channel statistics); report metrics with "
                "participant-level confidence intervals, not per window.",
            )
        )
    return out


def failure_section(
    subject: Subject, probe: ProbeSet, out: torch.Tensor, worst_k: int = 10
) -> Section:
    """Worst-k samples, error statistics, bias by target range and by participant."""
    classifier = subject.kind == "classifier"
    samples = sample_errors(subject, probe, out)
    err = samples["error"].to_numpy()
    med = float(np.median(err))
    numbers: dict[str, Any] = {
        "n_samples": len(err),
        "mean_error": float(err.mean()),
        "median_error": med,
        "p90_error": float(np.quantile(err, 0.9)),
        "p99_error": float(np.quantile(err, 0.99)),
        "max_error": float(err.max()),
        "max_over_median": float(err.max() / med) if med > 0 else math.nan,
    }
    by_range, people = _range_bias(samples, classifier), _participant_bias(samples)
    worst = samples.sort("error", descending=True).head(worst_k)
    tables = {"worst": worst, "by_target_range": by_range, "by_participant": people}
    unit = "sequence" if classifier else "masked window"
    notes = [
        (
            f"A sample is one {unit}; error = "
            f"{'binary cross-entropy' if classifier else 'MSE over the window'}; "
            "`window` is the window row (or rows) in the recording file."
        )
    ]
    return Section(
        "failures",
        "Failure modes",
        numbers,
        tables,
        _findings(numbers, by_range, people, classifier),
        notes,
    )


def failure_charts(section: Section) -> dict[str, Any]:
    import altair as alt

    t = section.tables
    return {
        "by_participant": alt.Chart(t["by_participant"], title="Mean error per participant")
        .mark_bar()
        .encode(
            x=alt.X("participant:N", sort=None),
            y="mean_error:Q",
            tooltip=["participant", "n", "mean_error", "mean_residual"],
        ),
        "by_target_range": alt.Chart(t["by_target_range"], title="Mean error by target range")
        .mark_bar()
        .encode(
            x=alt.X("target_range:N", sort=None),
            y="mean_error:Q",
            tooltip=t["by_target_range"].columns,
        ),
    }
