"""Gradient flow on one batch: which parameters receive a learning signal, and how much.

One backward pass of the training loss (masked MSE, or BCE for a classifier) on the first
`batch_size` probe sequences, in eval mode so dropout adds no noise, gives per parameter
tensor its gradient norm, its norm, and their ratio (a plain SGD step at lr 1 relative to
the weights). A trainable parameter whose gradient norm is below 1e-7 gets no signal:
it is *dead* (a zeroed weight downstream, a detached path, a saturated gate). Parameters
with requires_grad False (a frozen backbone, the reconstruction head of a classifier) are
*frozen*, not dead. An all-zero weight matrix or kernel is flagged as *zero weights* (biases
start at zero). A layer is every parameter under one module path (`...mixer.in_proj`).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import torch

from eegwb.experiments.predictions import ProbeSet, Subject, to_device
from eegwb.experiments.report import Finding, Section

DEAD_GRAD = 1e-7  # the threshold for "no gradient"
EXPLODING_GRAD = 1e3  # a total gradient norm this large makes clipping do all the work
VANISHING_SPREAD = 1e3  # block gradient norms spanning 1000x: the early blocks barely learn


def gradient_table(
    subject: Subject, probe: ProbeSet, batch_size: int
) -> tuple[float, pl.DataFrame]:
    """(loss, one row per parameter tensor: name, layer, numel, param_norm, grad_norm, ratio,
    status)."""
    module, dev = subject.module, subject.device
    module.zero_grad(set_to_none=True)
    sl = slice(0, min(batch_size, len(probe)))
    coords, pad_mask, target, mask = (to_device(v, dev) for v in probe.forward_args(sl))
    label = to_device(None if probe.label is None else probe.label[sl], dev)
    with torch.enable_grad():
        out = subject.output(probe.x[sl].to(dev), coords, pad_mask)
        losses = subject.sample_loss(out, target, mask, label)
        w = subject.weights(probe)[sl].to(dev)
        loss = (losses * w).sum() / w.sum().clamp(min=1)
        loss.backward()
    rows = []
    for name, p in module.named_parameters():
        param_norm = float(p.detach().double().norm())
        if not p.requires_grad:
            grad_norm, status = math.nan, "frozen"
        else:
            grad_norm = 0.0 if p.grad is None else float(p.grad.double().norm())
            # biases and norm shifts start at zero; an all-zero matrix or kernel is a defect
            zero = param_norm == 0 and p.ndim >= 2
            status = (
                "non-finite"
                if not math.isfinite(grad_norm)
                else "zero weights"
                if zero
                else "dead"
                if grad_norm < DEAD_GRAD
                else "ok"
            )
        rows.append(
            {
                "name": name,
                "layer": name.rsplit(".", 1)[0],
                "numel": p.numel(),
                "param_norm": param_norm,
                "grad_norm": grad_norm,
                "ratio": grad_norm / param_norm if param_norm > 0 else math.nan,
                "status": status,
            }
        )
    module.zero_grad(set_to_none=True)
    return float(loss.detach()), pl.DataFrame(rows)


def _layers(params: pl.DataFrame) -> pl.DataFrame:
    """Per layer: combined norms and whether every trainable tensor in it is dead."""
    return (
        params.filter(pl.col("status") != "frozen")
        .group_by("layer", maintain_order=True)
        .agg(
            grad_norm=pl.col("grad_norm").pow(2).sum().sqrt(),
            param_norm=pl.col("param_norm").pow(2).sum().sqrt(),
            n_tensors=pl.len(),
            dead=(pl.col("grad_norm") < DEAD_GRAD).all(),
        )
        .with_columns(ratio=pl.col("grad_norm") / pl.col("param_norm"))
    )


def _block_spread(layers: pl.DataFrame) -> float:
    """Largest / smallest gradient norm over backbone blocks (`backbone.layers.<i>`)."""
    blocks = (
        layers.with_columns(block=pl.col("layer").str.extract(r"(backbone\.layers\.\d+)"))
        .drop_nulls("block")
        .group_by("block")
        .agg(g=pl.col("grad_norm").pow(2).sum().sqrt())
    )
    g = [v for v in blocks["g"].to_list() if v > 0]
    return max(g) / min(g) if len(g) >= 2 else math.nan


def _findings(
    params: pl.DataFrame, layers: pl.DataFrame, total: float, spread: float
) -> list[Finding]:
    out = []
    dead_layers = layers.filter("dead")["layer"].to_list()
    dead = params.filter(pl.col("status") == "dead")["name"].to_list()
    zero = params.filter(pl.col("status") == "zero weights")["name"].to_list()
    if not math.isfinite(total):
        out.append(
            Finding(
                "fail",
                "Gradients are not finite (NaN/Inf) on this batch.",
                "Look for exploding activations (activations section), lower the learning rate, "
                "keep grad_clip on, and check inputs for NaN/Inf (`eegwb validate`).",
            )
        )
    if dead_layers:
        out.append(
            Finding(
                "fail",
                f"Dead layers: no gradient (< {DEAD_GRAD:g}) reaches {len(dead_layers)} "
                f"layer(s): {', '.join(dead_layers[:6])}{' ...' if len(dead_layers) > 6 else ''}.",
                "Something downstream blocks the signal: look for all-zero weights"
                f"{' (here: ' + ', '.join(zero[:4]) + ')' if zero else ''}, a detach or no_grad in "
                "the forward pass, or a gate saturated at zero; re-initialise or retrain those "
                "layers.",
            )
        )
    elif dead:
        out.append(
            Finding(
                "warn",
                f"{len(dead)} parameter tensor(s) get no gradient: {', '.join(dead[:6])}.",
                "Check whether these parameters are on the path to the loss at all; unused "
                "parameters waste memory and hide bugs.",
            )
        )
    if zero and not dead_layers:
        out.append(
            Finding(
                "warn",
                f"All-zero parameter tensors: {', '.join(zero[:6])}.",
                "A zeroed weight outputs nothing and stops the gradient to everything before it; "
                "check the checkpoint loaded strictly and the initialisation.",
            )
        )
    if total > EXPLODING_GRAD:
        out.append(
            Finding(
                "warn",
                f"Total gradient norm {total:.3g} on one batch: gradients explode.",
                "Keep train.grad_clip on (1.0), lower the learning rate, and check for outlier "
                "windows (failures section).",
            )
        )
    if spread > VANISHING_SPREAD:
        out.append(
            Finding(
                "warn",
                f"Gradient norms of the backbone blocks span {spread:.0f}x: some blocks "
                "barely learn.",
                "Check the residual path and the norms (pre-norm blocks should keep gradients "
                "flat); fewer layers or a higher learning rate for the weak blocks may help.",
            )
        )
    return out


def gradient_section(subject: Subject, probe: ProbeSet, batch_size: int = 16) -> Section:
    """Gradient flow on the first `batch_size` probe sequences."""
    loss, params = gradient_table(subject, probe, batch_size)
    layers = _layers(params)
    trainable = params.filter(pl.col("status") != "frozen")
    total = (
        float(math.sqrt(sum(g * g for g in trainable["grad_norm"].to_list())))
        if trainable.height
        else 0.0
    )
    spread = _block_spread(layers)
    counts = params.group_by("status").len()
    numbers: dict[str, Any] = {
        "loss": loss,
        "batch_sequences": min(batch_size, len(probe)),
        "total_grad_norm": total,
        "n_tensors": params.height,
        **{f"n_{s.replace(' ', '_')}": int(n) for s, n in counts.iter_rows()},
        "n_dead_layers": int(layers["dead"].sum()) if layers.height else 0,
        "median_ratio": float(trainable["ratio"].drop_nans().median() or math.nan)
        if trainable.height
        else math.nan,
        "block_grad_spread": spread,
    }
    notes = [
        (
            f"One backward pass of the training loss on {numbers['batch_sequences']} sequences "
            "(eval mode). "
            f"Dead: gradient norm < {DEAD_GRAD:g}; frozen: requires_grad is False."
        )
    ]
    tables = {"per_layer": layers.sort("grad_norm"), "per_parameter": params.sort("grad_norm")}
    return Section(
        "gradients",
        "Gradient flow",
        numbers,
        tables,
        _findings(params, layers, total, spread),
        notes,
    )


def gradient_charts(section: Section) -> dict[str, Any]:
    """Gradient norm per layer on a log axis. Bars start at a base a decade below the
    smallest norm drawn (a log axis has no 0, and bars from 0 left the chart empty); dead
    layers (norm 0 or below DEAD_GRAD) are drawn at that base."""
    import altair as alt

    layers = section.tables["per_layer"]
    live = [g for g in layers["grad_norm"].to_list() if g is not None and g >= DEAD_GRAD]
    base = 10.0 ** (math.floor(math.log10(min(live))) - 1) if live else DEAD_GRAD / 10
    data = layers.with_columns(
        grad_norm_drawn=pl.max_horizontal("grad_norm", pl.lit(base)), base=pl.lit(base)
    )
    title = f"Gradient norm per layer (log axis from {base:.0e}; dead layers at that base)"
    tooltip = [
        "layer",
        alt.Tooltip("grad_norm:Q", format=".3g"),
        alt.Tooltip("param_norm:Q", format=".3g"),
        alt.Tooltip("ratio:Q", format=".3g"),
        "dead",
    ]
    chart = (
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            x=alt.X("grad_norm_drawn:Q", scale=alt.Scale(type="log"), title="gradient norm"),
            x2="base:Q",
            y=alt.Y("layer:N", sort=None),
            color="dead:N",
            tooltip=tooltip,
        )
    )
    return {"per_layer": chart}
