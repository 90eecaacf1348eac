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
SPLIT_ORDER = ("train", "val", "test")


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


def label_chart(labels: pl.DataFrame) -> alt.FacetChart | None:
    """Recordings per label value and split, one panel per label.

    Grouped bars need a width per bar (`alt.Step`): in a facet, a fixed panel width split
    over values x splits drew hairline bars."""
    if not labels.height:
        return None
    counts = (
        labels.group_by("label", "split", "value").len("recordings").sort("label", "split", "value")
    )
    splits = list(dict.fromkeys(s for s in SPLIT_ORDER if s in set(counts["split"])))
    splits += sorted(set(counts["split"]) - set(splits))
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("value:N", title="value", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("split:N", sort=splits),
            y=alt.Y("recordings:Q", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("split:N", sort=splits),
            tooltip=["label", "split", "value", "recordings"],
        )
        .properties(width=alt.Step(18), height=160)
        .facet(column=alt.Column("label:N", title="label distribution per split"))
        .resolve_scale(x="independent")
    )


def channel_chart(stats: pl.DataFrame, column: str = "robust_std_uv") -> alt.LayerChart:
    """One tick per file and the median (dot) of one statistic, per channel, e.g. robust
    std in µV.

    Ticks, not boxes: a box of files that agree is flat, so beside a channel that differs
    (the blink-laden FP1 and FP2 in `mean_uv`) most channels showed no box at all."""
    data = stats.select("file", "channel", column).filter(pl.col(column).is_finite())
    medians = data.group_by("channel").agg(pl.col(column).median())
    x = alt.X("channel:N", sort=list(dict.fromkeys(data["channel"].to_list())))
    y = alt.Y(f"{column}:Q", title=column, scale=alt.Scale(zero=False))
    ticks = (
        alt.Chart(data)
        .mark_tick(opacity=0.6, thickness=2)
        .encode(x=x, y=y, tooltip=["file", "channel", column])
    )
    dots = (
        alt.Chart(medians)
        .mark_point(filled=True, color="black", size=30)
        .encode(x=x, y=y, tooltip=["channel", alt.Tooltip(f"{column}:Q", title=f"median {column}")])
    )
    return (ticks + dots).properties(
        title=f"{column} per channel (a tick per file, the dot: median)", height=220
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
    """A scalp map of per-channel numbers, its colours spanning the values' own range.

    Signed values get a diverging map centred on 0, one-signed ones a sequential map from
    their minimum to their maximum (MNE's default starts one-signed maps at 0, which paints
    a head whose channels differ by 10% one colour). With fewer than `MIN_INTERPOLATED`
    placed channels (a 4-channel Muse or tiny model) nothing is interpolated: each
    electrode is a coloured dot, since a surface through four points shows mostly the
    interpolation. Otherwise mne.viz.plot_topomap on the unit-sphere positions scaled to an
    MNE-sized head (95 mm).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    chans = [c for c in values if c in positions and np.isfinite(values[c])]
    if len(chans) < 3:
        raise ValueError(
            f"topomap needs at least 3 channels with positions and finite values, got {chans}"
        )
    data = np.array([values[c] for c in chans], dtype=float)
    cmap, vlim = _colour_scale(data)
    fig, ax = plt.subplots(figsize=(3.4, 2.9))
    if len(chans) < MIN_INTERPOLATED:
        im = _sensor_dots(ax, data, [positions[c] for c in chans], chans, cmap, vlim)
    else:
        import mne

        montage = mne.channels.make_dig_montage(
            ch_pos={c: np.asarray(positions[c], float) * 0.095 for c in chans}, coord_frame="head"
        )
        info = mne.create_info(chans, sfreq=100.0, ch_types="eeg")
        info.set_montage(montage)
        im, _ = mne.viz.plot_topomap(
            data,
            info,
            axes=ax,
            show=False,
            names=chans,
            cmap=cmap,
            vlim=vlim,
            sphere=(0.0, 0.0, 0.0, 0.095),
        )
    fig.colorbar(im, ax=ax, shrink=0.7, label=unit)
    ax.set_title(title, fontsize=9)
    return fig


MIN_INTERPOLATED = 8  # fewer placed channels: dots, no interpolated surface


def _colour_scale(data: np.ndarray) -> tuple[str, tuple[float, float]]:
    """(colormap, limits): diverging and symmetric about 0 for signed data, else
    sequential over the data's own range."""
    lo, hi = float(data.min()), float(data.max())
    if lo < 0 < hi:
        m = max(-lo, hi)
        return "RdBu_r", (-m, m)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):  # one value everywhere: a range around it
        pad = 0.05 * abs(hi) or 1.0
        lo, hi = lo - pad, hi + pad
    return "viridis", (lo, hi)


def _sensor_dots(ax, data, xyz, names, cmap, vlim):
    """Electrodes as coloured dots on a head outline (azimuthal equidistant projection of
    the unit-sphere positions, nose up; the head circle is the sphere's equator)."""
    from matplotlib.patches import Circle, Polygon

    pts = np.asarray(xyz, dtype=float)
    radius = np.arccos(np.clip(pts[:, 2], -1.0, 1.0)) / (np.pi / 2)  # 1 at the equator
    angle = np.arctan2(pts[:, 1], pts[:, 0])
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    ax.add_patch(Circle((0, 0), 1.0, fill=False, lw=1))
    ax.add_patch(Polygon([(-0.12, 0.99), (0, 1.12), (0.12, 0.99)], closed=False, fill=False, lw=1))
    im = ax.scatter(
        x,
        y,
        c=data,
        cmap=cmap,
        vmin=vlim[0],
        vmax=vlim[1],
        s=160,
        edgecolors="black",
        linewidths=0.6,
        zorder=3,
    )
    for xi, yi, name in zip(x, y, names, strict=True):
        ax.annotate(
            name, (xi, yi), xytext=(0, -13), textcoords="offset points", ha="center", fontsize=7
        )
    lim = max(1.2, float(np.abs(np.r_[x, y]).max()) + 0.2)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axis("off")
    return im
