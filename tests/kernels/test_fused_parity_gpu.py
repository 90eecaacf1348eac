"""Fused Triton path vs the reference path on the same weights (CUDA + mamba_ssm only).

Tolerances follow the issue: fp32 forward relative error <= 2e-3, gradients <= 1e-2; under
bf16 autocast the fused path must run and stay finite. Also checks that a state_dict
moves into mamba-ssm's own `Mamba2` and gives the same outputs.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from eegwb.kernels.fused import fused_available
from eegwb.model import EEGModel, ModelConfig
from eegwb.model.mamba2 import EEGMamba2

_FUSED_OK, _FUSED_WHY = fused_available() if torch.cuda.is_available() else (False, "")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU (fused Triton kernels)"
    ),
    pytest.mark.skipif(
        torch.cuda.is_available() and not _FUSED_OK,
        reason=f"CUDA present but the fused kernels are not: {_FUSED_WHY}",
    ),
]
ARGS = {
    "d_model": 64,
    "d_state": 32,
    "d_conv": 4,
    "expand": 2,
    "headdim": 16,
    "ngroups": 2,
    "chunk_size": 32,
}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-12)).item()


def _pair():
    torch.manual_seed(0)
    ref = EEGMamba2(**ARGS, kernel_backend="ref").cuda()
    fused = copy.deepcopy(ref)
    fused.kernel_backend = "fused"
    assert fused.kernels().path == "fused-triton" and ref.kernels().path == "reference"
    return ref, fused


@pytest.mark.parametrize("seqlen", [50, 128])
def test_block_fused_matches_reference_fp32(seqlen):
    ref, fused = _pair()
    u = torch.randn(3, seqlen, ARGS["d_model"], device="cuda")
    lengths = torch.tensor([[seqlen], [seqlen - 7], [1]], device="cuda")
    pad = torch.arange(seqlen, device="cuda")[None] >= lengths
    outs, grads = [], []
    for block in (ref, fused):
        x = u.clone().requires_grad_()
        y = block(x, pad)
        (y * torch.linspace(-1, 1, y.numel(), device="cuda").view_as(y)).sum().backward()
        outs.append(y.detach())
        grads.append({"input": x.grad, **{n: p.grad for n, p in block.named_parameters()}})
    assert rel(outs[1], outs[0]) <= 2e-3
    for name in grads[0]:
        assert rel(grads[1][name], grads[0][name]) <= 1e-2, name


def test_model_fused_matches_reference_and_bf16_is_finite():
    cfg = ModelConfig(
        window_samples=64,
        d_model=32,
        n_layers=2,
        d_state=16,
        headdim=16,
        chunk_size=16,
        kernel_backend="ref",
    )
    torch.manual_seed(0)
    ref = EEGModel(cfg).cuda()
    fused = EEGModel(replace(cfg, kernel_backend="fused")).cuda()
    fused.load_state_dict(ref.state_dict())
    assert fused.describe()["kernel_path"] == "fused-triton"
    x = torch.randn(4, 40, 64, device="cuda")
    coords = torch.nn.functional.normalize(torch.randn(4, 3, device="cuda"), dim=1)
    pad = torch.arange(40, device="cuda")[None] >= torch.tensor([[40], [33], [12], [5]]).cuda()
    assert rel(fused(x, coords, pad), ref(x, coords, pad)) <= 2e-3
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = fused(x, coords, pad)
        out.float().square().mean().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in fused.parameters() if p.grad is not None)


def test_state_dict_moves_into_upstream_mamba2():
    import importlib.util

    from mamba_ssm.modules.mamba2 import Mamba2

    ours, _ = _pair()
    # Upstream's default memory-efficient path calls causal_conv1d's CUDA functions
    # (None without that package: "'NoneType' object is not callable").
    fused_conv = importlib.util.find_spec("causal_conv1d") is not None
    upstream = Mamba2(**ARGS, use_mem_eff_path=fused_conv).cuda()
    upstream.load_state_dict(ours.state_dict())  # strict: same names and shapes
    u = torch.randn(2, 70, ARGS["d_model"], device="cuda")
    assert rel(ours(u), upstream(u)) <= 2e-3
