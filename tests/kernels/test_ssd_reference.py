"""The pure-PyTorch SSD scan against a step-by-step recurrence written here, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from eegwb.kernels.ssd_reference import (
    causal_conv1d_ref,
    mamba_chunk_scan_ref,
    rmsnorm_gated_ref,
)


def naive_scan(x, dt, A, B, C, D=None, z=None, initial_states=None):
    """h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T;  y_t = h_t C_t + D x_t; one step at a time."""
    b, l, h, p = x.shape
    g, n = B.shape[-2:]
    r = h // g
    state = torch.zeros(b, h, p, n, dtype=x.dtype) if initial_states is None else initial_states
    ys = []
    for t in range(l):
        Bt = B[:, t].repeat_interleave(r, dim=1)  # (b, h, n): head i uses group i // r
        Ct = C[:, t].repeat_interleave(r, dim=1)
        decay = torch.exp(dt[:, t] * A)  # (b, h)
        inflow = (dt[:, t, :, None] * x[:, t])[..., None] * Bt[:, :, None, :]  # (b, h, p, n)
        state = state * decay[:, :, None, None] + inflow
        y = (state * Ct[:, :, None, :]).sum(-1)  # (b, h, p)
        if D is not None:
            y = y + x[:, t] * (D if D.dim() == 2 else D[:, None])
        if z is not None:
            y = y * F.silu(z[:, t])
        ys.append(y)
    return torch.stack(ys, dim=1), state


def random_inputs(b, l, h, p, g, n, gen, dtype=torch.float64):
    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    x = rnd(b, l, h, p)
    dt = F.softplus(rnd(b, l, h) - 1.0)
    A = -torch.exp(rnd(h))
    return x, dt, A, rnd(b, l, g, n), rnd(b, l, g, n)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("seed", range(6))
def test_reference_matches_recurrence_float64(seed):
    gen = torch.Generator().manual_seed(seed)

    def pick(opts):
        return opts[int(torch.randint(len(opts), (1,), generator=gen))]

    chunk = pick([4, 8, 16])
    l = int(torch.randint(1, 4 * chunk, (1,), generator=gen))
    if seed < 3:  # make sure lengths that are not a chunk multiple are covered
        l = chunk * 2 + 1 + seed
    g = pick([1, 2])
    h = g * pick([1, 2, 3])
    b, p, n = pick([1, 2, 3]), pick([2, 5]), pick([3, 4, 8])
    x, dt, A, B, C = random_inputs(b, l, h, p, g, n, gen)
    D = torch.randn(h, generator=gen, dtype=torch.float64)
    init = torch.randn(b, h, p, n, generator=gen, dtype=torch.float64)
    y, final = mamba_chunk_scan_ref(
        x, dt, A, B, C, chunk, D=D, initial_states=init, return_final_states=True
    )
    y_naive, final_naive = naive_scan(x, dt, A, B, C, D=D, initial_states=init)
    assert y.shape == (b, l, h, p) and y.dtype == torch.float64
    assert rel_err(y, y_naive) <= 1e-10, (l, chunk)
    assert rel_err(final, final_naive) <= 1e-10


def test_reference_softplus_bias_gate_and_headdim_D():
    gen = torch.Generator().manual_seed(11)
    b, l, h, p, g, n = 2, 11, 4, 3, 2, 5
    x, raw_dt, A, B, C = random_inputs(b, l, h, p, g, n, gen)
    dt_bias = torch.randn(h, generator=gen, dtype=torch.float64)
    D = torch.randn(h, p, generator=gen, dtype=torch.float64)
    z = torch.randn(b, l, h, p, generator=gen, dtype=torch.float64)
    y = mamba_chunk_scan_ref(x, raw_dt, A, B, C, 4, D=D, z=z, dt_bias=dt_bias, dt_softplus=True)
    y_naive, _ = naive_scan(x, F.softplus(raw_dt + dt_bias), A, B, C, D=D, z=z)
    assert rel_err(y, y_naive) <= 1e-10


@pytest.mark.parametrize("limit", [(0.0, float("inf")), (0.05, 0.4)])
def test_reference_clamps_dt_to_dt_limit_as_upstream_does(limit):
    """Upstream's kernels clamp dt (after bias and softplus) to dt_limit, default (0, inf):
    without softplus a negative dt must not grow the state."""
    gen = torch.Generator().manual_seed(13)
    b, l, h, p, g, n = 2, 19, 4, 3, 2, 5
    x, _, A, B, C = random_inputs(b, l, h, p, g, n, gen)
    raw_dt = torch.randn(b, l, h, generator=gen, dtype=torch.float64)  # ~half negative
    dt_bias = 0.1 * torch.randn(h, generator=gen, dtype=torch.float64)
    y = mamba_chunk_scan_ref(x, raw_dt, A, B, C, 8, dt_bias=dt_bias, dt_limit=limit)
    y_naive, _ = naive_scan(x, (raw_dt + dt_bias).clamp(*limit), A, B, C)
    assert rel_err(y, y_naive) <= 1e-10
    unclamped, _ = naive_scan(x, raw_dt + dt_bias, A, B, C)
    assert rel_err(y, unclamped) > 1e-3  # the clamp did something here


def test_reference_float32_and_bfloat16_inputs():
    gen = torch.Generator().manual_seed(3)
    x, dt, A, B, C = random_inputs(2, 40, 4, 8, 1, 16, gen)
    y_ref, _ = naive_scan(x, dt, A, B, C)
    y32 = mamba_chunk_scan_ref(*(t.float() for t in (x, dt, A, B, C)), 16)
    assert y32.dtype == torch.float32 and rel_err(y32.double(), y_ref) < 1e-5
    y16 = mamba_chunk_scan_ref(*(t.bfloat16() for t in (x, dt, A, B, C)), 16)
    assert y16.dtype == torch.bfloat16 and rel_err(y16.double(), y_ref) < 5e-2


def test_reference_gradcheck_tiny_float64():
    gen = torch.Generator().manual_seed(5)
    x, dt, A, B, C = random_inputs(1, 6, 2, 2, 1, 3, gen)
    D = torch.randn(2, generator=gen, dtype=torch.float64)
    inputs = tuple(t.clone().requires_grad_() for t in (x, dt, A, B, C, D))

    def f(x, dt, A, B, C, D):
        return mamba_chunk_scan_ref(x, dt, A, B, C, 4, D=D)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7)


def test_rmsnorm_gated_matches_formula():
    gen = torch.Generator().manual_seed(0)
    x, z = torch.randn(2, 3, 8, generator=gen), torch.randn(2, 3, 8, generator=gen)
    w = torch.randn(8, generator=gen)
    out = rmsnorm_gated_ref(x, w, z, eps=1e-5, group_size=4)
    gated = (x * F.silu(z)).view(2, 3, 2, 4)
    expected = (gated / torch.sqrt(gated.pow(2).mean(-1, keepdim=True) + 1e-5)).view(2, 3, 8) * w
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_causal_conv_sees_only_the_past():
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 3, 10, generator=gen), torch.randn(3, 4, generator=gen)
    out = causal_conv1d_ref(x, w, None)
    x2 = x.clone()
    x2[..., 6:] = 100.0  # the future must not change outputs up to t = 5
    assert torch.allclose(causal_conv1d_ref(x2, w, None)[..., :6], out[..., :6])
    assert out[0, 1, 2].item() == pytest.approx((x[0, 1, :3] * w[1, 1:]).sum().item(), rel=1e-5)
