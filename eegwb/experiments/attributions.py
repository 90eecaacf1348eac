"""Integrated Gradients (Captum) over the input windows, and a layer attribution on the
Mamba-2 conv1d.

The scalar explained is `Subject.score`: a classifier's logit, or minus a sequence's
masked-window MSE (how well the visible context reconstructs the hidden windows). IG
integrates gradients along the straight path from a baseline to the input, so the
attributions of one sequence sum to score(x) - score(baseline) (completeness); Captum's
convergence delta is the gap, reported per baseline. Baselines (equal to the input at
pads and masked windows, so only what the model sees is attributed):

    zero   silence (normalised EEG is centred, so zero is "no signal")
    mean   the probe set's mean visible window in every visible position
    noise  Gaussian noise at the data's standard deviation (seeded)

`internal_batch_size` bounds how many path points go through the model at once.
|attributions| are aggregated into profiles: per channel (spatial), per window position
bin and per time bin within a window (temporal), and per frequency band: the same
path-integrated gradient, expressed in each window's rFFT coefficients (the path is the
same straight line there), attributes the score to frequency bins at no extra cost. The
layer attribution is LayerGradCam (or LayerIntegratedGradients) on every mixer's conv1d,
mapped back to window positions (mixer_rev runs on reversed sequences), on the hookable
reference path of `eegwb.experiments.activations`.

Shapes: n sequences, l windows, t samples per window, f rfft bins.
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

from eegwb.experiments.activations import reference_path
from eegwb.experiments.predictions import ProbeSet, Subject, to_device
from eegwb.experiments.report import Finding, Section
from eegwb.model.backbone import reversal_index, reverse_real
from eegwb.model.mamba2 import EEGMamba2
from eegwb.validation.spectra import BANDS_HZ

BASELINES = ("zero", "mean", "noise")
COMPLETENESS_WARN = 0.05  # |delta| above 5% of |score(x) - score(baseline)|: too few steps
ONE_CHANNEL_SHARE = 0.5  # one channel carrying half the attribution
MIN_RANKED = 5  # rank correlations over fewer units are too noisy to flag


@dataclass
class AttributionConfig:
    baselines: tuple[str, ...] = BASELINES
    n_steps: int = (
        24  # Gauss-Legendre points; the completeness gap is reported and flagged above 5%
    )
    internal_batch_size: int = 64  # path points per forward pass: bounds memory
    batch_size: int = 8  # probe sequences per IG call
    n_time_bins: int = 16  # bins within a window for the temporal profile
    max_window_bins: int = 16  # window positions grouped into at most this many bins
    layer_method: Literal["gradcam", "integrated_gradients", "none"] = "gradcam"
    seed: int = 0

    def __post_init__(self) -> None:
        self.baselines = (
            tuple(self.baselines.split(","))
            if isinstance(self.baselines, str)
            else tuple(self.baselines)
        )
        bad = [b for b in self.baselines if b not in BASELINES]
        if bad or not self.baselines:
            raise ValueError(f"AttributionConfig.baselines: {bad or '()'} not in {BASELINES}")
        for name in (
            "n_steps",
            "internal_batch_size",
            "batch_size",
            "n_time_bins",
            "max_window_bins",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"AttributionConfig.{name}: must be >= 1, got {getattr(self, name)}"
                )
        if self.layer_method not in ("gradcam", "integrated_gradients", "none"):
            raise ValueError(f"AttributionConfig.layer_method: {self.layer_method!r} unknown")


# ---------------------------------------------------------------------- bins shared with ablations


def window_bins(l: int, max_bins: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) groups of window positions 0..l-1, at most `max_bins`."""
    edges = np.unique(np.linspace(0, l, min(l, max_bins) + 1).round().astype(int))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def time_bins(t: int, n_bins: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) sample ranges within a window."""
    return window_bins(t, n_bins)


def bands(sfreq: float) -> dict[str, tuple[float, float]]:
    """The standard EEG bands (eegwb.validation.spectra) plus everything above gamma."""
    out = {k: v for k, v in BANDS_HZ.items() if v[0] < sfreq / 2}
    out["high"] = (max(v[1] for v in BANDS_HZ.values()), sfreq / 2)
    return {k: v for k, v in out.items() if v[1] > v[0]}


def band_of(freqs: np.ndarray, band: tuple[float, float], last: bool) -> np.ndarray:
    """Bins in [low, high) (the highest band also keeps its upper edge)."""
    return (freqs >= band[0]) & ((freqs <= band[1]) if last else (freqs < band[1]))


def bin_label(a: int, b: int) -> str:
    """'3' for one position, '4-7' for [4, 8)."""
    return f"{a}" if b == a + 1 else f"{a}-{b - 1}"


# ----------------------------------------------------------------------------- IG


def make_baseline(kind: str, probe: ProbeSet, seed: int = 0) -> torch.Tensor:
    """(n, l, t) baseline; equal to the input wherever the model sees no data."""
    vis = probe.visible.unsqueeze(-1)  # (n, l, 1)
    seen = probe.x[probe.visible]  # (v, t)
    if kind == "zero":
        base = torch.zeros_like(probe.x)
    elif kind == "mean":
        base = seen.mean(0).expand_as(probe.x)
    elif kind == "noise":
        gen = torch.Generator().manual_seed(seed)
        base = torch.randn(probe.x.shape, generator=gen) * seen.std()
    else:
        raise ValueError(f"baseline {kind!r} is not one of {BASELINES}")
    return torch.where(vis, base, probe.x)


@dataclass
class IGResult:
    baseline: str
    attr: torch.Tensor  # (n, l, t) attributions per sample
    attr_freq: torch.Tensor  # (n, l, f) the same integral attributed per rFFT bin of each window
    delta: torch.Tensor  # (n,) Captum's convergence delta: sum(attr) - (score(x) - score(b))
    score_x: torch.Tensor  # (n,)
    score_b: torch.Tensor  # (n,)


def spectral_attribution(x: torch.Tensor, base: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """(n, l, f) IG per rFFT bin from the path-integrated gradient `grad` (n, l, t).

    The straight path from baseline to input is the same path in rFFT coordinates (x = irfft(X)
    is linear), so IG there is (X - X_b) * irfft^T(grad), real and imaginary parts summed per
    bin; its sum over bins equals the sum of the time-domain attributions.
    """
    t = x.shape[-1]
    spec = torch.view_as_real(torch.fft.rfft((x - base).double(), dim=-1))  # (n, l, f, 2)
    coef = torch.zeros_like(spec, requires_grad=True)
    with torch.enable_grad():
        back = torch.fft.irfft(torch.complex(coef[..., 0], coef[..., 1]), n=t, dim=-1)  # (n, l, t)
        (g,) = torch.autograd.grad((back * grad.double()).sum(), coef)  # irfft^T(grad)
    return (spec * g).sum(-1)


def integrated_gradients(
    subject: Subject, probe: ProbeSet, baseline: str, cfg: AttributionConfig, *, bar: bool = False
) -> IGResult:
    """IG of every probe sequence against one baseline, per sample and per frequency bin."""
    from captum.attr import IntegratedGradients

    dev = subject.device
    base = make_baseline(baseline, probe, cfg.seed)
    ig = IntegratedGradients(
        subject.score, multiply_by_inputs=False
    )  # the path-integrated gradient
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("attr", "freq", "delta", "x", "b")}
    with reference_path(subject.module):
        for sl in tqdm(
            list(probe.slices(cfg.batch_size)), desc=f"IG {baseline}", disable=not bar, leave=False
        ):
            args = tuple(to_device(v, dev) for v in probe.forward_args(sl))
            x_in, b_in = probe.x[sl].to(dev), base[sl].to(dev)
            grad = ig.attribute(
                x_in,
                baselines=b_in,
                additional_forward_args=args,
                n_steps=cfg.n_steps,
                internal_batch_size=cfg.internal_batch_size,
            )
            attr = (x_in - b_in) * grad
            parts["delta"].append(
                ig.compute_convergence_delta(attr, b_in, x_in, additional_forward_args=args)
                .double()
                .cpu()
            )
            with torch.no_grad():
                parts["x"].append(subject.score(x_in, *args).double().cpu())
                parts["b"].append(subject.score(b_in, *args).double().cpu())
            parts["attr"].append(attr.detach().double().cpu())
            parts["freq"].append(spectral_attribution(x_in, b_in, grad.detach()).cpu())
    cat = {k: torch.cat(v) for k, v in parts.items()}
    return IGResult(baseline, cat["attr"], cat["freq"], cat["delta"], cat["x"], cat["b"])


# ----------------------------------------------------------------------------- profiles


def _share(frame: pl.DataFrame) -> pl.DataFrame:
    total = frame["importance"].sum()
    return frame.with_columns(share=pl.col("importance") / total if total > 0 else pl.lit(0.0))


def profiles(
    attr: torch.Tensor, probe: ProbeSet, cfg: AttributionConfig
) -> dict[str, pl.DataFrame]:
    """Per-channel, per-window-bin and per-time-bin mean |attribution| (and share of the total)."""
    a = attr.abs() * probe.visible.unsqueeze(-1)  # (n, l, t)
    per_seq = a.sum((1, 2)).numpy()  # (n,)
    chan = (
        pl.DataFrame({"channel": probe.channels, "v": per_seq})
        .group_by("channel")
        .agg(importance=pl.col("v").mean(), n_sequences=pl.len())
        .sort("channel")
    )
    per_pos, vis = a.sum(2), probe.visible  # (n, l)
    win = [
        {
            "window": bin_label(s, e),
            "start": s,
            "importance": float(per_pos[:, s:e].sum() / vis[:, s:e].sum().clamp(min=1)),
        }
        for s, e in window_bins(a.shape[1], cfg.max_window_bins)
    ]
    per_t, n_vis = a.sum((0, 1)), vis.sum().clamp(min=1)  # (t,)
    tim = [
        {"time_bin": bin_label(s, e), "start": s, "importance": float(per_t[s:e].mean() / n_vis)}
        for s, e in time_bins(a.shape[2], cfg.n_time_bins)
    ]
    return {
        "channel": _share(chan),
        "window": _share(pl.DataFrame(win)),
        "time": _share(pl.DataFrame(tim)),
    }


def band_profile(
    attr_f: torch.Tensor, probe: ProbeSet, sfreq: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per band: mean |attribution| per rfft bin in the band, per frequency bin)."""
    t = probe.x.shape[-1]
    vis = probe.visible
    per_f = (attr_f.abs() * vis.unsqueeze(-1)).sum((0, 1)) / vis.sum().clamp(min=1)  # (f,)
    freqs = np.fft.rfftfreq(t, 1.0 / sfreq)
    per_freq = pl.DataFrame({"freq_hz": freqs, "importance": per_f.numpy()})
    named = bands(sfreq)
    rows = []
    for k, (name, band) in enumerate(named.items()):
        sel = band_of(freqs, band, k == len(named) - 1)
        if sel.any():
            rows.append(
                {
                    "band": name,
                    "low_hz": band[0],
                    "high_hz": band[1],
                    "n_bins": int(sel.sum()),
                    "importance": float(per_f.numpy()[sel].mean()),
                }
            )
    return _share(pl.DataFrame(rows)), per_freq


def _consensus(frames: list[pl.DataFrame], key: str) -> pl.DataFrame:
    """Mean share over baselines (each baseline's profile normalised to sum 1)."""
    wide = frames[0].select(key)
    for i, f in enumerate(frames):
        wide = wide.join(
            f.select(key, pl.col("share").alias(f"share_{i}")),
            on=key,
            how="left",
            maintain_order="left",
        )
    cols = [c for c in wide.columns if c.startswith("share_")]
    return wide.with_columns(importance=pl.mean_horizontal(cols)).drop(cols).pipe(_share)


# ----------------------------------------------------------------------------- layer attribution


def layer_profile(subject: Subject, probe: ProbeSet, cfg: AttributionConfig) -> pl.DataFrame | None:
    """Mean attribution per window position bin of every Mamba-2 conv1d output (None: no mixers)."""
    from captum.attr import LayerGradCam, LayerIntegratedGradients

    mixers = [(n, m) for n, m in subject.model.named_modules() if isinstance(m, EEGMamba2)]
    if not mixers or cfg.layer_method == "none":
        return None
    dev, l = subject.device, probe.pad_mask.shape[1]
    rows = []
    with reference_path(subject.module):
        for name, mixer in mixers:
            total = torch.zeros(l, dtype=torch.float64)
            for sl in probe.slices(cfg.batch_size):
                args = tuple(to_device(v, dev) for v in probe.forward_args(sl))
                x = probe.x[sl].to(dev)
                if cfg.layer_method == "gradcam":
                    a = LayerGradCam(subject.score, mixer.conv1d).attribute(
                        x, additional_forward_args=args
                    )[:, 0]
                else:
                    a = (
                        LayerIntegratedGradients(subject.score, mixer.conv1d)
                        .attribute(
                            x,
                            baselines=torch.zeros_like(x),
                            additional_forward_args=args,
                            n_steps=cfg.n_steps,
                            internal_batch_size=cfg.internal_batch_size,
                        )
                        .sum(1)
                    )
                a = a[:, :l].detach().double().cpu()  # (b, l): the causal part of the conv output
                if name.endswith("mixer_rev"):  # it saw each sequence reversed: map back
                    lengths = (~probe.pad_mask[sl]).sum(1)
                    a = reverse_real(a.unsqueeze(-1), reversal_index(lengths, l)).squeeze(-1)
                total += (a * probe.visible[sl]).sum(0)
            counts = probe.visible.sum(0).double().clamp(min=1)
            for s, e in window_bins(l, cfg.max_window_bins):
                rows.append(
                    {
                        "layer": f"{name}.conv1d",
                        "window": bin_label(s, e),
                        "start": s,
                        "attribution": float(total[s:e].sum() / counts[s:e].sum()),
                    }
                )
    return pl.DataFrame(rows)


# ----------------------------------------------------------------------------- the section


def rank_agreement(a: pl.DataFrame, b: pl.DataFrame, key: str) -> float:
    """Spearman correlation of the `importance` columns of two profiles joined on `key`
    (NaN with fewer than 3 shared units or a constant profile)."""
    from scipy.stats import spearmanr

    j = a.select(key, "importance").join(b.select(key, pl.col("importance").alias("other")), on=key)
    if j.height < 3 or j["importance"].n_unique() < 2 or j["other"].n_unique() < 2:
        return math.nan
    return float(spearmanr(j["importance"].to_numpy(), j["other"].to_numpy()).statistic)


def attribution_section(
    subject: Subject,
    probe: ProbeSet,
    sfreq: float,
    cfg: AttributionConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    bar: bool = False,
) -> Section:
    """IG under every baseline, its profiles, the band profile and the conv1d layer attribution;
    `progress` is called with "IG <baseline>" as each baseline starts (notebook progress bars)."""
    cfg = cfg or AttributionConfig()
    per: dict[str, dict[str, pl.DataFrame]] = {}
    complete, numbers = [], {}
    band_frames, freq = [], None
    for b in cfg.baselines:
        if progress is not None:
            progress(f"IG {b}")
        res = integrated_gradients(subject, probe, b, cfg, bar=bar)
        per[b] = profiles(res.attr, probe, cfg)
        bp, freq = band_profile(res.attr_freq, probe, sfreq)
        band_frames.append(bp)
        diff = (res.score_x - res.score_b).abs()
        gap = float(res.delta.abs().max() / diff.mean().clamp(min=1e-12))
        complete.append(
            {
                "baseline": b,
                "mean_abs_score_change": float(diff.mean()),
                "mean_abs_delta": float(res.delta.abs().mean()),
                "max_abs_delta": float(res.delta.abs().max()),
                "relative_gap": gap,
            }
        )
        numbers[f"completeness_gap_{b}"] = gap
    tables = {
        f"per_{k}": _consensus([per[b][k] for b in cfg.baselines], key)
        for k, key in (("channel", "channel"), ("window", "window"), ("time", "time_bin"))
    }
    tables["completeness"] = pl.DataFrame(complete)
    tables["per_band"] = _consensus(band_frames, "band")
    tables["per_frequency"] = freq
    layer = layer_profile(subject, probe, cfg)
    if layer is not None:
        tables["conv1d_layers"] = layer
    ch = tables["per_channel"].sort("importance", descending=True)
    numbers |= {
        "top_channel": ch["channel"][0],
        "top_channel_share": float(ch["share"][0]),
        "n_steps": cfg.n_steps,
        "baselines": ",".join(cfg.baselines),
    }
    numbers["top_band"] = tables["per_band"].sort("importance", descending=True)["band"][0]
    if len(cfg.baselines) >= 2:
        b0, b1 = cfg.baselines[:2]
        numbers[f"channel_rank_agreement_{b0}_{b1}"] = rank_agreement(
            per[b0]["channel"], per[b1]["channel"], "channel"
        )
    notes = [
        (
            f"Integrated Gradients ({cfg.n_steps} steps) of "
            f"{'the logit' if subject.kind == 'classifier' else 'minus the masked-window MSE'}; "
            "importance = mean |attribution| (per sequence for channels, per visible window for "
            "window bins, "
            "per sample for time bins, per rFFT bin for bands), averaged over baselines as shares."
        )
    ]
    return Section(
        "attributions",
        "Attributions (Integrated Gradients)",
        numbers,
        tables,
        _findings(numbers, tables, cfg),
        notes,
    )


def _findings(
    numbers: dict, tables: dict[str, pl.DataFrame], cfg: AttributionConfig
) -> list[Finding]:
    out = []
    bad = [b for b in cfg.baselines if numbers[f"completeness_gap_{b}"] > COMPLETENESS_WARN]
    if bad:
        out.append(
            Finding(
                "warn",
                f"IG completeness gap above {COMPLETENESS_WARN:.0%} for baseline(s) "
                f"{', '.join(bad)}: "
                "the attributions do not add up to the score change.",
                f"Raise n_steps (now {cfg.n_steps}) until Captum's convergence delta is small.",
            )
        )
    if numbers["top_channel_share"] > ONE_CHANNEL_SHARE and tables["per_channel"].height > 2:
        out.append(
            Finding(
                "info",
                f"Channel {numbers['top_channel']} carries {numbers['top_channel_share']:.0%} of "
                "the "
                "attribution: the model relies on one channel.",
                "Check whether that is plausible (the label's topography) or an artifact of that "
                "electrode (data-quality checks per channel).",
            )
        )
    agree = next(
        (v for k, v in numbers.items() if k.startswith("channel_rank_agreement")), math.nan
    )
    if agree < 0.5 and tables["per_channel"].height >= MIN_RANKED:
        out.append(
            Finding(
                "warn",
                f"Baselines disagree on the channel ranking (Spearman {agree:.2f}).",
                "Trust only rankings that survive the baseline choice; compare with the ablation "
                "ranking.",
            )
        )
    if numbers.get("top_band") == "high":
        out.append(
            Finding(
                "warn",
                "The most important frequencies lie above the gamma band (> 45 Hz): the model "
                "reads line noise or muscle activity.",
                "Notch/low-pass at ingest (--notch, --h-freq) and retrain; check line-noise "
                "checks.",
            )
        )
    return out


def attribution_charts(section: Section) -> dict[str, Any]:
    import altair as alt

    t = section.tables
    bar = lambda name, key, title: (
        alt.Chart(t[name], title=title)
        .mark_bar()
        .encode(x=alt.X(f"{key}:N", sort=None), y="share:Q", tooltip=[key, "importance", "share"])
    )
    out = {
        "per_channel": bar("per_channel", "channel", "IG importance per channel (share)"),
        "per_window": bar("per_window", "window", "IG importance per window position"),
        "per_time": bar("per_time", "time_bin", "IG importance per time bin within a window"),
    }
    out["per_band"] = bar("per_band", "band", "IG importance per frequency band (per bin)")
    out["per_frequency"] = (
        alt.Chart(t["per_frequency"], title="IG importance per frequency")
        .mark_line()
        .encode(x="freq_hz:Q", y="importance:Q")
    )
    if "conv1d_layers" in t:
        out["conv1d_layers"] = (
            alt.Chart(t["conv1d_layers"], title="Layer attribution on each Mamba-2 conv1d")
            .mark_rect()
            .encode(
                x=alt.X("window:N", sort=None),
                y="layer:N",
                color=alt.Color("attribution:Q", scale=alt.Scale(scheme="redblue", domainMid=0)),
                tooltip=["layer", "window", "attribution"],
            )
        )
    return out
