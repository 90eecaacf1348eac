"""Checkpoint integrity: a byte flipped in a saved checkpoint's weights (which torch.load
still reads without a word) makes `eegwb control` and `eegwb finetune` refuse the file,
naming it; a checkpoint saved before digests were recorded loads with a warning."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from pretrain_helpers import REPO, synth_cohort, tiny_config

from eegwb.cli import main as cli_main
from eegwb.train.checkpoints import HASH_KEY, load_checkpoint, tensor_digest
from eegwb.train.pretrain import pretrain


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, best checkpoint) of a one-epoch tiny pretraining."""
    synth = synth_cohort(tmp_path_factory)
    ckpt_dir = tmp_path_factory.mktemp("ckpt")
    result = pretrain(tiny_config(synth, ckpt_dir, "train.epochs=1"), bar=False)
    return synth, result.best_checkpoint


def _flip_a_weight_byte(src: Path, dst: Path) -> str:
    """Copy `src` to `dst` with one bit flipped inside a model weight's stored bytes (found
    by its raw bytes in the uncompressed zip); returns the weight's name."""
    model = torch.load(src, weights_only=True)["model"]
    name = max(model, key=lambda k: model[k].numel())
    raw = model[name].contiguous().numpy().tobytes()
    data = bytearray(src.read_bytes())
    at = bytes(data).find(raw)
    assert at > 0 and bytes(data).find(raw, at + 1) < 0, "the weight's bytes are not unique"
    data[at + len(raw) // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    return name


def test_flipped_byte_is_refused_by_control_and_finetune(trained, tmp_path, capsys) -> None:
    synth, best = trained
    tampered = tmp_path / "tampered.pt"
    name = _flip_a_weight_byte(best, tampered)
    # torch reads the damaged file as if nothing happened: only the weight differs.
    a, b = torch.load(best, weights_only=True), torch.load(tampered, weights_only=True)
    assert not torch.equal(a["model"][name], b["model"][name])
    assert (a["model"][name] != b["model"][name]).sum() == 1
    why = f"{tampered}: its tensors are not the ones saved"

    assert cli_main(["control", "--checkpoint", str(tampered), "--data", str(synth)]) == 2
    assert why in capsys.readouterr().err
    finetune = ["finetune", "--config", str(REPO / "configs" / "finetune_tiny.yaml")]
    for s in (
        f"data.root={synth}",
        f"pretrained.checkpoint={tampered}",
        f"train.checkpoint_dir={tmp_path / 'ft'}",
        "tracking.enabled=false",
    ):
        finetune += ["--set", s]
    assert cli_main(finetune) == 2
    assert why in capsys.readouterr().err
    assert load_checkpoint(best)[HASH_KEY] == tensor_digest(a)  # the intact file verifies


def test_checkpoint_without_digest_loads_with_a_warning(trained, tmp_path, caplog) -> None:
    _, best = trained
    state = torch.load(best, weights_only=True)
    del state[HASH_KEY]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with caplog.at_level(logging.WARNING, logger="eegwb.train.checkpoints"):
        loaded = load_checkpoint(old)
    assert f"{old}: no {HASH_KEY}" in caplog.text and "not verified" in caplog.text
    assert torch.equal(
        loaded["model"][next(iter(state["model"]))], next(iter(state["model"].values()))
    )
    shutil.copy(best, tmp_path / "copy.pt")
    assert HASH_KEY in load_checkpoint(tmp_path / "copy.pt")
