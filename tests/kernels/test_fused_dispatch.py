"""The one kernel decision: fused when it can, reference with one log line when `auto`
cannot, an error when an explicit `fused` cannot be met."""

from __future__ import annotations

import logging
import sys

import pytest
import torch

from eegwb.kernels.fused import KernelUnavailableError, kernel_ops, reset_kernel_cache
from eegwb.kernels.ssd_reference import mamba_chunk_scan_ref
from eegwb.model import EEGModel, ModelConfig

TINY = {
    "window_samples": 16,
    "d_model": 16,
    "n_layers": 1,
    "d_state": 4,
    "headdim": 8,
    "chunk_size": 4,
}


@pytest.fixture
def no_mamba_ssm(monkeypatch):
    """mamba_ssm made unimportable (None in sys.modules), decisions forgotten before/after."""
    for name in (
        "mamba_ssm",
        "mamba_ssm.ops",
        "mamba_ssm.ops.triton",
        "mamba_ssm.ops.triton.ssd_combined",
        "mamba_ssm.ops.triton.layernorm_gated",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    reset_kernel_cache()
    yield
    reset_kernel_cache()


def _fallback_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "kernel_backend=auto" in r.getMessage()]


def test_auto_without_mamba_ssm_falls_back_and_logs_once(no_mamba_ssm, caplog):
    with caplog.at_level(logging.INFO, logger="eegwb.kernels.fused"):
        first = kernel_ops("auto", "cuda")
        second = kernel_ops("auto", torch.device("cuda"))
    assert first.path == second.path == "reference"
    assert first.chunk_scan is mamba_chunk_scan_ref
    assert "mamba_ssm is not importable" in first.reason
    lines = _fallback_lines(caplog)
    assert len(lines) == 1 and "mamba_ssm" in lines[0]


def test_explicit_fused_without_mamba_ssm_raises(no_mamba_ssm):
    with pytest.raises(KernelUnavailableError, match="mamba_ssm is not importable"):
        kernel_ops("fused", "cuda")


def test_cpu_tensors_never_get_fused_kernels(no_mamba_ssm, caplog):
    with caplog.at_level(logging.INFO, logger="eegwb.kernels.fused"):
        ops = kernel_ops("auto", "cpu")
        kernel_ops("auto", "cpu")
    assert ops.path == "reference" and "cpu" in ops.reason
    assert len(_fallback_lines(caplog)) == 1
    with pytest.raises(KernelUnavailableError, match="need CUDA"):
        kernel_ops("fused", "cpu")


def test_ref_is_chosen_silently(no_mamba_ssm, caplog):
    with caplog.at_level(logging.INFO, logger="eegwb.kernels.fused"):
        ops = kernel_ops("ref", "cuda")
    assert ops.path == "reference" and _fallback_lines(caplog) == []
    with pytest.raises(ValueError, match="kernel_backend"):
        kernel_ops("triton", "cpu")


def test_model_reports_its_path_and_fused_on_cpu_raises(no_mamba_ssm):
    model = EEGModel(ModelConfig(**TINY))
    info = model.describe()
    assert info["kernel_path"] == "reference" and info["backbone"] == "mamba2"
    fused = EEGModel(ModelConfig(**TINY, kernel_backend="fused"))
    assert fused.describe()["kernel_path"] == "unavailable"
    x, pad = torch.zeros(1, 3, 16), torch.zeros(1, 3, dtype=torch.bool)
    with pytest.raises(KernelUnavailableError):
        fused(x, torch.tensor([[0.0, 0.0, 1.0]]), pad)
