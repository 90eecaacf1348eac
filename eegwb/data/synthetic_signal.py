"""The synthetic signal model: one participant-run as a continuous recording (µV).

Each recording is built from parts real scalp EEG has:

    background   1/f^1.7 noise from one source per electrode
    alpha        narrow-band rhythm at a per-participant peak (8.5-11.5 Hz), posterior topography
    beta         broad 15-25 Hz rhythm, central topography
    state        alpha and beta amplitude drift over minutes (exp of a smooth process), so a
                 masked window is predictable from its neighbours
    blinks       100 µV bumps (~0.2 s) at random times, frontal sites only
    drift        slow electrode drifts (0.005-0.05 Hz), independent per channel
    line noise   50 or 60 Hz sinusoid, per-channel amplitude
    sensor noise white, 0.5 µV

Neural parts are mixed across channels through exp(-d / 0.4), d the chord distance between
electrodes on the unit sphere (volume conduction), so neighbours share signal and channel
identity matters. Label-1 participants get `effect_band_hz` power multiplied by
(1 + effect_size) in `effect_channels` (an exact spectral gain on the whole recording).
Samples are quantised to 1/32 µV, like an EDF's 16-bit integers, which also keeps files small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eegwb.data.montage import MONTAGES
from eegwb.data.synthetic_config import SynthConfig, participant_ids, synth_rng

QUANTUM_UV = 1.0 / 32.0  # sample resolution; a power of two, so exact in float32


@dataclass(frozen=True)
class Participant:
    """Per-participant draws (recorded in the manifest)."""

    participant: str
    label: int
    alpha_peak_hz: float
    alpha_uv: float
    beta_peak_hz: float
    beta_uv: float
    background_uv: float
    blink_rate_per_min: float
    blink_uv: float
    line_noise_uv: float


def draw_participants(cfg: SynthConfig) -> list[Participant]:
    """Balanced labels (shuffled) and per-participant rhythm parameters."""
    labels = synth_rng(cfg, 0).permutation(np.arange(cfg.n_participants) % 2)
    out = []
    for i, pid in enumerate(participant_ids(cfg.n_participants)):
        rng = synth_rng(cfg, 1, i)
        out.append(
            Participant(
                participant=pid,
                label=int(labels[i]),
                alpha_peak_hz=float(rng.uniform(8.5, 11.5)),
                alpha_uv=float(12.0 * rng.lognormal(0.0, 0.3)),
                beta_peak_hz=float(rng.uniform(17.0, 23.0)),
                beta_uv=float(3.0 * rng.lognormal(0.0, 0.2)),
                background_uv=float(10.0 * rng.lognormal(0.0, 0.15)),
                blink_rate_per_min=float(rng.uniform(8.0, 20.0)),
                blink_uv=float(rng.uniform(70.0, 130.0)),
                line_noise_uv=float(rng.uniform(1.0, 4.0)),
            )
        )
    return out


def _topography(
    pos: np.ndarray, centre: tuple[float, float, float], width: float, floor: float
) -> np.ndarray:
    """(c,) weight falling as a Gaussian of chord distance from `centre` (unit sphere)."""
    c = np.asarray(centre) / np.linalg.norm(centre)
    d = np.linalg.norm(pos - c, axis=1)
    return floor + (1.0 - floor) * np.exp(-0.5 * (d / width) ** 2)


def _unit_amplitude(shape: np.ndarray, n: int) -> np.ndarray:
    """Scale an rfft amplitude shape so the real signal of length n has unit variance."""
    total = np.sum(shape**2)
    return shape * (n / (2.0 * np.sqrt(total))) if total > 0 else shape  # var = 4 sum S^2 / n^2


def _spectral_noise(rng: np.random.Generator, amplitude: np.ndarray, c: int) -> np.ndarray:
    """(c, n_bins) complex64 rfft coefficients: complex Gaussian times `amplitude` (n_bins,)."""
    z = rng.standard_normal((c, len(amplitude), 2), dtype=np.float32).view(np.complex64)[..., 0]
    return z * amplitude.astype(np.float32)


def _mixed(mix: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Real (c, c) mixing of complex64 (c, bins) coefficients: one real matmul on the re/im view."""
    return (mix @ coeffs.view(np.float32)).view(np.complex64)


def _smooth_process(
    rng: np.random.Generator, t: np.ndarray, period_s: tuple[float, float]
) -> np.ndarray:
    """(n,) sum of 4 slow sinusoids, unit variance: a state that wanders over minutes."""
    freqs = 1.0 / rng.uniform(*period_s, size=4)
    phases = rng.uniform(0, 2 * np.pi, size=4)
    return np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None]).sum(0) / np.sqrt(2.0)


def band_gain(
    freqs_hz: np.ndarray, band_hz: tuple[float, float], power_factor: float
) -> np.ndarray:
    """Amplitude gain sqrt(power_factor) inside the band, 0.5 Hz cosine tapers outside it."""
    low, high = band_hz
    taper = 0.5
    weight = np.clip(np.minimum(freqs_hz - (low - taper), (high + taper) - freqs_hz) / taper, 0, 1)
    weight = 0.5 - 0.5 * np.cos(np.pi * weight)
    return 1.0 + (np.sqrt(power_factor) - 1.0) * weight


def synth_recording(
    cfg: SynthConfig,
    person: Participant,
    p_index: int,
    r_index: int,
    pos: np.ndarray,
    hop_samples: int,
) -> np.ndarray:
    """(c, n_samples) float32 µV continuous recording, n = (n_windows - 1) * hop + window."""
    n = (cfg.n_windows - 1) * hop_samples + cfg.window_samples
    c = len(pos)
    t = np.arange(n, dtype=np.float64) / cfg.sfreq  # seconds
    freqs = np.fft.rfftfreq(n, 1.0 / cfg.sfreq)
    chord = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)  # (c, c)
    mix = np.exp(-chord / 0.4)
    mix = (mix / np.linalg.norm(mix, axis=1, keepdims=True)).astype(np.float32)  # unit variance
    rng = synth_rng(cfg, 2, p_index, r_index)
    pink = np.where(freqs > 0, (freqs + 1.0) ** -0.85, 0.0)  # power ~ 1/f^1.7
    alpha = np.exp(-0.5 * ((freqs - person.alpha_peak_hz) / 0.6) ** 2)
    beta = np.exp(-0.5 * ((freqs - person.beta_peak_hz) / 3.0) ** 2)
    # Unmixed per-electrode parts share the background's inverse FFT: white sensor noise
    # (0.5 µV) and slow drifts (0.005-0.05 Hz, ~8 µV), drawn together as one spectrum.
    drift = np.where((freqs >= 0.005) & (freqs <= 0.05), 1.0, 0.0)
    white_amp = 0.5 * np.sqrt(n / 2.0)  # flat rfft amplitude of 0.5 µV white noise
    unmixed = np.sqrt(white_amp**2 + (8.0 * _unit_amplitude(drift, n)) ** 2)
    spec = _mixed(mix, _spectral_noise(rng, person.background_uv * _unit_amplitude(pink, n), c))
    spec += _spectral_noise(rng, unmixed, c)
    x = np.fft.irfft(spec, n=n, axis=1)  # (c, n) float32
    state = _smooth_process(rng, t, (40.0, 300.0))
    alertness = _smooth_process(rng, t, (60.0, 400.0))
    posterior = _topography(pos, (0.0, -0.8, 0.55), 0.6, 0.15)
    central = _topography(pos, (0.0, 0.1, 1.0), 0.8, 0.4)
    for shape, amp_uv, topo, gain in (
        (alpha, person.alpha_uv, posterior, np.exp(0.4 * state)),
        (beta, person.beta_uv, central, np.exp(0.2 * alertness)),
    ):
        coeffs = _mixed(mix, _spectral_noise(rng, _unit_amplitude(shape, n), c))
        rhythm = np.fft.irfft(coeffs, n=n, axis=1)  # (c, n)
        x += (amp_uv * topo[:, None]).astype(np.float32) * rhythm * gain.astype(np.float32)
    # Blinks: Gaussian bumps (sd 80 ms) at Poisson times, frontal topography.
    n_blinks = rng.poisson(person.blink_rate_per_min * n / cfg.sfreq / 60.0)
    impulses = np.zeros(n)
    impulses[rng.integers(0, n, n_blinks)] = rng.uniform(0.7, 1.3, n_blinks) * person.blink_uv
    kernel_t = np.arange(-0.3, 0.3, 1.0 / cfg.sfreq)
    kernel = np.exp(-0.5 * (kernel_t / 0.08) ** 2)
    blinks = np.convolve(impulses, kernel)[(len(kernel) - 1) // 2 :][:n]  # centred, length n
    frontal = _topography(pos, (0.0, 0.95, -0.1), 0.35, 0.0)
    x += np.outer(frontal, blinks).astype(np.float32)
    # Line noise A sin(wt + phi) = A cos(phi) sin(wt) + A sin(phi) cos(wt): two outer products.
    line_amp = person.line_noise_uv * rng.uniform(0.5, 1.5, c)
    line_phase = rng.uniform(0, 2 * np.pi, c)
    wt = 2 * np.pi * cfg.line_noise_hz * t
    x += np.outer(line_amp * np.cos(line_phase), np.sin(wt)).astype(np.float32)
    x += np.outer(line_amp * np.sin(line_phase), np.cos(wt)).astype(np.float32)
    if person.label == 1 and cfg.effect_size != 0:
        rows = [MONTAGES[cfg.montage].index(ch) for ch in cfg.effect_channels]
        gain = band_gain(freqs, cfg.effect_band_hz, 1.0 + cfg.effect_size)
        x[rows] = np.fft.irfft(np.fft.rfft(x[rows], axis=1) * gain, n=n, axis=1)
    return (np.round(x / QUANTUM_UV) * QUANTUM_UV).astype(np.float32)


def windows_of(x: np.ndarray, window_samples: int, hop_samples: int) -> np.ndarray:
    """(c, n) recording -> (c, n_windows, window_samples) contiguous copy, starts at k * hop."""
    view = np.lib.stride_tricks.sliding_window_view(x, window_samples, axis=1)[:, ::hop_samples]
    return np.array(view, dtype=np.float32, order="C", copy=True)  # writable: defects go in
