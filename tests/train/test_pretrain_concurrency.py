"""Two pretraining runs, real `eegwb pretrain` processes released at the same moment, into
one checkpoint name: one owns it, the other fails at once naming it; no interleaved files.
And the temporary files of a killed save are removed by the next run of that name only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pretrain_helpers import TINY_YAML, synth_cohort, tiny_config, tiny_overrides

from eegwb.train.checkpoints import checkpoint_name, load_checkpoint
from eegwb.train.pretrain import pretrain


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_cohort(tmp_path_factory)


def _argv(root: Path, ckpt: Path, *extra: str) -> list[str]:
    sets = [*tiny_overrides(root, ckpt), "train.epochs=2", *extra]
    return [
        "pretrain",
        "--config",
        str(TINY_YAML),
        "--no-bar",
        *(a for s in sets for a in ("--set", s)),
    ]


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_runs_started_together_one_owns_the_checkpoint_name(
    synth: Path, tmp_path: Path, start_together, overwrite: bool
) -> None:
    ckpt = tmp_path / "ckpt"
    flag = f"train.overwrite={str(overwrite).lower()}"
    runs = start_together(
        [_argv(synth, ckpt, "train.seed=1", flag), _argv(synth, ckpt, "train.seed=2", flag)],
        tmp_path,
        preload=["eegwb.train.pretrain"],
    )
    assert sorted(r.returncode for r in runs) == [0, 2], [r.stderr[-2000:] for r in runs]
    winner, loser = sorted(runs, key=lambda r: r.returncode)
    # The refusal names the folder, the checkpoint name and the run holding it.
    assert "in use by another run" in loser.stderr
    assert str(ckpt) in loser.stderr and f"pid {winner.pid} " in loser.stderr
    assert "mamba2_eeg_d16_l1_m50_mae" in loser.stderr
    # Both checkpoints are the winner's, and nothing else is left in the folder.
    seed = int(next(a for a in winner.argv if a.startswith("train.seed=")).split("=")[1])
    best = ckpt / checkpoint_name(tiny_config(synth, ckpt))
    last = best.with_name(best.stem + "_last.pt")
    for path in (best, last):
        state = load_checkpoint(path)
        assert state["config"]["train"]["seed"] == seed
    assert load_checkpoint(best)["run_uid"] == load_checkpoint(last)["run_uid"]
    assert sorted(os.listdir(ckpt)) == sorted([best.name, last.name])
    assert f"best_checkpoint: {best}" in winner.stdout and loser.stdout == ""


def test_next_run_removes_only_its_own_stale_temporary_files(synth: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    cfg = tiny_config(synth, ckpt, "train.epochs=1")
    best = checkpoint_name(cfg)
    ckpt.mkdir()
    # What a save killed mid-write leaves: atomic_path's temporary names.
    stale = [
        ckpt / f".{best}.k9x1ab2c.tmp",
        ckpt / f".{best.removesuffix('.pt')}_last.pt.zz_01234.tmp",
    ]
    other = [ckpt / ".other_model.pt.k9x1ab2c.tmp", ckpt / f".{best}.bak.k9x1ab2c.tmp"]
    for path in stale + other:
        path.write_bytes(b"half a checkpoint")
    pretrain(cfg, bar=False)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in other)  # another name's, or not a temporary of ours
