"""eegwb/train/estimate.py: the time a pretraining run will take, measured before it runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pretrain_helpers import TINY_MODEL

from eegwb.config import ConfigError, load_config
from eegwb.train.config import PretrainConfig
from eegwb.train.estimate import RunEstimate, estimate_pretrain, format_duration


def test_estimate_counts_the_run_steps_and_times_this_model(
    write_cohort: Callable[..., Path], tmp_path: Path
) -> None:
    root = write_cohort(
        tmp_path / "data",
        participants=[f"{i:02d}" for i in range(1, 9)],
        n_windows=6,
        window_samples=64,
    )
    cfg = load_config(
        PretrainConfig,
        None,
        [
            *TINY_MODEL,
            f"data.root={root}",
            "model.window_samples=64",
            "data.split_fractions=[0.75, 0.25, 0.0]",
            "train.batch_size=4",
            "train.epochs=7",
        ],
    )
    est = estimate_pretrain(cfg)
    # 6 train participants x 2 runs x 4 channels = 48 sequences, batches of 4
    assert (est.train_sequences, est.steps_per_epoch, est.epochs) == (48, 12, 7)
    assert est.val_sequences == 16 and est.val_batches == 4
    assert 0 < est.seconds_per_step < 30 and est.device == "cpu"
    assert est.total_s == pytest.approx(
        7 * (12 * est.seconds_per_step + 4 * est.seconds_per_val_batch)
    )
    assert est.text().startswith("at most ")  # patience > 0: early stopping may end it sooner
    assert "7 epochs x 12 steps" in est.text()

    big = load_config(
        PretrainConfig,
        None,
        [*TINY_MODEL, f"data.root={root}", "model.window_samples=64", "train.batch_size=512"],
    )
    with pytest.raises(ConfigError, match="train.batch_size: 512"):
        estimate_pretrain(big)


def test_max_steps_and_durations_in_words() -> None:
    est = RunEstimate(
        epochs=10,
        steps_per_epoch=100,
        seconds_per_step=0.5,
        val_batches=0,
        seconds_per_val_batch=0.0,
        device="cpu",
        train_sequences=800,
        val_sequences=0,
        max_steps=150,
    )
    assert est.total_s == pytest.approx(75.0) and est.text().startswith("about 75 s")
    assert [format_duration(s) for s in (0.2, 89, 600, 9000)] == ["1 s", "89 s", "10 min", "2.5 h"]
