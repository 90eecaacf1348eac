"""`eegwb info`: versions, device, and which kernels `auto` resolves to (and why)."""

from __future__ import annotations

import json

import pytest
import torch

from eegwb.cli import main
from eegwb.commands.info import collect


def test_collect_reports_the_kernel_decision():
    info = collect("cpu")
    assert info["device"] == "cpu" and info["packages"]["torch"]
    assert info["kernel"]["auto_resolves_to"] == "reference"  # CPU tensors never run Triton
    assert "cpu" in info["kernel"]["reason"]
    assert info["torch"]["cuda_available"] == torch.cuda.is_available()


def test_cli_prints_text_and_json(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "kernel_backend=auto ->" in text and "torch" in text
    assert main(["info", "--json", "--device", "cpu"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["kernel"]["auto_resolves_to"] == "reference"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_refuses_a_device_that_is_not_there(capsys):
    assert main(["info", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
