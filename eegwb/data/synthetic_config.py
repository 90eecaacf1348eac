"""What a synthetic cohort is asked to be (`SynthConfig`), and the seeded draws and ids it implies.

Every random draw of the generator comes from `synth_rng(cfg, *keys)`, seeded by
(seed, participant, run, stream), so a config gives byte-identical samples and the effect can
be switched off without changing anything else. The signal model is in `synthetic_signal.py`,
the planted defects in `synthetic_defects.py`, the writing of the cohort in `synthetic.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eegwb.data.montage import MONTAGES

DEFECT_KINDS = (
    "flat_channel",  # one channel constant over a few consecutive windows
    "nan_stretch",  # NaN samples inside one window of one channel
    "inf_stretch",  # +inf samples inside one window of one channel
    "duplicated_windows",  # one window (all channels) copied exactly into another participant
    "near_duplicate",  # a copy plus 3% noise into another participant (cosine >= 0.995)
    "overlapping_windows",  # one run windowed with hop = window / 2
    "amplitude_confound",  # every recording of label-1 participants at 1.5x gain: a nuisance
    # that predicts the label (another amplifier for one group), for the shortcut audit
    "rank_confound",  # one spatial component projected out of every recording of label-1
    # participants (as ICA cleaning leaves them): their channel covariance is rank-deficient
)
COPY_KINDS = ("duplicated_windows", "near_duplicate")
COHORT_KINDS = ("amplitude_confound", "rank_confound")  # across the cohort, not one recording
DEFAULT_EFFECT_CHANNELS = {
    "standard_1020": ("F3", "FZ", "F4"),
    "standard_1010_64": ("AF3", "AFZ", "AF4", "F1", "FZ", "F2"),
    "muse": ("AF7", "AF8"),
}


@dataclass
class SynthConfig:
    """What to generate; see `synthetic_signal.py` for the signal model."""

    n_participants: int = 20  # 10 per label; ~60 MB on disk with the defaults below
    runs_per_participant: int = 2  # two recordings each, so splits must group by participant
    montage: str = "standard_1020"  # or "standard_1010_64" / "muse" (eegwb.data.montage.MONTAGES)
    sfreq: float = 256.0  # Muse's native rate; Nyquist 128 Hz keeps 50/60 Hz line noise
    window_samples: int = 2048  # 8 s at 256 Hz, the original pipeline's window
    n_windows: int = 24  # per run: 3.2 min at 8 s, long enough for minute-scale state drift
    line_noise_hz: float = 50.0  # mains: 50 Hz (Europe, Asia) or 60 Hz (Americas)
    label_name: str = "remission"  # the per-participant binary label written to metadata
    effect_channels: tuple[str, ...] | None = None  # None: frontal sites of the montage
    effect_band_hz: tuple[float, float] = (8.0, 12.0)  # alpha; (13, 30) for beta
    effect_size: float = 1.0  # band power x (1 + effect_size) for label 1; 0 = null effect.
    # 1.0 doubles it: per-participant band power separates the default cohort's labels.
    seed: int = 0
    defects: tuple[str, ...] = ()  # names from DEFECT_KINDS, each planted once

    def __post_init__(self) -> None:
        if self.montage not in MONTAGES:
            raise ValueError(f"SynthConfig.montage: {self.montage!r} not in {sorted(MONTAGES)}")
        channels = MONTAGES[self.montage]
        integers = ("n_participants", "runs_per_participant", "window_samples", "n_windows", "seed")
        for key in integers:
            value = getattr(self, key)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                # ValueError like every other config problem, so callers catch one type.
                raise ValueError(f"SynthConfig.{key}: {value!r} must be an integer")  # noqa: TRY004
        if self.effect_channels is None:
            self.effect_channels = DEFAULT_EFFECT_CHANNELS[self.montage]
        if isinstance(self.effect_channels, str):  # one name, or "F3,F4" from a form or the CLI
            self.effect_channels = tuple(self.effect_channels.split(","))
        self.effect_channels = tuple(str(c).strip().upper() for c in self.effect_channels)
        self.effect_band_hz = tuple(map(float, self.effect_band_hz))  # type: ignore[assignment]
        if isinstance(self.defects, str):
            self.defects = tuple(d.strip() for d in self.defects.split(",") if d.strip())
        self.defects = tuple(self.defects)
        checks = [
            (self.n_participants >= 2, "n_participants", "must be >= 2 (both label values)"),
            (self.runs_per_participant >= 1, "runs_per_participant", "must be >= 1"),
            (self.sfreq >= 128.0, "sfreq", "must be >= 128 Hz (for 50/60 Hz line noise)"),
            (self.window_samples >= 32, "window_samples", "must be >= 32"),
            (self.n_windows >= 2, "n_windows", "must be >= 2"),
            (self.line_noise_hz in (50.0, 60.0), "line_noise_hz", "must be 50 or 60"),
            (self.line_noise_hz < self.sfreq / 2, "line_noise_hz", "must be below Nyquist"),
            (str(self.label_name).isidentifier(), "label_name", "must be an identifier"),
            (len(self.effect_band_hz) == 2, "effect_band_hz", "must be (low, high)"),
            (self.effect_size > -1.0, "effect_size", "must be > -1 (band power x (1 + size))"),
        ]
        for ok, key, problem in checks:
            if not ok:
                raise ValueError(f"SynthConfig.{key}: {getattr(self, key)!r} {problem}")
        low, high = self.effect_band_hz
        if not 0 < low < high < self.sfreq / 2:
            raise ValueError(
                f"SynthConfig.effect_band_hz: {self.effect_band_hz} needs 0 < low < high < sfreq/2"
            )
        bad = [c for c in self.effect_channels if c not in channels]
        if bad or not self.effect_channels:
            raise ValueError(
                f"SynthConfig.effect_channels: {bad or '()'} not in montage {self.montage!r}"
            )
        unknown = [d for d in self.defects if d not in DEFECT_KINDS]
        if unknown or len(set(self.defects)) != len(self.defects):
            raise ValueError(
                f"SynthConfig.defects: {list(self.defects)} must be distinct names from "
                f"{DEFECT_KINDS}"
            )
        n_rec = self.n_participants * self.runs_per_participant
        needed = sum(d not in COHORT_KINDS for d in self.defects) + sum(
            d in COPY_KINDS for d in self.defects
        )
        if needed > n_rec:
            raise ValueError(
                f"SynthConfig.defects: {list(self.defects)} need {needed} distinct recordings, "
                f"the cohort has {n_rec}; raise n_participants"
            )


def synth_rng(cfg: SynthConfig, *keys: int) -> np.random.Generator:
    """The generator of one stream: seeded by (cfg.seed, *keys), independent of every other."""
    return np.random.default_rng([cfg.seed, *keys])


def participant_ids(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"{i + 1:0{width}d}" for i in range(n)]


def run_ids(n: int) -> list[str]:
    return [str(r + 1) for r in range(n)]
