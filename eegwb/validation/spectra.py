"""Spectral and signal-shape measures for data quality: Welch spectra, band powers,
line-noise ratio, multiple-testing correction and overlap between consecutive windows.

Plain functions on (m, t) arrays of windows (µV); NaN/Inf windows give NaN rows rather
than errors, so a corrupt window is reported by the checks, never a crash.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.stats

BANDS_HZ: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),  # stops below 50 Hz so mains noise does not count as gamma
}


def welch_psd(
    x: np.ndarray, sfreq: float, seconds_per_segment: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """x: (m, t) µV -> (freqs (f,) Hz, psd (m, f) µV²/Hz); rows with NaN/Inf are NaN.

    2-s Hann segments (0.5 Hz resolution) unless the window is shorter."""
    x = np.asarray(x, dtype=np.float64)
    nperseg = int(min(x.shape[1], max(8, round(seconds_per_segment * sfreq))))
    finite = np.isfinite(x).all(axis=1)
    freqs, psd = scipy.signal.welch(
        np.where(finite[:, None], x, 0.0), fs=sfreq, nperseg=nperseg, axis=1
    )
    psd[~finite] = np.nan
    return freqs, psd


def band_powers(
    freqs: np.ndarray, psd: np.ndarray, bands: dict[str, tuple[float, float]] = BANDS_HZ
) -> np.ndarray:
    """psd (m, f) -> (m, n_bands) µV² per band (trapezoid); NaN where a band is above Nyquist."""
    out = np.full((psd.shape[0], len(bands)), np.nan)
    for k, (lo, hi) in enumerate(bands.values()):
        sel = (freqs >= lo) & (freqs <= hi)
        if sel.sum() >= 2:
            out[:, k] = np.trapezoid(psd[:, sel], freqs[sel], axis=1)
    return out


def line_noise_ratio(freqs: np.ndarray, psd: np.ndarray, line_hz: float) -> np.ndarray:
    """psd (m, f) -> (m,) peak PSD within ±1 Hz of `line_hz` over the median PSD 2-6 Hz
    away on both sides (1 = no peak; 10 = a 10 dB line). NaN when 6 Hz above the line
    is past Nyquist."""
    if line_hz + 6.0 > freqs[-1]:
        return np.full(psd.shape[0], np.nan)
    d = np.abs(freqs - line_hz)
    peak = psd[:, d <= 1.0].max(axis=1)
    ref = np.median(psd[:, (d >= 2.0) & (d <= 6.0)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return peak / ref


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN p-values stay NaN and do not count as tests)."""
    p = np.asarray(p, dtype=float)
    q = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = scipy.stats.false_discovery_control(p[ok], method="bh")
    return q


def consecutive_overlap(
    a: np.ndarray, b: np.ndarray, min_overlap: float = 0.125
) -> tuple[np.ndarray, np.ndarray]:
    """How much of window b's start repeats window a's end, for pairs of consecutive windows.

    a, b: (m, t) µV. For every shift s, correlates a[s:] with b[:t-s] (at least
    min_overlap * t samples) on first differences, so slow drift cannot look like shared
    samples. Returns (best correlation (m,), overlap fraction (m,) = (t - s_best) / t);
    NaN for pairs with NaN/Inf or constant windows.
    """
    with np.errstate(invalid="ignore"):  # inf - inf in a corrupt window: flagged below
        a = np.diff(np.asarray(a, np.float64), axis=1)
        b = np.diff(np.asarray(b, np.float64), axis=1)
    m, t = a.shape
    n_min = max(8, int(np.ceil(min_overlap * t)))
    if t < n_min + 1:
        return np.full(m, np.nan), np.full(m, np.nan)
    bad = ~(np.isfinite(a).all(1) & np.isfinite(b).all(1))
    a, b = np.where(bad[:, None], 0.0, a), np.where(bad[:, None], 0.0, b)
    size = 2 * t
    cross = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)[
        :, :t
    ]  # (m, t): Σ a[k+s] b[k]
    shifts = np.arange(1, t - n_min + 1)
    n = (t - shifts).astype(float)  # overlap length per shift
    ca, ca2 = np.cumsum(a, 1), np.cumsum(a * a, 1)
    cb, cb2 = np.cumsum(b, 1), np.cumsum(b * b, 1)
    sa = ca[:, -1:] - ca[:, shifts - 1]  # Σ a[s:]
    sa2 = ca2[:, -1:] - ca2[:, shifts - 1]
    sb, sb2 = cb[:, t - shifts - 1], cb2[:, t - shifts - 1]  # Σ b[:t-s]
    cov = cross[:, shifts] - sa * sb / n
    var = (sa2 - sa**2 / n) * (sb2 - sb**2 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(var > 1e-12, cov / np.sqrt(np.maximum(var, 1e-300)), np.nan)
    all_nan = np.isnan(corr).all(axis=1) | bad
    best = np.nanargmax(np.where(all_nan[:, None], 0.0, np.nan_to_num(corr, nan=-np.inf)), axis=1)
    best_corr = corr[np.arange(m), best]
    frac = (t + 1 - shifts[best]) / (t + 1)  # windows had t + 1 samples before differencing
    best_corr[all_nan], frac[all_nan] = np.nan, np.nan
    return best_corr, frac
