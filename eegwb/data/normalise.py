"""Per-recording, per-channel normalisation statistics, computed once when a file is cached.

Robust z-score (the default): `(x - median) / (IQR / IQR_TO_SIGMA)`. Dividing the IQR by
1.349 (the IQR of a standard normal) makes the robust scale equal the standard deviation
on Gaussian data, so robust z and plain z agree on clean EEG; on EEG with blinks or
electrode pops the median and IQR barely move, where mean and std would.

Statistics use every finite sample of the channel in the recording (not just the
selected windows), so a split of a recording sees the same normalisation as the whole.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Normalisation = Literal["robust_z", "zscore", "none"]
NORMALISATIONS: tuple[str, ...] = ("robust_z", "zscore", "none")
IQR_TO_SIGMA = 1.3489795003921634  # IQR of N(0, 1): 2 * Phi^-1(0.75)
# A scale below this (µV) is a flat channel: dividing by it would blow noise up to inf.
FLAT_SCALE_UV = 1e-6
STAT_NAMES = ("median", "iqr", "mean", "std")


def channel_stats(windows: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Statistics of one channel and its non-finite windows.

    windows: (n_windows, window_samples) float32 µV.
    Returns ({median, iqr, mean, std} over finite samples, NaN when there are none;
    bad_rows (n_windows,) bool, True where a window holds a NaN or Inf).
    """
    finite = np.isfinite(windows)  # (n, t)
    bad_rows = ~finite.all(axis=1)
    values = windows[finite] if bad_rows.any() else windows.reshape(-1)
    if values.size == 0:
        return {name: float("nan") for name in STAT_NAMES}, bad_rows
    values = values.astype(np.float64, copy=False)
    q25, q50, q75 = np.percentile(values, [25.0, 50.0, 75.0])
    stats = {
        "median": float(q50),
        "iqr": float(q75 - q25),
        "mean": float(values.mean()),
        "std": float(values.std()),
    }
    return stats, bad_rows


def center_scale(
    stats: dict[str, np.ndarray], normalisation: Normalisation
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (center, scale) so that normalised = (x - center) / scale.

    stats: arrays (n_channels,) keyed by STAT_NAMES. Under "none" the result is (0, 1).
    A scale may come back flat or NaN; `is_flat` says which, and callers refuse those.
    """
    if normalisation == "robust_z":
        return np.asarray(stats["median"], np.float64), np.asarray(
            stats["iqr"], np.float64
        ) / IQR_TO_SIGMA
    if normalisation == "zscore":
        return np.asarray(stats["mean"], np.float64), np.asarray(stats["std"], np.float64)
    if normalisation == "none":
        n = len(stats["median"])
        return np.zeros(n, np.float64), np.ones(n, np.float64)
    raise ValueError(f"normalisation {normalisation!r} is not one of {NORMALISATIONS}")


def is_flat(scale: np.ndarray) -> np.ndarray:
    """True where a scale cannot be divided by (below FLAT_SCALE_UV, or NaN)."""
    scale = np.asarray(scale, np.float64)
    return ~(np.isfinite(scale) & (scale >= FLAT_SCALE_UV))
