"""Charts of a validation report: Altair for tables, an MNE topomap for per-channel numbers.

Used by notebooks/02_validate_data.py; kept here so the notebook stays wiring and the
charts are tested.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import polars as pl

from eegwb.validation.checks import Check

STATUS_COLORS = {"pass": "#2e7d32", "warn": "#f9a825", "fail": "#c62828"}


def checks_frame(checks: Sequence[Check]) -> pl.DataFrame:
    """One row per check: status, name, level, count, summary, first example."""
    return pl.DataFrame(
        [
            {
                "status": c.status,
                "check": c.name,
                "level": c.level,
                "count": c.count,
                "summary": c.summary,
                "example": json.dumps(c.examples[0]) if c.examples else "",
            }
            for c in checks
        ],
        schema={
            "status": pl.String,
            "check": pl.String,
            "level": pl.Int64,
            "count": pl.Int64,
            "summary": pl.String,
            "example": pl.String,
        },
    )


def label_chart(labels: pl.DataFrame) -> alt.Chart | None:
    """Recordings per label value and split, one panel per label."""
    if not labels.height:
        return None
    counts = (
        labels.group_by("label", "split", "value").len("recordings").sort("label", "split", "value")
    )
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("value:N", title="value"),
            xOffset="split:N",
            y=alt.Y("recordings:Q"),
            color="split:N",
            tooltip=["label", "split", "value", "recordings"],
        )
        .properties(width=220, height=160)
        .facet(column=alt.Column("label:N", title="label distribution per split"))
        .resolve_scale(x="independent")
    )


def channel_chart(stats: pl.DataFrame, column: str = "robust_std_uv") -> alt.Chart:
    """Per-channel spread over files of one statistic (box plot), e.g. robust std in µV."""
    data = stats.select("file", "channel", column).filter(pl.col(column).is_finite())
    return (
        alt.Chart(data)
        .mark_boxplot(extent="min-max")
        .encode(
            x=alt.X("channel:N", sort=None),
            y=alt.Y(f"{column}:Q", title=column),
            tooltip=["file", "channel", column],
        )
        .properties(title=f"{column} per channel (one point per file)", height=220)
    )


def spectra_chart(
    spectra: pl.DataFrame, channels: Sequence[str] | None = None, max_hz: float | None = None
) -> alt.Chart:
    """Mean Welch spectrum per split (log scale), averaged over `channels` (all by default)."""
    data = spectra
    if channels:
        data = data.filter(pl.col("channel").is_in(list(channels)))
    if max_hz is not None:
        data = data.filter(pl.col("freq_hz") <= max_hz)
    data = (
        data.filter(
            pl.col("freq_hz") > 0,
            pl.col("psd_uv2_per_hz").is_finite(),
            pl.col("psd_uv2_per_hz") > 0,
        )
        .group_by("split", "freq_hz")
        .agg(pl.col("psd_uv2_per_hz").mean())
        .sort("split", "freq_hz")
    )
    return (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("freq_hz:Q", title="frequency (Hz)"),
            y=alt.Y("psd_uv2_per_hz:Q", scale=alt.Scale(type="log"), title="PSD (µV²/Hz)"),
            color="split:N",
            tooltip=["split", "freq_hz", "psd_uv2_per_hz"],
        )
        .properties(title="Power spectrum per split", height=260, width=520)
    )


def per_channel(stats: pl.DataFrame, column: str) -> dict[str, float]:
    """Median over files of one statistic, per channel."""
    med = stats.group_by("channel").agg(pl.col(column).filter(pl.col(column).is_finite()).median())
    return {ch: float(v) for ch, v in med.iter_rows() if v is not None}


def positions_of(files: pl.DataFrame) -> dict[str, list[float]]:
    """Electrode positions of every channel seen in any file (first file wins)."""
    out: dict[str, list[float]] = {}
    for positions in files["positions"].to_list():
        for ch, xyz in json.loads(positions).items():
            out.setdefault(ch, xyz)
    return out


def topomap_figure(
    values: Mapping[str, float],
    positions: Mapping[str, Sequence[float]],
    title: str = "",
    unit: str = "",
):
    """A scalp map of per-channel numbers (mne.viz.plot_topomap on an Info with the
    unit-sphere positions scaled to an MNE-sized head, 95 mm)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import mne

    chans = [c for c in values if c in positions and np.isfinite(values[c])]
    if len(chans) < 3:
        raise ValueError(
            f"topomap needs at least 3 channels with positions and finite values, got {chans}"
        )
    montage = mne.channels.make_dig_montage(
        ch_pos={c: np.asarray(positions[c], float) * 0.095 for c in chans}, coord_frame="head"
    )
    info = mne.create_info(chans, sfreq=100.0, ch_types="eeg")
    info.set_montage(montage)
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    im, _ = mne.viz.plot_topomap(
        np.array([values[c] for c in chans]),
        info,
        axes=ax,
        show=False,
        names=chans,
        sphere=(0.0, 0.0, 0.0, 0.095),
    )
    fig.colorbar(im, ax=ax, shrink=0.7, label=unit)
    ax.set_title(title)
    return fig
