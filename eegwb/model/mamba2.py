"""The Mamba-2 block, with mamba-ssm's parameter names so state_dicts move both ways.

Mirrors `mamba_ssm.modules.mamba2.Mamba2` (its non-fused-split forward): packed input
projection `[z, x, B, C, dt]`, causal depthwise conv + SiLU over xBC, softplus(dt +
dt_bias), the SSD scan with a D skip, gated RMSNorm (y * silu(z), then RMSNorm), out_proj.
Which kernels run (fused Triton or pure PyTorch) is decided by `eegwb.kernels.fused`.

Glossary: b batch, l sequence (windows), d model width, h heads, p head dim, g groups,
n state size, w conv width.

Padding: with `pad_mask`, xBC is zeroed before and after the conv and dt is set to 0
after the softplus at pads, so a pad neither feeds the state nor decays it, and the
block's output at a pad is exactly 0 (y = C h = 0, norm(0) = 0, out_proj has no bias).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from eegwb.kernels.fused import KernelOps, kernel_ops
from eegwb.kernels.ssd_reference import rmsnorm_gated_ref


class RMSNormGated(nn.Module):
    """mamba_ssm's `layernorm_gated.RMSNorm`: rmsnorm(x * silu(z)) * weight, per group."""

    def __init__(
        self,
        hidden_size: int,
        eps: float = 1e-5,
        group_size: int | None = None,
        norm_before_gate: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.eps = eps
        self.group_size = group_size
        self.norm_before_gate = norm_before_gate
        self.weight = nn.Parameter(torch.ones(hidden_size, device=device, dtype=dtype))
        self.register_parameter("bias", None)  # upstream has none either

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """The reference function as a module call, so forward hooks fire: the autopsy's
        hookable path (experiments/activations.py) calls it. `EEGMamba2.forward` calls its
        kernel bundle's `rmsnorm_gated` (fused or reference) on `weight` directly."""
        return rmsnorm_gated_ref(
            x,
            self.weight,
            z,
            eps=self.eps,
            group_size=self.group_size,
            norm_before_gate=self.norm_before_gate,
        )


class EEGMamba2(nn.Module):
    """One Mamba-2 mixer: (b, l, d) -> (b, l, d). Upstream's constructor arguments."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 128,
        d_conv: int = 4,
        expand: int = 2,
        headdim: int = 64,
        ngroups: int = 1,
        chunk_size: int = 256,
        *,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        bias: bool = False,
        conv_bias: bool = True,
        kernel_backend: str = "auto",
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.expand, self.headdim, self.ngroups = expand, headdim, ngroups
        self.chunk_size = chunk_size
        self.kernel_backend = kernel_backend
        self.d_inner = expand * d_model
        if self.d_inner % headdim:
            raise ValueError(f"EEGMamba2: d_inner={self.d_inner} is not a multiple of headdim")
        self.nheads = self.d_inner // headdim
        if self.nheads % ngroups:
            raise ValueError(f"EEGMamba2: {self.nheads} heads cannot share {ngroups} groups")
        # Benchmarks and tests may swap in another scan with the same signature.
        self.scan_override: Callable[..., torch.Tensor] | None = None

        # Order: [z, x, B, C, dt]
        d_in_proj = 2 * self.d_inner + 2 * ngroups * d_state + self.nheads
        self.in_proj = nn.Linear(d_model, d_in_proj, bias=bias, **factory)
        conv_dim = self.d_inner + 2 * ngroups * d_state
        self.conv1d = nn.Conv1d(
            conv_dim,
            conv_dim,
            kernel_size=d_conv,
            groups=conv_dim,
            padding=d_conv - 1,
            bias=conv_bias,
            **factory,
        )

        # dt initialised log-uniform in [dt_min, dt_max]; dt_bias = softplus^-1(dt).
        dt = torch.exp(
            torch.rand(self.nheads, **factory) * (math.log(dt_max) - math.log(dt_min))
            + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.dt_bias._no_weight_decay = True
        lo, hi = A_init_range
        if not 0 < lo <= hi:
            raise ValueError(f"EEGMamba2: A_init_range {A_init_range} must satisfy 0 < lo <= hi")
        A = torch.empty(self.nheads, dtype=torch.float32, device=device).uniform_(lo, hi)
        self.A_log = nn.Parameter(torch.log(A).to(dtype=dtype))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(self.nheads, device=device))  # the skip
        self.D._no_weight_decay = True
        self.norm = RMSNormGated(
            self.d_inner,
            eps=1e-5,
            group_size=self.d_inner // ngroups,
            norm_before_gate=False,
            **factory,
        )
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def kernels(self, device: torch.device | str | None = None) -> KernelOps:
        """The kernel bundle this block runs with on `device` (default: its weights')."""
        return kernel_ops(self.kernel_backend, device or self.out_proj.weight.device)

    def forward(self, u: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """u (b, l, d), pad_mask (b, l) bool True at pads -> (b, l, d), exactly 0 at pads."""
        ops = self.kernels(u.device)
        g, n, h = self.ngroups, self.d_state, self.nheads
        zxbcdt = self.in_proj(u)  # (b, l, 2*d_inner + 2*g*n + h)
        z, xBC, dt = torch.split(zxbcdt, [self.d_inner, self.d_inner + 2 * g * n, h], dim=-1)
        keep = None if pad_mask is None else (~pad_mask).unsqueeze(-1).to(xBC.dtype)  # (b, l, 1)
        if keep is not None:
            xBC = xBC * keep  # the conv sees zeros at pads
        xBC = ops.causal_conv1d(
            xBC.transpose(1, 2).contiguous(),
            rearrange(self.conv1d.weight, "c 1 w -> c w"),
            self.conv1d.bias,
            activation="silu",
        ).transpose(1, 2)
        dt = F.softplus(dt + self.dt_bias)  # (b, l, h)
        if keep is not None:
            xBC = xBC * keep
            dt = dt * keep.to(dt.dtype)
        x, B, C = torch.split(xBC, [self.d_inner, g * n, g * n], dim=-1)
        A = -torch.exp(self.A_log.to(torch.promote_types(self.A_log.dtype, torch.float32)))  # (h,)
        scan = self.scan_override or ops.chunk_scan
        y = scan(
            rearrange(x, "b l (h p) -> b l h p", p=self.headdim),
            dt,
            A,
            rearrange(B, "b l (g n) -> b l g n", g=g),
            rearrange(C, "b l (g n) -> b l g n", g=g),
            self.chunk_size,
            D=self.D,
        )  # (b, l, h, p)
        y = rearrange(y, "b l h p -> b l (h p)")
        y = ops.rmsnorm_gated(
            y,
            self.norm.weight,
            z,
            eps=self.norm.eps,
            group_size=self.norm.group_size,
            norm_before_gate=False,
        )
        return self.out_proj(y)
