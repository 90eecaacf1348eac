"""Ablations: remove one part of the input at a time and measure what the model loses.

Each channel (all of its sequences), each window-position bin and each time bin within
the windows is in turn zeroed (or replaced by its mean window, `mode="mean"`) at every
visible position, and each frequency band is removed from every visible window (its
rFFT bins zeroed); the probe set's loss (and, for a classifier, its AUROC) is scored
again. importance = loss increase. The bins are those of the attributions, so the two
rankings can be compared: the Spearman correlation between the ablation and the IG
importance of each family says whether attributions point where removal hurts.

Shapes: n sequences, l windows, t samples per window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from eegwb.evaluation.metrics import auroc
from eegwb.experiments.activations import reference_path
from eegwb.experiments.attributions import (
    MIN_RANKED,
    band_of,
    bands,
    bin_label,
    rank_agreement,
    time_bins,
    window_bins,
)
from eegwb.experiments.predictions import ProbeSet, Subject, overall_loss, predict, sample_losses
from eegwb.experiments.report import Finding, Section

AGREEMENT_WARN = 0.3  # rank correlation below this: attributions and ablations disagree
FAMILIES = {
    "channel": "per_channel",
    "window": "per_window",
    "time_bin": "per_time",
    "band": "per_band",
}


@dataclass
class AblationConfig:
    mode: Literal["zero", "mean"] = "zero"  # zero: silence; mean: the (channel's) mean window
    n_time_bins: int = 16  # as AttributionConfig, so the rankings line up
    max_window_bins: int = 16
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.mode not in ("zero", "mean"):
            raise ValueError(f"AblationConfig.mode: {self.mode!r} is not 'zero' or 'mean'")
        for name in ("n_time_bins", "max_window_bins", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"AblationConfig.{name}: must be >= 1, got {getattr(self, name)}")


def _metric(subject: Subject, probe: ProbeSet, out: torch.Tensor) -> float:
    if subject.kind != "classifier":
        return math.nan

    return auroc(probe.label.numpy(), out.numpy())


Unit = tuple[str, str, Callable[[torch.Tensor], torch.Tensor], np.ndarray | None]


def _units(probe: ProbeSet, cfg: AblationConfig, sfreq: float) -> list[Unit]:
    """(family, unit, x -> ablated x, rows it touches or None for all)."""
    x, vis = probe.x, probe.visible.unsqueeze(-1)  # (n, l, t), (n, l, 1)
    _, l, t = x.shape
    mean_window = x[probe.visible].mean(0)  # (t,)
    units = []
    for c in np.unique(probe.channels):
        rows = np.flatnonzero(probe.channels == c)
        own = x[rows][probe.visible[rows]].mean(0) if cfg.mode == "mean" else torch.zeros(t)

        def fn(xx: torch.Tensor, rows=rows, own=own) -> torch.Tensor:
            return torch.where(vis[rows], own, xx[rows])

        units.append(("channel", str(c), fn, rows))
    fill = mean_window if cfg.mode == "mean" else torch.zeros(t)
    for s, e in window_bins(l, cfg.max_window_bins):
        sel = torch.zeros(1, l, 1, dtype=torch.bool)
        sel[:, s:e] = True
        units.append(
            ("window", bin_label(s, e), lambda xx, sel=sel: torch.where(vis & sel, fill, xx), None)
        )
    for s, e in time_bins(t, cfg.n_time_bins):
        sel = torch.zeros(1, 1, t, dtype=torch.bool)
        sel[..., s:e] = True
        units.append(
            (
                "time_bin",
                bin_label(s, e),
                lambda xx, sel=sel: torch.where(vis & sel, fill, xx),
                None,
            )
        )
    freqs = np.fft.rfftfreq(t, 1.0 / sfreq)
    named = bands(sfreq)
    for k, (name, band) in enumerate(named.items()):
        keep = torch.from_numpy(~band_of(freqs, band, k == len(named) - 1)).to(x.dtype)  # (f,)
        if keep.all():
            continue

        def stop(xx: torch.Tensor, keep=keep) -> torch.Tensor:
            return torch.where(
                vis, torch.fft.irfft(torch.fft.rfft(xx, dim=-1) * keep, n=t, dim=-1), xx
            )

        units.append(("band", name, stop, None))
    return units


def ablation_table(
    subject: Subject,
    probe: ProbeSet,
    sfreq: float,
    cfg: AblationConfig | None = None,
    *,
    bar: bool = False,
) -> tuple[dict[str, float], pl.DataFrame]:
    """Base loss/metric and one row per ablated unit: family, unit, loss, delta_loss, metric,
    delta_metric."""
    cfg = cfg or AblationConfig()
    with reference_path(subject.module):
        base_out = predict(subject, probe, cfg.batch_size)
        base_losses = sample_losses(subject, probe, base_out)
        base = {
            "loss": overall_loss(subject, probe, base_losses),
            "metric": _metric(subject, probe, base_out),
        }
        rows = []
        for family, unit, fn, touched in tqdm(
            _units(probe, cfg, sfreq), desc="ablations", disable=not bar, leave=False
        ):
            out = base_out.clone()
            if touched is None:
                out = predict(subject, probe, cfg.batch_size, x=fn(probe.x))
            else:  # only these sequences change: predict just them
                idx = torch.from_numpy(touched)
                sub = ProbeSet(
                    fn(probe.x),
                    probe.coords[idx],
                    probe.pad_mask[idx],
                    probe.meta[touched.tolist()],
                )
                out[idx] = predict(subject, sub, cfg.batch_size)
            loss = overall_loss(subject, probe, sample_losses(subject, probe, out))
            metric = _metric(subject, probe, out)
            rows.append(
                {
                    "family": family,
                    "unit": unit,
                    "loss": loss,
                    "delta_loss": loss - base["loss"],
                    "metric": metric,
                    "delta_metric": metric - base["metric"],
                }
            )
    return base, pl.DataFrame(rows)


def ablation_section(
    subject: Subject,
    probe: ProbeSet,
    sfreq: float,
    cfg: AblationConfig | None = None,
    attributions: Section | None = None,
    *,
    bar: bool = False,
) -> Section:
    """Every ablation family, and its rank agreement with the IG profiles when given."""
    cfg = cfg or AblationConfig()
    base, table = ablation_table(subject, probe, sfreq, cfg, bar=bar)
    tables: dict[str, pl.DataFrame] = {}
    numbers: dict[str, Any] = {"base_loss": base["loss"], "mode": cfg.mode}
    if subject.kind == "classifier":
        numbers["base_auroc"] = base["metric"]
    for family, name in FAMILIES.items():
        part = (
            table.filter(pl.col("family") == family)
            .drop("family")
            .rename({"unit": family})
            .with_columns(importance=pl.col("delta_loss"))
        )
        if not part.height:
            continue
        tables[name] = part  # in unit order (channels by name, bins by position)
        numbers[f"top_{family}"] = part.sort("importance", descending=True)[family][0]
        ig = attributions.tables.get(name) if attributions is not None else None
        if ig is not None:
            numbers[f"spearman_{family}"] = rank_agreement(part, ig, family)
    findings = _findings(
        numbers, tables, base["loss"], {"per_channel": "channel", "per_band": "band"}
    )
    notes = [
        (
            f"Each unit {'zeroed' if cfg.mode == 'zero' else 'replaced by its mean window'} at "
            "visible positions "
            "(bands: removed from the spectrum); importance = increase of the probe set's loss. "
            "Spearman: rank correlation with the IG importance of the same units."
        )
    ]
    return Section("ablations", "Ablations", numbers, tables, findings, notes)


def _findings(
    numbers: dict, tables: dict[str, pl.DataFrame], base_loss: float, keys: dict[str, str]
) -> list[Finding]:
    out = []
    disagree = [
        f"{fam} ({numbers[f'spearman_{fam}']:.2f})"
        for fam in FAMILIES
        if numbers.get(f"spearman_{fam}", math.nan) < AGREEMENT_WARN
        and tables.get(FAMILIES[fam]) is not None
        and tables[FAMILIES[fam]].height >= MIN_RANKED
    ]
    if disagree:
        out.append(
            Finding(
                "warn",
                f"Attributions and ablations disagree (Spearman < {AGREEMENT_WARN}) on: "
                f"{', '.join(disagree)}.",
                "Gradients and removal measure different things when the model saturates or the "
                "baseline is off-distribution; trust the ablation for 'what the loss needs', and "
                "try the mean baseline / mean-replacement ablation.",
            )
        )
    for name, key in keys.items():
        t = tables.get(name)
        if t is None:
            continue
        helps = t.filter(pl.col("delta_loss") < -0.05 * abs(base_loss))
        if helps.height:
            out.append(
                Finding(
                    "warn",
                    f"Removing {key} {', '.join(map(str, helps[key].to_list()[:4]))} lowers the "
                    "loss: the model is misled by it.",
                    f"Inspect that {key} for artifacts (line noise, drifts, bad electrode) and "
                    "consider "
                    "excluding or filtering it.",
                )
            )
    if base_loss > 0 and all(
        t["delta_loss"].abs().max() < 1e-3 * base_loss for t in tables.values()
    ):
        out.append(
            Finding(
                "fail",
                "No ablation changes the loss: the model ignores its input.",
                "Together with a collapse in the predictions section this is the 'predicts the "
                "dataset mean' failure: run `eegwb control` and check the masking and target.",
            )
        )
    return out


def ablation_charts(section: Section) -> dict[str, Any]:
    import altair as alt

    out = {}
    for name, t in section.tables.items():
        key = t.columns[0]
        out[name] = (
            alt.Chart(t, title=f"Loss increase when each {key.replace('_', ' ')} is ablated")
            .mark_bar()
            .encode(
                x=alt.X(f"{key}:N", sort=None),
                y=alt.Y("delta_loss:Q", title="Δ loss"),
                tooltip=[key, "loss", "delta_loss", "delta_metric"],
            )
        )
    return out
