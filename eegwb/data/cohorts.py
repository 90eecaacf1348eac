"""The synthetic Muse cohort the fine-tuning configs read by default (`data/muse`), so a
missing dataset can be made from where it is missed: notebook 06 offers a button, and
its message (and the configs' headers) give the same `eegwb synth` command.

24 participants x 1 run x 16 windows of 2048 samples (8 s at 256 Hz, the windows
configs/tiny.yaml and configs/pretrain.yaml pretrain on), Muse's 4 sites, a per-participant
remission label with the generator's default planted alpha effect.
"""

from __future__ import annotations

from pathlib import Path

from eegwb.data.layout import DatasetError, list_recordings
from eegwb.data.synthetic_config import SynthConfig

MUSE = SynthConfig(n_participants=24, runs_per_participant=1, montage="muse", n_windows=16, seed=1)


def synth_command(out: str | Path, cfg: SynthConfig = MUSE) -> str:
    """The `eegwb synth` line that writes `cfg` to `out` (flags that differ from defaults)."""
    d = SynthConfig(montage=cfg.montage)
    flags = [
        ("--montage", cfg.montage, "standard_1020"),
        ("--participants", cfg.n_participants, d.n_participants),
        ("--runs", cfg.runs_per_participant, d.runs_per_participant),
        ("--window-samples", cfg.window_samples, d.window_samples),
        ("--n-windows", cfg.n_windows, d.n_windows),
        ("--effect-size", cfg.effect_size, d.effect_size),
        ("--seed", cfg.seed, d.seed),
    ]
    shown = " ".join(
        f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"
        for flag, value, default in flags
        if value != default
    )
    return f"eegwb synth --out {out} {shown}".strip()


def missing_dataset(root: str | Path) -> str | None:
    """Why `root` holds no dataset ("data/muse: dataset directory does not exist"), or None."""
    try:
        list_recordings(root)
    except DatasetError as err:
        return str(err)
    return None
