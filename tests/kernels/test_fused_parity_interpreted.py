"""The fused path's kernels (mamba-ssm's Triton SSD scan and gated RMSNorm) against eegwb's
reference, on CPU through Triton's interpreter: `bash scripts/fused_interpreter.sh`
(the README test command runs it too).

Skipped elsewhere (it needs triton and mamba-ssm's source; see triton_interpreter.py).
The interpreter runs the kernels' float32 arithmetic exactly as written, without the
TF32 matmuls of a GPU, so agreement is held far tighter than the GPU test's 2e-3 / 1e-2.
Slow by nature (a few seconds per kernel launch): shapes are small but not trivial (a
length that is not a multiple of the chunk, several groups, padding).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from triton_interpreter import upstream, why_not_available  # noqa: F401 (fixture)

from eegwb.kernels import fused
from eegwb.kernels.ssd_reference import mamba_chunk_scan_ref, rmsnorm_gated_ref
from eegwb.model.mamba2 import EEGMamba2

pytestmark = pytest.mark.skipif(why_not_available() is not None, reason=why_not_available() or "")

FWD_TOL, GRAD_TOL = 1e-5, 1e-4
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
    return ((a.double() - b.double()).norm() / b.double().norm().clamp(min=1e-30)).item()


def fused_ops() -> fused.KernelOps:
    fns, why = fused._load_mamba_ssm()
    assert fns is not None, why
    return fused._fused_ops(fns, "Triton interpreter on CPU")


def forward_backward(fn, inputs: dict[str, torch.Tensor], weight: torch.Tensor, **kwargs):
    """fn(**inputs) and the gradients of sum(out * weight) w.r.t. every input."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    out = fn(**leaves, **kwargs)
    y = out[0] if isinstance(out, tuple) else out
    loss = (y * weight).sum() + (out[1].square().sum() if isinstance(out, tuple) else 0)
    loss.backward()
    return out, {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("case", ["block-style", "raw-dt-clamped", "softplus-dt"])
def test_triton_scan_matches_reference(upstream, case):  # noqa: F811
    gen = torch.Generator().manual_seed(1)
    b, l, h, p, g, n, chunk = 2, 50, 4, 16, 2, 16, 16

    def rnd(*shape):
        return torch.randn(*shape, generator=gen)

    inputs = {
        "x": rnd(b, l, h, p),
        "A": -torch.exp(rnd(h)),
        "B": rnd(b, l, g, n),
        "C": rnd(b, l, g, n),
    }
    if case == "block-style":  # how EEGMamba2 calls it: dt already softplus-ed, D per head
        inputs |= {"dt": F.softplus(rnd(b, l, h) - 1), "D": rnd(h)}
        kwargs = {}
    else:  # raw dt + bias (without softplus some are < 0: clamped to dt_limit), a gate,
        # a (h, p) skip, entering states and the final states
        inputs |= {
            "dt": rnd(b, l, h) - 0.5,
            "dt_bias": 0.3 * rnd(h),
            "D": rnd(h, p),
            "z": rnd(b, l, h, p),
            "initial_states": rnd(b, h, p, n),
        }
        kwargs = {"dt_softplus": case == "softplus-dt", "return_final_states": True}
    weight = rnd(b, l, h, p)
    ops = fused_ops()
    ref_out, ref_grads = forward_backward(
        mamba_chunk_scan_ref, inputs, weight, chunk_size=chunk, **kwargs
    )
    tri_out, tri_grads = forward_backward(
        ops.chunk_scan, inputs, weight, chunk_size=chunk, **kwargs
    )
    if isinstance(ref_out, tuple):
        assert rel(tri_out[1], ref_out[1]) <= FWD_TOL, "final states"
        ref_out, tri_out = ref_out[0], tri_out[0]
    assert rel(tri_out, ref_out) <= FWD_TOL
    for name in inputs:
        assert rel(tri_grads[name], ref_grads[name]) <= GRAD_TOL, name


def test_triton_gated_rmsnorm_matches_reference(upstream):  # noqa: F811
    gen = torch.Generator().manual_seed(2)
    inputs = {
        "x": torch.randn(3, 20, 128, generator=gen),
        "weight": 1 + 0.1 * torch.randn(128, generator=gen),
        "z": torch.randn(3, 20, 128, generator=gen),
    }
    weight = torch.randn(3, 20, 128, generator=gen)
    kwargs = {"eps": 1e-5, "group_size": 64, "norm_before_gate": False}
    ref_out, ref_grads = forward_backward(rmsnorm_gated_ref, inputs, weight, **kwargs)
    tri_out, tri_grads = forward_backward(fused_ops().rmsnorm_gated, inputs, weight, **kwargs)
    assert rel(tri_out, ref_out) <= FWD_TOL
    for name in inputs:
        assert rel(tri_grads[name], ref_grads[name]) <= GRAD_TOL, name


def test_block_on_fused_kernels_matches_reference_with_padding(upstream):  # noqa: F811
    torch.manual_seed(0)
    ref = EEGMamba2(**ARGS, kernel_backend="ref")
    with torch.no_grad():  # move the parameters off their initial values
        ref.D.normal_()
        ref.norm.weight.mul_(1 + 0.1 * torch.randn_like(ref.norm.weight))
    on_fused = copy.deepcopy(ref)
    ops = fused_ops()
    on_fused.kernels = lambda device=None: ops  # the decision kernel_ops makes on CUDA
    seqlen = 50
    u = torch.randn(3, seqlen, ARGS["d_model"])
    pad = torch.arange(seqlen)[None] >= torch.tensor([[seqlen], [seqlen - 7], [1]])
    weight = torch.randn(3, seqlen, ARGS["d_model"])
    outs, grads = [], []
    for block in (ref, on_fused):
        x = u.clone().requires_grad_()
        y = block(x, pad)
        (y * weight).sum().backward()
        outs.append(y.detach())
        grads.append({"input": x.grad, **{n: p.grad for n, p in block.named_parameters()}})
    assert outs[1][pad].abs().max() == 0  # pads stay exactly zero on the fused path too
    assert rel(outs[1], outs[0]) <= FWD_TOL
    for name in grads[0]:
        assert rel(grads[1][name], grads[0][name]) <= GRAD_TOL, name


def test_state_dict_moves_into_upstream_mamba2(upstream):  # noqa: F811
    from mamba_ssm.modules.mamba2 import Mamba2

    torch.manual_seed(0)
    ours = EEGMamba2(**ARGS, kernel_backend="ref")
    theirs = Mamba2(**ARGS, use_mem_eff_path=False)  # the fused path needs causal_conv1d
    theirs.load_state_dict(ours.state_dict())  # strict: same names and shapes
    u = torch.randn(2, 50, ARGS["d_model"])
    with torch.no_grad():
        assert rel(theirs(u), ours(u)) <= FWD_TOL
