"""A reconstruction model's predictions on the autopsy's probe set, against the floors.

The baselines the model must beat are the information floors (`eegwb.evaluation.floors`)
of the probe set's masked tokens, computed with the same code and keys as `eegwb
control`: group means learnt on the training split's participants and scored on these
tokens (transfer floors; the autopsy opens the training split), else in-sample. Before,
the autopsy compared the model with in-sample channel means of ~14 tokens per channel
and warned "predicting each channel's mean window beats the model" (0.997 vs 1.065) while
control put the channel floor at no gain: one question, two answers. Findings use the
verdict's margin, and their advice reads the model's config: it never recommends the
target, encoding or mask ratio already in use.

Shapes: n probe sequences, l windows, o output width, m masked tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch

from eegwb.errors import InputError
from eegwb.evaluation.floor_data import TokenKeys, fit_floors, loader
from eegwb.evaluation.floors import KINDS, LABELS, FloorAccumulator, Floors
from eegwb.experiments.report import Finding
from eegwb.experiments.verdict import VerdictConfig, other_targets

if TYPE_CHECKING:
    from eegwb.experiments.predictions import ProbeSet

COLLAPSE_VAR_RATIO = 0.5  # the threshold: predictions vary < half as much as targets
MIN_IMPROVEMENT = 0.05  # beating the dataset-mean floor by < 5% of it is "barely"
GAIN_MARGIN = VerdictConfig().gain_margin  # "clearly below" a floor, as the verdict says it


def probe_floors(
    probe: ProbeSet,
    targets: Callable | None = None,
    train: Any = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> Floors:
    """Floors of the probe set's masked tokens: transfer floors from the participants of
    `train` (an EEGDataset; its targets by `targets(batch)`), else in-sample only."""
    keys, fitted = TokenKeys(), None
    if train is not None:
        batches = (b.to(device) for b in loader(train, batch_size))
        fitted = fit_floors(batches, targets, keys, keys.people(train.index))
    people = torch.tensor([keys.ids.setdefault(str(p), len(keys.ids))
                           for p in probe.meta["participant"].to_list()])  # fmt: skip
    acc = FloorAccumulator()
    lengths = (~probe.pad_mask).sum(1)
    acc.update(
        probe.target[probe.mask].double(), *keys.of(probe.coords, lengths, probe.mask, people)
    )
    return acc.result(fitted)


def reconstruction_numbers(out: torch.Tensor, probe: ProbeSet) -> tuple[dict, pl.DataFrame, Floors]:
    """The numbers, the model-vs-floors table and the floors of the probe's masked tokens."""
    mask = probe.mask
    P = out[mask].double()  # (m, o)
    T = probe.target[mask].double()  # (m, o)
    if P.shape[0] < 2:
        raise InputError(
            "predictions: fewer than 2 masked windows in the probe set (mask_ratio 0?)"
        )
    floors = probe.floors if probe.floors is not None else probe_floors(probe)
    mse = float((P - T).square().mean())
    pred_var, target_var = (
        float(P.var(0, unbiased=False).mean()),
        float(T.var(0, unbiased=False).mean()),
    )
    target_std = float(T.std(unbiased=False))
    resid = (P - T).flatten()
    sample = resid[
        torch.randperm(resid.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]
    ]
    qs = (0.01, 0.05, 0.5, 0.95, 0.99)
    q = torch.quantile(sample, torch.tensor(qs, dtype=torch.float64)).tolist()
    nothing = floors.reference("nothing")
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
        "floors": floors.basis,
        "floor_train_participants": floors.n_train_participants,
        **{f"mse_floor_{k}": floors.reference(k) for k in KINDS},
        **{f"mse_floor_{k}_in_sample": floors.mse(k) for k in KINDS},
        "improvement_over_mean": 1.0 - mse / nothing if nothing > 0 else float("nan"),
        "residual_mean": float(resid.mean()),
        "residual_std": float(resid.std(unbiased=False)),
        **{f"residual_q{int(p * 100):02d}": v for p, v in zip(qs, q, strict=True)},
    }
    rows = [{"predictor": "model", "mse": mse}] + [
        {"predictor": f"{LABELS[k]} floor ({floors.basis})", "mse": floors.reference(k)}
        for k in KINDS
    ]
    table = pl.DataFrame(rows).with_columns(
        rmse=pl.col("mse").sqrt(), mse_vs_model=pl.col("mse") / mse if mse > 0 else pl.lit(None)
    )
    return numbers, table, floors


def residual_histogram(out: torch.Tensor, probe: ProbeSet, bins: int = 40) -> pl.DataFrame:
    resid = (out[probe.mask] - probe.target[probe.mask]).flatten().numpy()
    lo, hi = np.percentile(resid, [0.5, 99.5])
    counts, edges = np.histogram(
        np.clip(resid, lo, hi), bins=bins, range=(lo, hi) if hi > lo else None
    )
    return pl.DataFrame({"residual": edges[:-1], "residual_end": edges[1:], "count": counts})


def _collapse_advice(config: dict) -> str:
    model, masking = config.get("model", {}), config.get("masking", {})
    target, ratio = model.get("target", "signal"), masking.get("mask_ratio")
    parts = ["Run the control experiments (`eegwb control`) to see which floor the loss reaches"]
    if target == "embedding":
        parts.append("an 'embedding' target can collapse: " + other_targets(target))
    elif target == "signal":
        parts.append(
            "the model uses 'signal' targets, whose random-phase samples the neighbouring "
            "windows hardly predict (the mean is near-optimal); try 'ema' targets"
        )
    else:
        parts.append(other_targets(target))
    if ratio is not None and ratio >= 0.75:
        parts.append(f"lower masking.mask_ratio (now {ratio:g}) so more context is visible")
    parts.append("train longer or at a higher learning rate if the loss still falls")
    return "; ".join(parts) + "."


def _key_advice(key: str, config: dict) -> str:
    """What to check when a floor of `key` ("channel", "position") beats the model."""
    model = config.get("model", {})
    flag = "disable_spatial_encoding" if key == "channel" else "disable_temporal_encoding"
    name = "spatial" if key == "channel" else "temporal"
    if model.get(flag):
        return f"Its {name} encoding is off: turn it on (model.{flag}=false)."
    tail = (
        " and that the dataset's electrode positions are right (`eegwb validate`)"
        if key == "channel"
        else ""
    )
    return (
        f"The {name} encoding is on (model.{flag}=false): train longer or check the learning "
        f"rate{tail}."
    )


def reconstruction_findings(n: dict, floors: Floors, config: dict | None = None) -> list[Finding]:
    """Collapse, no gain over the dataset-mean floor, a position or channel floor the model
    does not reach, biased residuals; `config`: the checkpoint's (model, masking)."""
    config = config or {}
    basis = (
        f"learnt on {floors.n_train_participants} training participants"
        if floors.has_transfer
        else "in-sample, optimistic"
    )
    out = []
    if n["var_ratio"] < COLLAPSE_VAR_RATIO:
        out.append(
            Finding(
                "fail",
                f"Collapse: predictions vary only {n['var_ratio']:.1%} as much as the targets "
                f"across masked windows (threshold {COLLAPSE_VAR_RATIO:.0%}); the model outputs "
                "nearly the same window whatever the input.",
                _collapse_advice(config),
            )
        )
    if n["improvement_over_mean"] < MIN_IMPROVEMENT:
        gain = n["improvement_over_mean"]
        how = f"only {gain:.1%} below" if gain >= 0 else f"{-gain:.1%} above"
        out.append(
            Finding(
                "warn",
                f"The model's MSE is {how} the dataset-mean floor of these masked tokens "
                f"({basis}): it has learnt little beyond the mean.",
                "Read the floor ladder (`eegwb control`, or `eegwb floors DATA` without a model): "
                "if no floor is below the mean, position and channel carry nothing here either.",
            )
        )
    for key in ("channel", "position"):
        floor = floors.reference(key)
        if floor < n["mse"] * (1 - GAIN_MARGIN) and floor < floors.reference("nothing") * (
            1 - GAIN_MARGIN
        ):
            out.append(
                Finding(
                    "warn",
                    f"Predicting each {key}'s mean window ({basis}) beats the model "
                    f"({floor:.4f} vs {n['mse']:.4f}): {key} carries signal the model does not "
                    "use.",
                    _key_advice(key, config),
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
