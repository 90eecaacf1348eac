"""Checkpoints: original names, atomic writes (a crash mid-save keeps the old file), loading
without pickle, RNG state round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from eegwb.config import load_config, to_dict
from eegwb.train import checkpoints
from eegwb.train.checkpoints import (
    CheckpointError,
    checkpoint_name,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from eegwb.train.config import PretrainConfig


class NotATensor:
    """Anything that needs pickle to load; weights_only must refuse it."""


def _state(value: float) -> dict:
    cfg = PretrainConfig()
    return {
        "model": {"w": torch.full((3, 2), value)},
        "config": to_dict(cfg),
        "step": 7,
        "history": [{"epoch": 1, "val_loss": 0.5}],
        "rng": rng_state(),
    }


@pytest.mark.parametrize(
    ("overrides", "best", "last"),
    [
        ([], "mamba2_eeg_d128_l6_m50_mae.pt", "mamba2_eeg_d128_l6_m50_mae_last.pt"),
        (
            ["masking.mask_ratio=0.2", "model.d_model=256", "model.n_layers=2"],
            "mamba2_eeg_d256_l2_m20_mae.pt",
            None,
        ),
        (
            ["model.backbone=transformer", "masking.style=bert", "masking.mask_ratio=1.0"],
            "transformer_eeg_d128_l6_m100_bert.pt",
            "transformer_eeg_d128_l6_m100_bert_last.pt",
        ),
    ],
)
def test_checkpoint_names_follow_the_original(
    overrides: list[str], best: str, last: str | None
) -> None:
    cfg = load_config(PretrainConfig, None, overrides)
    assert checkpoint_name(cfg) == best
    assert checkpoint_name(to_dict(cfg)) == best  # the plain-dict config stored in a checkpoint
    if last is not None:
        assert checkpoint_name(cfg, "last") == last


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", _state(1.5))
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.full((3, 2), 1.5))
    assert loaded["config"] == to_dict(PretrainConfig()) and loaded["history"][0]["val_loss"] == 0.5
    torch.load(path, weights_only=True)  # nothing in it needs pickle


def test_crash_mid_save_leaves_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint(tmp_path / "c.pt", _state(1.0))
    real_save = torch.save

    def crash_half_way(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        data = Path(f).read_bytes()
        Path(f).write_bytes(data[: len(data) // 2])  # a torn write ...
        raise OSError("disk full")  # ... then the crash

    monkeypatch.setattr(checkpoints.torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _state(2.0))
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3, 2), 1.0))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_bad_files_are_named(tmp_path: Path) -> None:
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": {}, "config": {}, "extra": NotATensor()}, pickled)
    with pytest.raises(CheckpointError, match=r"pickled\.pt: cannot read checkpoint"):
        load_checkpoint(pickled)
    torn = tmp_path / "torn.pt"
    save_checkpoint(torn, _state(1.0))
    torn.write_bytes(torn.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"torn\.pt: cannot read checkpoint"):
        load_checkpoint(torn)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match=r"other\.pt: not an eegwb checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match=r"missing\.pt: checkpoint does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def _draws(gen: torch.Generator) -> tuple:
    return (
        torch.rand(3).tolist(),
        np.random.rand(3).tolist(),
        [random.random() for _ in range(3)],
        torch.rand(3, generator=gen).tolist(),
    )


def test_rng_state_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(5)
    np.random.seed(1)
    random.seed(2)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    path = save_checkpoint(tmp_path / "rng.pt", {"model": {}, "config": {}, "rng": rng_state(gen)})
    expected = _draws(gen)
    other = torch.Generator().manual_seed(99)
    set_rng_state(load_checkpoint(path)["rng"], other)
    assert _draws(other) == expected
