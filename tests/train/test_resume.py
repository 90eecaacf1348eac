"""Exact resume: N steps straight equal N/2 steps + resume + N/2 steps, parameter for parameter.

Dropout (global torch RNG) and BERT masking (the mask generator draws noise) are on, so
every RNG a step touches must be saved and restored for the parameters to match.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pretrain_helpers import synth_cohort, tiny_config

from eegwb.config import ConfigError
from eegwb.train.checkpoints import CheckpointError, load_checkpoint
from eegwb.train.pretrain import pretrain

RANDOM_PARTS = ("model.dropout=0.1", "masking.style=bert", "train.epochs=2", "train.batch_size=16")


def _tensors(state: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def test_resume_mid_epoch_gives_identical_parameters(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = synth_cohort(tmp_path_factory)
    straight = pretrain(tiny_config(root, tmp_path / "straight", *RANDOM_PARTS), bar=False)
    n = len(straight.steps)
    per_epoch = n // 2
    half = per_epoch + per_epoch // 2 + 1  # inside the second epoch, not on a boundary
    assert 0 < half - per_epoch < per_epoch

    first = pretrain(
        tiny_config(root, tmp_path / "split", *RANDOM_PARTS, f"train.max_steps={half}"), bar=False
    )
    assert first.stopped == "max_steps" and len(first.steps) == half
    ckpt = load_checkpoint(first.last_checkpoint)
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["step"]) == (1, half - per_epoch, half)
    second = pretrain(
        tiny_config(root, tmp_path / "split", *RANDOM_PARTS),
        resume=first.last_checkpoint,
        bar=False,
    )
    assert second.stopped == "completed" and len(second.steps) == n

    a = load_checkpoint(straight.last_checkpoint)
    b = load_checkpoint(second.last_checkpoint)
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    # The half-way parameters really were different: the second half did train.
    assert any(
        not torch.equal(v, ckpt["model"][k]) for k, v in a["model"].items() if v.is_floating_point()
    )
    for sa, sb in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        for key, value in _tensors(sa).items():
            assert torch.equal(value, sb[key]), key
    assert [s["train_loss"] for s in straight.steps] == [s["train_loss"] for s in second.steps]
    assert second.best_val_loss == straight.best_val_loss


def _timeless(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "epoch_s"} for row in history]


def test_resume_mid_epoch_gives_the_straight_runs_history(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = synth_cohort(tmp_path_factory)
    straight = pretrain(tiny_config(root, tmp_path / "straight", *RANDOM_PARTS), bar=False)
    half = len(straight.steps) // 2 + 1  # the second epoch's first step: its sums must carry over
    for_half = tiny_config(root, tmp_path / "split", *RANDOM_PARTS, f"train.max_steps={half}")
    first = pretrain(for_half, bar=False)
    second = pretrain(
        tiny_config(root, tmp_path / "split", *RANDOM_PARTS),
        resume=first.last_checkpoint,
        bar=False,
    )
    assert [h["kind"] for h in second.history] == ["epoch", "epoch"]
    assert _timeless(second.history) == _timeless(straight.history)


def test_resume_refuses_a_different_config(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = synth_cohort(tmp_path_factory)
    first = pretrain(
        tiny_config(
            root, tmp_path / "a", "train.epochs=2", "train.batch_size=32", "train.max_steps=1"
        ),
        bar=False,
    )
    changed = tiny_config(
        root, tmp_path / "a", "train.epochs=2", "train.batch_size=32", "train.lr=1e-2"
    )
    with pytest.raises(
        CheckpointError, match=r"_last\.pt: cannot resume with a different config \(train\.lr"
    ):
        pretrain(changed, resume=first.last_checkpoint, bar=False)
    with pytest.raises(CheckpointError, match="checkpoint does not exist"):
        pretrain(changed, resume=tmp_path / "nope.pt", bar=False)


def test_resume_does_not_replace_another_runs_checkpoints(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = synth_cohort(tmp_path_factory)
    other = pretrain(
        tiny_config(root, tmp_path / "y", "train.epochs=1", "train.lr=1e-4"), bar=False
    )
    before = {p: p.read_bytes() for p in (other.best_checkpoint, other.last_checkpoint)}
    mine = pretrain(
        tiny_config(root, tmp_path / "x", "train.epochs=1", "train.max_steps=1"), bar=False
    )

    into_y = tiny_config(root, tmp_path / "y", "train.epochs=1")
    with pytest.raises(ConfigError, match=r"mamba2_eeg_d16_l1_m50_mae\.pt.*belong to another run"):
        pretrain(into_y, resume=mine.last_checkpoint, bar=False)
    assert {p: p.read_bytes() for p in before} == before
    # Its own directory, where its `last` file is the one resumed from, stays writable.
    done = pretrain(
        tiny_config(root, tmp_path / "x", "train.epochs=1"), resume=mine.last_checkpoint, bar=False
    )
    assert (
        done.stopped == "completed"
        and done.best_checkpoint == tmp_path / "x" / other.best_checkpoint.name
    )


def test_resume_at_max_steps_trains_no_further(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = synth_cohort(tmp_path_factory)
    cfg = tiny_config(root, tmp_path, "train.epochs=1", "train.max_steps=1")
    first = pretrain(cfg, bar=False)
    weights = load_checkpoint(first.last_checkpoint)["model"]
    again = pretrain(cfg, resume=first.last_checkpoint, bar=False)
    assert again.stopped == "max_steps" and [s["step"] for s in again.steps] == [1]
    after = load_checkpoint(again.last_checkpoint)
    assert after["step"] == 1
    assert all(torch.equal(v, after["model"][k]) for k, v in weights.items())


def test_resume_with_another_number_of_processes_says_it_is_not_exact(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 2-process run resumed in 1 process goes on, but cannot match the uninterrupted run
    (batches and masks are drawn per process): the log says so."""
    from eegwb.train.checkpoints import save_checkpoint

    root = synth_cohort(tmp_path_factory)
    first = pretrain(tiny_config(root, tmp_path / "a", "train.max_steps=1"), bar=False)
    ckpt = load_checkpoint(first.last_checkpoint)
    ckpt["rng"]["ranks"] = ckpt["rng"]["ranks"] * 2  # as a 2-process run records them
    two = save_checkpoint(tmp_path / "two_processes.pt", ckpt)
    with caplog.at_level("WARNING", logger="eegwb.train"):
        pretrain(tiny_config(root, tmp_path / "a", "train.max_steps=2"), resume=two, bar=False)
    assert "resuming a run of 2 process(es) with 1" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="eegwb.train"):
        pretrain(
            tiny_config(root, tmp_path / "b", "train.max_steps=2"),
            resume=first.last_checkpoint,
            bar=False,
        )
    assert "process(es)" not in caplog.text
