"""Activations of every Linear / Conv1d and every block, through forward hooks.

Fused kernels can bypass submodule hooks, and even eegwb's reference Mamba-2 calls its
depthwise conv and gated norm as functions on the modules' weights. `reference_path(model)`
therefore runs every Mamba-2 mixer on the pure-PyTorch path with `conv1d` and `norm`
called *as modules* (the causal conv is the module's first l outputs, as in upstream's
non-fused forward), so forward hooks on them fire and layer attributions can target them.
Same weights, same numbers; the report says the autopsy ran this way.

Per hooked module, over the real (non-pad) positions of the probe set: mean, std, the
fraction of values near zero (|a| < 1% of the module's RMS on that batch), and dead units
(features whose |a| never exceeds 1e-6). Modules that never ran are listed as not called.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from eegwb.experiments.predictions import ProbeSet, Subject
from eegwb.experiments.report import Finding, Section
from eegwb.kernels.fused import KernelOps
from eegwb.kernels.ssd_reference import mamba_chunk_scan_ref
from eegwb.model.backbone import MambaLayer
from eegwb.model.mamba2 import EEGMamba2

DEAD_ACT = 1e-6  # a unit whose |output| never exceeds this carries nothing
NEAR_ZERO_REL = 0.01  # "near zero": below 1% of the module's RMS on the batch
DEAD_UNITS_WARN = 0.5  # a module with half its units dead is flagged
HOOKED_TYPES = (nn.Linear, nn.Conv1d)
BLOCK_TYPES = (MambaLayer, EEGMamba2, nn.TransformerEncoderLayer)
AUTOPSY_KERNEL_NOTE = (
    "The autopsy ran the model on the reference PyTorch path (kernel_backend='ref'), "
    "with each Mamba-2 conv1d and gated norm called as a module, so that every forward "
    "hook fires; fused kernels compute the same function but can bypass hooks."
)


def _hookable_ops(mixer: EEGMamba2, device: torch.device | str | None = None) -> KernelOps:
    def conv(
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        activation: str | None = None,
    ) -> torch.Tensor:
        out = mixer.conv1d(x)[
            ..., : x.shape[-1]
        ]  # (b, c, l): padding d_conv-1 each side, keep causal part
        return F.silu(out) if activation in ("silu", "swish") else out

    def norm(
        y: torch.Tensor, weight: torch.Tensor, z: torch.Tensor | None = None, **_: Any
    ) -> torch.Tensor:
        return mixer.norm(y, z)

    return KernelOps(
        "reference",
        "autopsy: reference path with hookable conv1d and norm",
        mamba_chunk_scan_ref,
        norm,
        conv,
    )


@contextlib.contextmanager
def reference_path(model: nn.Module) -> Iterator[int]:
    """Within the block, every Mamba-2 mixer of `model` runs the hookable reference path;
    yields the number of mixers switched. The mixers' own `kernels` come back on exit."""
    mixers = [m for m in model.modules() if isinstance(m, EEGMamba2)]
    for m in mixers:
        m.kernels = functools.partial(_hookable_ops, m)  # an instance attribute shadows the method
    try:
        yield len(mixers)
    finally:
        for m in mixers:
            del m.kernels


class _Stats:
    """Running moments of one module's output, rows = real positions, columns = units."""

    def __init__(self) -> None:
        self.n = 0
        self.s = self.ss = 0.0
        self.near = 0
        self.unit_max: torch.Tensor | None = None
        self.calls = 0

    def update(self, a: torch.Tensor) -> None:  # a (rows, units)
        a = a.detach().double()
        self.calls += 1
        if a.numel() == 0:
            return
        rms = float(a.square().mean().sqrt())
        self.n += a.numel()
        self.s += float(a.sum())
        self.ss += float(a.square().sum())
        self.near += int((a.abs() < NEAR_ZERO_REL * rms).sum()) if rms > 0 else a.numel()
        m = a.abs().amax(0)
        self.unit_max = m if self.unit_max is None else torch.maximum(self.unit_max, m)


def _rows(out: torch.Tensor, module: nn.Module, valid: torch.Tensor) -> torch.Tensor:
    """A module's output as (real positions, units); pads left out."""
    b, l = valid.shape
    if isinstance(module, nn.Conv1d) and out.dim() == 3:
        out = out[..., :l].transpose(1, 2)  # (b, l, c)
    if out.dim() >= 3 and tuple(out.shape[:2]) == (b, l):
        return out[valid].flatten(1)
    return out.reshape(-1, out.shape[-1]) if out.dim() >= 2 else out.reshape(-1, 1)


@torch.no_grad()
def activation_table(subject: Subject, probe: ProbeSet, batch_size: int) -> pl.DataFrame:
    """One row per hooked module: type, calls, mean, std, near_zero, dead_units, n_units."""
    named = [
        (n, m)
        for n, m in subject.module.named_modules()
        if isinstance(m, HOOKED_TYPES + BLOCK_TYPES)
    ]
    stats = {n: _Stats() for n, _ in named}
    current: dict[str, torch.Tensor] = {}

    def hook(name: str, module: nn.Module, _inp: Any, out: Any) -> None:
        out = out[0] if isinstance(out, tuple) else out
        stats[name].update(_rows(out, module, current["valid"]))

    handles = [m.register_forward_hook(functools.partial(hook, n)) for n, m in named]
    try:
        with reference_path(subject.module):
            for sl in probe.slices(batch_size):
                current["valid"] = ~probe.pad_mask[sl].to(subject.device)
                subject.output(
                    probe.x[sl].to(subject.device),
                    probe.coords[sl].to(subject.device),
                    probe.pad_mask[sl].to(subject.device),
                )
    finally:
        for h in handles:
            h.remove()
    rows = []
    for name, m in named:
        st = stats[name]
        mean = st.s / st.n if st.n else float("nan")
        var = st.ss / st.n - mean**2 if st.n else float("nan")
        n_units = 0 if st.unit_max is None else st.unit_max.numel()
        dead = 0 if st.unit_max is None else int((st.unit_max < DEAD_ACT).sum())
        rows.append(
            {
                "module": name,
                "type": type(m).__name__,
                "calls": st.calls,
                "mean": mean,
                "std": max(var, 0.0) ** 0.5,
                "near_zero": st.near / st.n if st.n else float("nan"),
                "dead_units": dead / n_units if n_units else float("nan"),
                "n_units": n_units,
            }
        )
    return pl.DataFrame(rows)


def activation_section(subject: Subject, probe: ProbeSet, batch_size: int = 16) -> Section:
    """Forward hooks on every Linear/Conv1d and block over the whole probe set."""
    table = activation_table(subject, probe, batch_size)
    called = table.filter(pl.col("calls") > 0)
    dead = called.filter(pl.col("dead_units") >= DEAD_UNITS_WARN)
    numbers = {
        "n_modules": table.height,
        "n_called": called.height,
        "n_not_called": table.height - called.height,
        "n_mostly_dead": dead.height,
        "max_dead_units": float(called["dead_units"].max() or 0.0)
        if called.height
        else float("nan"),
        "mean_near_zero": float(called["near_zero"].mean() or 0.0)
        if called.height
        else float("nan"),
    }
    findings = []
    if dead.height:
        names = ", ".join(
            f"{r['module']} ({r['dead_units']:.0%})" for r in dead.head(6).iter_rows(named=True)
        )
        findings.append(
            Finding(
                "fail",
                f"Dead units: {dead.height} module(s) output zero (|a| < {DEAD_ACT:g}) "
                f"in at least half of their features over every probe position: {names}.",
                "All-zero outputs mean zero weights or inputs that never reach them; compare with "
                "the gradient section's dead layers, re-initialise those weights, and check the "
                "checkpoint loads the layer you expect.",
            )
        )
    big = called.filter(pl.col("std") > 1e3)
    if big.height:
        findings.append(
            Finding(
                "warn",
                f"Activations explode in {', '.join(big['module'].to_list()[:4])} "
                f"(std up to {big['std'].max():.3g}).",
                "Check normalisation of the inputs and the norms in each block; lower the "
                "learning rate or add weight decay.",
            )
        )
    not_called = table.filter(pl.col("calls") == 0)["module"].to_list()
    notes = [AUTOPSY_KERNEL_NOTE]
    if not_called:
        notes.append(
            f"Not on the forward path here (never called): {', '.join(not_called[:8])}"
            f"{' ...' if len(not_called) > 8 else ''}."
        )
    tables = {
        "per_module": called.sort("dead_units", "near_zero", descending=True, nulls_last=True)
    }
    return Section("activations", "Activations", numbers, tables, findings, notes)


def activation_charts(section: Section) -> dict[str, Any]:
    import altair as alt

    data = section.tables["per_module"]
    return {
        "per_module": alt.Chart(data, title="Dead-unit and near-zero fractions per module")
        .transform_fold(["dead_units", "near_zero"], as_=["measure", "fraction"])
        .mark_bar()
        .encode(
            x=alt.X("fraction:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("module:N", sort=None),
            color="measure:N",
            yOffset="measure:N",
            tooltip=["module", "type", "mean", "std", "near_zero", "dead_units"],
        )
    }
