"""eegwb/data/cohorts.py: the Muse cohort the fine-tuning configs read, and its command."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from eegwb.commands import synth
from eegwb.data.cohorts import MUSE, missing_dataset, synth_command
from eegwb.data.synthetic import generate_cohort


def test_the_command_shown_writes_the_same_cohort() -> None:
    line = synth_command("data/muse")
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args(shlex.split(line)[2:])  # after "eegwb synth"
    assert (args.participants, args.runs, args.montage, args.n_windows, args.seed) == (
        MUSE.n_participants,
        MUSE.runs_per_participant,
        MUSE.montage,
        MUSE.n_windows,
        MUSE.seed,
    )
    assert args.window_samples == MUSE.window_samples == 2048  # what tiny.yaml pretrains on
    assert str(args.out) == "data/muse"


def test_missing_dataset_says_why(tmp_path: Path) -> None:
    assert "does not exist" in missing_dataset(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    assert "no recording files" in missing_dataset(tmp_path / "empty")
    from dataclasses import replace

    generate_cohort(
        tmp_path / "muse",
        replace(MUSE, n_participants=2, n_windows=2, window_samples=256),
        progress=False,
    )
    assert missing_dataset(tmp_path / "muse") is None
