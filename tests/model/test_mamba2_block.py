"""EEGMamba2: mamba-ssm's parameter names, shapes, init and forward semantics; exact padding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from eegwb.model.mamba2 import EEGMamba2

# mamba_ssm.modules.mamba2.Mamba2(d_model=64, d_state=16, d_conv=4, expand=2, headdim=16,
# ngroups=2, chunk_size=32).state_dict(), in order: d_inner = 128, nheads = 8,
# in_proj out = 2*128 + 2*2*16 + 8 = 328, conv channels = 128 + 2*2*16 = 192.
UPSTREAM_STATE_DICT = [
    ("dt_bias", (8,)),
    ("A_log", (8,)),
    ("D", (8,)),
    ("in_proj.weight", (328, 64)),
    ("conv1d.weight", (192, 1, 4)),
    ("conv1d.bias", (192,)),
    ("norm.weight", (128,)),
    ("out_proj.weight", (64, 128)),
]
ARGS = {
    "d_model": 64,
    "d_state": 16,
    "d_conv": 4,
    "expand": 2,
    "headdim": 16,
    "ngroups": 2,
    "chunk_size": 32,
}


def test_state_dict_keys_and_shapes_equal_upstream():
    block = EEGMamba2(**ARGS)
    assert [(k, tuple(v.shape)) for k, v in block.state_dict().items()] == UPSTREAM_STATE_DICT


def test_init_follows_upstream():
    torch.manual_seed(0)
    block = EEGMamba2(**ARGS)
    dt = F.softplus(block.dt_bias)  # the inverse-softplus init puts dt back in [dt_min, dt_max]
    assert dt.min() >= 1e-3 - 1e-7 and dt.max() <= 0.1 + 1e-7
    A = torch.exp(block.A_log)
    assert A.min() >= 1.0 and A.max() <= 16.0
    assert torch.equal(block.D, torch.ones(8)) and torch.equal(block.norm.weight, torch.ones(128))
    for p in (block.dt_bias, block.A_log, block.D):
        assert getattr(p, "_no_weight_decay", False)
    assert block.in_proj.bias is None and block.out_proj.bias is None


def manual_mamba2(block: EEGMamba2, u: torch.Tensor) -> torch.Tensor:
    """Upstream Mamba2's forward, written out step by step in float64, one time step at a time."""
    sd = {k: v.double() for k, v in block.state_dict().items()}
    u = u.double()
    b, l, _ = u.shape
    di, g, n = block.d_inner, block.ngroups, block.d_state
    h, p, w = block.nheads, block.headdim, block.d_conv
    zxbcdt = u @ sd["in_proj.weight"].T
    z, xBC, dt = zxbcdt[..., :di], zxbcdt[..., di : 2 * di + 2 * g * n], zxbcdt[..., -h:]
    conv = torch.zeros_like(xBC)
    for t in range(l):  # causal depthwise conv over the last w steps
        for k in range(w):
            if t - (w - 1) + k >= 0:
                conv[:, t] += xBC[:, t - (w - 1) + k] * sd["conv1d.weight"][:, 0, k]
    xBC = F.silu(conv + sd["conv1d.bias"])
    x = xBC[..., :di].reshape(b, l, h, p)
    Bm = xBC[..., di : di + g * n].reshape(b, l, g, n)
    Cm = xBC[..., di + g * n :].reshape(b, l, g, n)
    dt = F.softplus(dt + sd["dt_bias"])
    A = -torch.exp(sd["A_log"])
    state = torch.zeros(b, h, p, n, dtype=torch.float64)
    ys = []
    for t in range(l):
        for head in range(h):
            grp = head // (h // g)
            decay = torch.exp(dt[:, t, head] * A[head])[:, None, None]
            inflow = dt[:, t, head, None, None] * x[:, t, head, :, None] * Bm[:, t, grp, None, :]
            state[:, head] = state[:, head] * decay + inflow
        Ct = Cm[:, t].repeat_interleave(h // g, dim=1)  # (b, h, n): head i reads group i // r
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ct) + x[:, t] * sd["D"][:, None])
    y = torch.stack(ys, 1).reshape(b, l, di) * F.silu(z)  # gate before the norm
    yg = y.reshape(b, l, g, di // g)
    y = (yg / torch.sqrt(yg.pow(2).mean(-1, keepdim=True) + 1e-5)).reshape(b, l, di)
    y = y * sd["norm.weight"]
    return y @ sd["out_proj.weight"].T


def test_forward_equals_upstream_semantics_written_out():
    torch.manual_seed(1)
    block = EEGMamba2(**{**ARGS, "chunk_size": 8})
    with torch.no_grad():  # move off the init so every parameter matters
        for prm in block.parameters():
            prm.add_(0.1 * torch.randn_like(prm))
    u = torch.randn(2, 19, 64)
    expected = manual_mamba2(block, u)
    got = block.double()(u.double())
    assert ((got - expected).norm() / expected.norm()).item() < 1e-10


def test_padding_is_exact_and_pads_output_zero():
    torch.manual_seed(2)
    block = EEGMamba2(**{**ARGS, "chunk_size": 8})
    seq = torch.randn(1, 11, 64)
    alone = block(seq, torch.zeros(1, 11, dtype=torch.bool))
    batch = torch.cat([torch.cat([seq, 50 * torch.randn(1, 6, 64)], 1), torch.randn(1, 17, 64)])
    pad = torch.zeros(2, 17, dtype=torch.bool)
    pad[0, 11:] = True
    out = block(batch, pad)
    assert torch.allclose(out[0, :11], alone[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(out[0, 11:], torch.zeros(6, 64))


def test_bad_head_arguments_are_rejected():
    with pytest.raises(ValueError, match="headdim"):
        EEGMamba2(d_model=10, headdim=6)
    with pytest.raises(ValueError, match="groups"):
        EEGMamba2(d_model=32, headdim=16, ngroups=3)
    assert math.isclose(EEGMamba2(d_model=32, headdim=16).nheads, 4)
