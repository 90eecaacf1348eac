"""Data-quality checks over the splits of a dataset: is the data sound, and do the splits
look alike?

Each dataset file is read once (only its selected rows). Per file and channel: mean/std,
NaN/Inf counts, flat windows, robust-z outliers, line-noise ratio; per file: overlap
between consecutive windows and the electrode positions. Per split: label distribution,
Welch spectra and band powers (the unit of a between-split test is the recording, since
windows of one person are not independent). Every check returns a `Check` (pass/warn/fail
with its numbers); `QualityReport` also holds the tables charts are drawn from.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from eegwb.data.layout import channel_array, channel_columns
from eegwb.data.montage import MontageError, electrode_positions
from eegwb.data.splits import SplitData, read_rows
from eegwb.validation.checks import Check, Status, rows_check
from eegwb.validation.spectra import (
    BANDS_HZ,
    band_powers,
    consecutive_overlap,
    line_noise_ratio,
    welch_psd,
)
from eegwb.validation.split_compare import band_shift, label_checks, labels_table

log = logging.getLogger(__name__)


@dataclass
class QualityConfig:
    labels: list[str] | None = None  # label names to compare across splits; None = every one found
    max_windows_per_file: int = 64  # evenly spaced windows per file for spectra and outliers
    flat_std_uv: float = 0.01  # a window with std below this is flat (below an EDF quantum)
    outlier_z: float = 10.0  # |x - median| / (1.4826 MAD) beyond this is an extreme sample
    outlier_max_fraction: float = 1e-3  # a channel with more extreme samples than this warns
    line_noise_max_ratio: float = 10.0  # 10 dB above the neighbouring spectrum warns
    alpha: float = 0.01  # for label and band-power tests (band powers after BH correction)
    overlap_corr: float = 0.999  # consecutive windows sharing samples correlate this well
    flat_status: Status = "warn"  # a flat stretch loses data; the loader refuses flat channels
    nonfinite_status: Status = "fail"  # NaN/Inf reach the loss as NaN

    def __post_init__(self) -> None:
        if self.max_windows_per_file < 2:
            raise ValueError("QualityConfig.max_windows_per_file must be >= 2 (consecutive pairs)")
        if not 0 < self.alpha < 1:
            raise ValueError(f"QualityConfig.alpha {self.alpha} must be in (0, 1)")


@dataclass
class QualityReport:
    checks: list[Check]
    channel_stats: pl.DataFrame  # one row per (root, file, channel)
    spectra: pl.DataFrame  # split, channel, freq_hz, psd_uv2_per_hz (mean over windows)
    band_power: pl.DataFrame  # split, file, channel, band, log10_uv2 (median over windows)
    band_shift: pl.DataFrame  # split_a, split_b, channel, band, ks, p, q
    labels: pl.DataFrame  # split, file, participant, label, value
    files: pl.DataFrame = field(default_factory=pl.DataFrame)  # per file: overlap, positions


def _spaced(n: int, k: int) -> np.ndarray:
    return (
        np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int)) if n else np.zeros(0, int)
    )


def _channel_row(x: np.ndarray, cfg: QualityConfig, spaced: np.ndarray) -> dict[str, object]:
    """Stats of one channel's windows x (n, t) µV."""
    finite = np.isfinite(x)
    vals = x[finite].astype(np.float64)
    win_ok = finite.all(axis=1)
    with np.errstate(invalid="ignore"):
        win_std = np.where(win_ok, x.std(axis=1, dtype=np.float64), np.nan)
    flat_rows = np.flatnonzero(win_std < cfg.flat_std_uv)
    sample = x[spaced][np.isfinite(x[spaced])].astype(np.float64)
    if sample.size:
        # Median and MAD from <= 16k evenly strided samples (two partitions per channel
        # dominate otherwise); the outlier fraction counts every sample of the spaced windows.
        sub = sample[:: max(1, sample.size // 16384)]
        med = float(np.median(sub))
        mad = float(np.median(np.abs(sub - med))) * 1.4826
        out_frac = float((np.abs(sample - med) > cfg.outlier_z * mad).mean()) if mad > 0 else 0.0
    else:
        med, mad, out_frac = np.nan, np.nan, np.nan
    bad_rows = np.flatnonzero(~win_ok)
    return {
        "mean_uv": float(vals.mean()) if vals.size else np.nan,
        "std_uv": float(vals.std()) if vals.size else np.nan,
        "median_uv": med,
        "robust_std_uv": mad,
        "n_nan": int(np.isnan(x).sum()),
        "n_inf": int(np.isinf(x).sum()),
        "first_bad_row": int(bad_rows[0]) if len(bad_rows) else None,
        "n_flat_windows": len(flat_rows),
        "first_flat_row": int(flat_rows[0]) if len(flat_rows) else None,
        "outlier_fraction": out_frac,
    }


def _file_pass(
    root: Path, file: str, split_rows: dict[str, np.ndarray], cfg: QualityConfig, acc: dict
) -> None:
    """Read the rows of one file that any split uses; append to the accumulators in `acc`."""
    all_rows = np.unique(np.concatenate(list(split_rows.values())))
    meta, table = read_rows(root / file, all_rows)
    channels = channel_columns(table.schema)
    starts = table.column("window_start").to_numpy()
    n, k = len(all_rows), cfg.max_windows_per_file
    file_pos = _spaced(n, k)  # positions into all_rows
    split_pos = {s: np.searchsorted(all_rows, r)[_spaced(len(r), k)] for s, r in split_rows.items()}
    need = np.unique(np.concatenate([file_pos, *split_pos.values()]))
    # Consecutive pairs (adjacent rows, later start) for overlap detection.
    pairs = np.asarray(
        [i for i in file_pos if i + 1 < n and starts[i + 1] > starts[i]][: max(1, k // 4)], int
    )
    x = np.stack([channel_array(table, ch) for ch in channels])  # (c, n, t)
    c_, t = x.shape[0], x.shape[2]
    freqs, psd = welch_psd(x[:, need].reshape(-1, t), meta.sfreq)  # one call per file
    psd = psd.reshape(c_, len(need), -1)  # (c, w, f)
    with np.errstate(divide="ignore", invalid="ignore"):
        logbp = np.log10(band_powers(freqs, psd.reshape(-1, psd.shape[-1]))).reshape(
            c_, len(need), -1
        )
    at = np.searchsorted(need, file_pos)
    with warnings.catch_warnings():  # all-NaN channels (every window corrupt) give NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_psd = np.nanmean(psd[:, at], axis=1)  # (c, f)
        split_bp = {
            sp: np.nanmedian(logbp[:, np.searchsorted(need, pos)], axis=1)
            for sp, pos in split_pos.items()
        }
    for ci, ch in enumerate(channels):
        row = {"root": str(root), "file": file, "channel": ch} | _channel_row(x[ci], cfg, file_pos)
        for hz in (50, 60):
            row[f"line_ratio_{hz}"] = float(
                line_noise_ratio(freqs, mean_psd[ci : ci + 1], float(hz))[0]
            )
        acc["channel_stats"].append(row)
        for sp, pos in split_pos.items():
            acc["psd"].setdefault((sp, ch, float(meta.sfreq)), []).append(
                (freqs, psd[ci, np.searchsorted(need, pos)])
            )
            for band, v in zip(BANDS_HZ, split_bp[sp][ci], strict=True):
                acc["band_power"].append(
                    {"split": sp, "file": file, "channel": ch, "band": band, "log10_uv2": float(v)}
                )
    # Shared samples between consecutive windows: four channels are plenty to see them.
    c = np.zeros(0)
    overlap_frac = np.zeros(0)
    if len(pairs):
        c, overlap_frac = consecutive_overlap(
            x[:4, pairs].reshape(-1, t), x[:4, pairs + 1].reshape(-1, t)
        )
    diffs = np.diff(np.sort(starts))
    hit = c >= cfg.overlap_corr
    acc["files"].append(
        {
            "root": str(root),
            "file": file,
            "sfreq": float(meta.sfreq),
            "window_samples": meta.window_samples,
            "declared_hop": int(np.median(diffs)) if len(diffs) else None,
            "declared_overlap": bool(len(diffs) and np.median(diffs) < meta.window_samples),
            "content_overlap": bool(len(c) and hit.mean() > 0.5),
            "overlap_fraction": float(np.median(np.asarray(overlap_frac)[hit]))
            if hit.any()
            else 0.0,
            "montage": meta.montage,
            "positions": json.dumps(meta.channel_positions),
        }
    )


def channel_checks(stats: pl.DataFrame, cfg: QualityConfig) -> list[Check]:
    """NaN/Inf, flat windows, outliers, normalisation and line noise, from channel_stats."""
    ids = ["file", "channel"]
    nonfinite = stats.filter((pl.col("n_nan") + pl.col("n_inf")) > 0)
    flat = stats.filter(pl.col("n_flat_windows") > 0)
    outliers = stats.filter(pl.col("outlier_fraction") > cfg.outlier_max_fraction)
    line = stats.with_columns(
        pl.max_horizontal("line_ratio_50", "line_ratio_60").alias("line_ratio")
    )
    noisy = line.filter(pl.col("line_ratio") > cfg.line_noise_max_ratio).sort(
        "line_ratio", descending=True
    )
    checks = [
        rows_check(
            "quality/non_finite",
            nonfinite,
            cfg.nonfinite_status,
            "file-channels with NaN/Inf samples",
            [*ids, "n_nan", "n_inf", "first_bad_row"],
            n_nan=int(stats["n_nan"].sum()),
            n_inf=int(stats["n_inf"].sum()),
        ),
        rows_check(
            "quality/flat",
            flat,
            cfg.flat_status,
            f"file-channels with flat windows (std < {cfg.flat_std_uv} µV)",
            [*ids, "n_flat_windows", "first_flat_row"],
            n_flat_windows=int(stats["n_flat_windows"].sum()),
        ),
        rows_check(
            "quality/outliers",
            outliers,
            "warn",
            f"file-channels with > {cfg.outlier_max_fraction:.0e} of samples beyond robust z "
            f"{cfg.outlier_z}",
            [*ids, "outlier_fraction"],
            max_fraction=outliers["outlier_fraction"].max() if outliers.height else 0.0,
        ),
        rows_check(
            "quality/line_noise",
            noisy,
            "warn",
            f"file-channels with a 50/60 Hz line > {cfg.line_noise_max_ratio}x the neighbouring "
            "spectrum",
            [*ids, "line_ratio_50", "line_ratio_60"],
            max_ratio=line["line_ratio"].max(),
            median_ratio=line["line_ratio"].median(),
        ),
    ]
    checks.append(_normalisation_check(stats))
    return checks


def _normalisation_check(stats: pl.DataFrame) -> Check:
    """Overall scale: samples should look like µV EEG, channels of comparable scale."""
    per_ch = stats.group_by("channel").agg(
        pl.col("robust_std_uv").median(), pl.col("mean_uv").median()
    )
    live = per_ch.filter(pl.col("robust_std_uv") > 0)
    typical = float(live["robust_std_uv"].median()) if live.height else float("nan")
    spread = (
        float(live["robust_std_uv"].max() / live["robust_std_uv"].min())
        if live.height
        else float("nan")
    )
    numbers = {
        "median_robust_std_uv": typical,
        "channel_std_spread": spread,
        "median_mean_uv": float(per_ch["mean_uv"].median()) if per_ch.height else float("nan"),
    }
    problems = []
    if not 0.1 <= typical <= 1000:
        problems.append(f"typical robust std {typical:.3g} µV is not EEG-like in µV (0.1-1000)")
    if spread > 100:
        problems.append(f"channel scales differ {spread:.0f}x")
    summary = (
        "; ".join(problems)
        or f"typical robust std {typical:.3g} µV, channel scales within {spread:.1f}x"
    )
    examples = per_ch.sort("robust_std_uv").head(5).to_dicts() if problems else []
    return Check(
        "quality/normalisation", "warn" if problems else "pass", summary, numbers, examples
    )


def file_checks(files: pl.DataFrame, cfg: QualityConfig) -> list[Check]:
    """Overlap between consecutive windows, and montage coverage."""
    cols = ["file", "declared_hop", "window_samples", "overlap_fraction"]
    undeclared = files.filter(pl.col("content_overlap") & ~pl.col("declared_overlap"))
    declared = files.filter(pl.col("content_overlap") & pl.col("declared_overlap"))
    if undeclared.height:
        overlap = rows_check(
            "quality/window_overlap",
            undeclared,
            "fail",
            "files whose consecutive windows share samples although window_start says they do not",
            cols,
        )
    else:
        overlap = rows_check(
            "quality/window_overlap",
            declared,
            "warn",
            "files with overlapping windows (hop < window): split them by recording, never within",
            cols,
        )
    overlap.numbers["declared_overlap_files"] = int(files["declared_overlap"].sum())
    return [overlap, montage_check(files)]


def montage_check(files: pl.DataFrame) -> Check:
    """Electrode positions: on the unit sphere, distinct, known to the named montage, and
    the same channel set in every file."""

    problems: list[dict[str, object]] = []
    channel_sets = set()
    for file, montage, positions in files.select("file", "montage", "positions").iter_rows():
        pos = json.loads(positions)
        channel_sets.add(tuple(sorted(pos)))
        xyz = np.asarray(list(pos.values()), float).reshape(-1, 3)
        norms = np.linalg.norm(xyz, axis=1)
        off = [
            ch for ch, r in zip(pos, norms, strict=True) if not np.isfinite(r) or abs(r - 1) > 0.05
        ]
        if off:
            problems.append(
                {"file": file, "problem": "positions off the unit sphere", "channels": off[:5]}
            )
        d = np.linalg.norm(xyz[:, None] - xyz[None], axis=2) + np.eye(len(xyz)) * 9
        if (d < 1e-3).any():
            i, j = np.argwhere(d < 1e-3)[0]
            problems.append(
                {
                    "file": file,
                    "problem": "two channels share a position",
                    "channels": [list(pos)[i], list(pos)[j]],
                }
            )
        if montage != "custom":
            try:
                electrode_positions(list(pos))
            except MontageError as err:
                problems.append(
                    {
                        "file": file,
                        "problem": f"no standard position (montage {montage})",
                        "channels": err.unknown[:5],
                    }
                )
    if len(channel_sets) > 1:
        problems.append(
            {
                "file": "*",
                "problem": f"{len(channel_sets)} different channel sets across files",
                "channels": [],
            }
        )
    n = len(problems)
    summary = (
        f"{n} montage problems"
        if n
        else f"every channel has a distinct unit-sphere position ({len(files)} files)"
    )
    return Check("quality/montage", "warn" if n else "pass", summary, {"count": n}, problems[:5])


def _spectra_table(psd_acc: dict) -> pl.DataFrame:
    frames = []
    for (split, ch, _sfreq), parts in psd_acc.items():
        freqs = parts[0][0]
        stacked = np.concatenate([p for _, p in parts if len(p)], axis=0)
        mean = (
            np.nanmean(stacked, axis=0)
            if np.isfinite(stacked).any()
            else np.full(len(freqs), np.nan)
        )
        frames.append(
            pl.DataFrame({"split": split, "channel": ch, "freq_hz": freqs, "psd_uv2_per_hz": mean})
        )
    return pl.concat(frames) if frames else pl.DataFrame()


def run_quality(
    splits: Mapping[str, SplitData], cfg: QualityConfig | None = None, *, progress: bool = False
) -> QualityReport:
    """Every data-quality check over `splits` (one split is fine: no between-split tests)."""
    from tqdm.auto import tqdm

    cfg = cfg or QualityConfig()
    by_file: dict[tuple[Path, str], dict[str, list[np.ndarray]]] = {}
    for name, split in splits.items():
        sel = split.resolved()
        for file, start, end in sel.select("file", "row_start", "row_end").iter_rows():
            by_file.setdefault((split.root, file), {}).setdefault(name, []).append(
                np.arange(start, end)
            )
    acc: dict = {"channel_stats": [], "files": [], "psd": {}, "band_power": []}
    for (root, file), parts in tqdm(
        sorted(by_file.items()), desc="quality", unit="file", disable=not progress
    ):
        _file_pass(
            root, file, {s: np.unique(np.concatenate(r)) for s, r in parts.items()}, cfg, acc
        )
    stats = pl.DataFrame(acc["channel_stats"], infer_schema_length=None)
    files = pl.DataFrame(acc["files"], infer_schema_length=None)
    band_power = pl.DataFrame(
        acc["band_power"],
        schema={
            "split": pl.String,
            "file": pl.String,
            "channel": pl.String,
            "band": pl.String,
            "log10_uv2": pl.Float64,
        },
    )
    labels = labels_table(splits, cfg.labels)
    shift_df, shift_check = band_shift(band_power, cfg.alpha)
    checks = channel_checks(stats, cfg) + file_checks(files, cfg) + label_checks(labels, cfg.alpha)
    if len(splits) > 1:
        checks.append(shift_check)
    return QualityReport(
        checks, stats, _spectra_table(acc["psd"]), band_power, shift_df, labels, files
    )
