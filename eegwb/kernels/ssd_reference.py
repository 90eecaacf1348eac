"""Mamba-2's kernels in pure PyTorch: the reference path (CPU, any device, autograd).

`mamba_chunk_scan_ref` mirrors `mamba_ssm.ops.triton.ssd_combined.mamba_chunk_scan_combined`
(same signature and semantics) and follows the four numbered steps of
`mamba_ssm/modules/ssd_minimal.py` (Listing 1 of the Mamba-2 paper), rewritten for CPU,
where the scan is bound by matmul FLOPs and memory passes:
- no work that adds nothing: chunk 0 entered with a zero state gets no state->output
  term, and the last chunk's state is formed only when the final state is asked for
  (at the default L = 124, chunk 64 this halves steps 2 and 4);
- C B^T once per group rather than per head; a group's heads stacked into one matmul for
  the chunk states; views of the (b, l, h, p) input instead of permuted copies;
- the intra-chunk decay from differences of one cumulative sum (as the Triton kernels
  do), not a cumulative sum over a repeated (q, q) matrix; the inter-chunk recurrence
  chunk by chunk (c is small, and a running product is stable).
`rmsnorm_gated_ref` mirrors `mamba_ssm.ops.triton.layernorm_gated.rms_norm_ref` and
`causal_conv1d_ref` mirrors `causal_conv1d.causal_conv1d_fn`.

Shape letters: b batch, l sequence, h heads, p head dim, g groups (each group's B and C
serve r = h / g heads), n state, c chunks, q positions within a chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def mamba_chunk_scan_ref(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = (0.0, float("inf")),
    return_final_states: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The SSD scan h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T,  y_t = h_t C_t + D x_t.

    x: (b, l, h, p); dt: (b, l, h); A: (h,) (negative); B, C: (b, l, g, n);
    D: (h, p) or (h,); z: (b, l, h, p) gate (y * silu(z)); dt_bias: (h,);
    initial_states: (b, h, p, n). dt (after dt_bias and softplus) is clamped to dt_limit,
    as upstream's kernels always do: a negative dt never grows the state. Any l: the tail is
    padded to a chunk multiple with dt = 0, which leaves the state untouched. Low-precision
    inputs are scanned in float32.
    Returns y (b, l, h, p) in x's dtype, and the final states (b, h, p, n) if asked.
    """
    b, l, h, _ = x.shape
    g, n = B.shape[-2:]
    if dt.shape != (b, l, h) or A.shape != (h,) or B.shape != (b, l, g, n) or C.shape != B.shape:
        raise ValueError(
            f"mamba_chunk_scan_ref: shapes do not fit x{tuple(x.shape)}: dt{tuple(dt.shape)} "
            f"A{tuple(A.shape)} B{tuple(B.shape)} C{tuple(C.shape)}"
        )
    if h % g != 0:
        raise ValueError(f"mamba_chunk_scan_ref: {h} heads cannot share {g} groups")
    if l < 1 or chunk_size < 1:
        raise ValueError(
            f"mamba_chunk_scan_ref: need l >= 1 and chunk_size >= 1, got {l}, {chunk_size}"
        )
    out_dtype = x.dtype
    work = torch.float32 if x.dtype in _LOW_PRECISION else x.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, dt, A, B, C = (t.to(work) for t in (x, dt, A, B, C))
        if dt_bias is not None:
            dt = dt + dt_bias.to(work)
        if dt_softplus:
            dt = F.softplus(dt)
        dt = dt.clamp(*dt_limit)
        y, final = _chunk_scan(x, dt, A, B, C, chunk_size, initial_states, return_final_states)
        if D is not None:
            D = D.to(work)
            y = y + x * (D if D.dim() == 2 else D[:, None])  # D skip, (h, p) or (h, 1)
        if z is not None:
            y = y * F.silu(z.to(work))
    y = y.to(out_dtype)
    return (y, final) if return_final_states else y


def _chunk_scan(x, dt, A, B, C, chunk_size, initial_states, want_final):
    """The scan proper, on softplus-ed dt: y (b, l, h, p) and final states (or None)."""
    b, l, h, p = x.shape
    g, n = B.shape[-2:]
    r, q = h // g, chunk_size
    pad = (-l) % q
    if pad:  # dt = 0 on the tail: decay exp(0) = 1 and no input, so states pass through
        x, B, C = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (x, B, C))
        dt = F.pad(dt, (0, 0, 0, pad))
    c = (l + pad) // q
    # Discretise as ssd_minimal does: X = x * dt, A_t = A * dt. Views, no copies.
    xdt = (x * dt[..., None]).view(b, c, q, g, r, p)
    dA_cs = torch.cumsum((dt * A).view(b, c, q, g, r), dim=2)  # (b, c, q, g, r)
    Bc = B.view(b, c, q, g, n).transpose(2, 3)  # (b, c, g, q, n)
    Cc = C.view(b, c, q, g, n).transpose(2, 3)  # (b, c, g, q, n)

    # 1. Intra-chunk outputs (diagonal blocks): y = (C B^T o L) X, L the causal decay.
    CB = Cc @ Bc.transpose(-1, -2)  # (b, c, g, q, q), once per group, not per head
    cs = dA_cs.permute(0, 1, 3, 4, 2)  # (b, c, g, r, q)
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    seg = (cs[..., :, None] - cs[..., None, :]).masked_fill(~causal, float("-inf"))
    y = torch.einsum("bcgrqs,bcsgrp->bcqgrp", CB[:, :, :, None] * torch.exp(seg), xdt)

    # 2. The state each chunk leaves (B terms), a group's heads stacked into one matmul.
    # The last chunk's own state is needed only as the final state.
    k_used = c if want_final else c - 1
    decay = torch.exp(dA_cs[:, :k_used, -1:] - dA_cs[:, :k_used])  # (b, k, q, g, r)
    xw = (xdt[:, :k_used] * decay[..., None]).transpose(2, 3).reshape(b, k_used, g, q, r * p)
    states = xw.transpose(-1, -2) @ Bc[:, :k_used]  # (b, k, g, r*p, n)

    # 3. Inter-chunk recurrence (A terms), chunk by chunk: c is small and this is stable.
    chunk_decay = torch.exp(dA_cs[:, :, -1]).repeat_interleave(p, dim=-1)[..., None]  # (b,c,g,rp,1)
    s = None if initial_states is None else initial_states.to(x.dtype).reshape(b, g, r * p, n)
    starts = []  # the state entering each chunk; None = zero
    for k in range(c):
        starts.append(s)
        if k < k_used:
            s = states[:, k] if s is None else s * chunk_decay[:, k] + states[:, k]

    # 4. State -> output (C terms); a chunk entered with a zero state adds nothing.
    first = 0 if starts[0] is not None else 1
    if first < c:
        st = torch.stack(starts[first:], dim=1)  # (b, c - first, g, r*p, n)
        y_off = (Cc[:, first:] @ st.transpose(-1, -2)).view(b, c - first, g, q, r, p)
        y_off = y_off.transpose(2, 3) * torch.exp(dA_cs[:, first:]).unsqueeze(-1)
        y = y + y_off if first == 0 else torch.cat([y[:, :1], y[:, 1:] + y_off], dim=1)
    y = y.reshape(b, c * q, h, p)[:, :l]
    final = None
    if want_final:
        final = s.reshape(b, h, p, n) if s is not None else x.new_zeros(b, h, p, n)
    return y, final


def rmsnorm_gated_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    z: torch.Tensor | None = None,
    *,
    eps: float = 1e-5,
    group_size: int | None = None,
    norm_before_gate: bool = False,
) -> torch.Tensor:
    """Gated RMSNorm over the last dim (d), per group of `group_size`: Mamba-2's output norm.

    norm_before_gate=False (Mamba-2): rmsnorm(x * silu(z)) * weight. Half types in float32.
    """
    dtype = x.dtype
    work = torch.float32 if dtype in _LOW_PRECISION else dtype
    x = x.to(work)
    if z is not None and not norm_before_gate:
        x = x * F.silu(z.to(work))
    group = x.shape[-1] if group_size is None else group_size
    xg = x.unflatten(-1, (-1, group))  # (..., groups, group_size)
    out = (xg * torch.rsqrt(xg.square().mean(-1, keepdim=True) + eps)).flatten(-2)
    out = out * weight.to(work)
    if z is not None and norm_before_gate:
        out = out * F.silu(z.to(work))
    return out.to(dtype)


def causal_conv1d_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
) -> torch.Tensor:
    """Depthwise causal conv: x (b, d, l), weight (d, w) -> (b, d, l); output t sees x[t-w+1..t]."""
    w = weight.shape[-1]
    out = F.conv1d(F.pad(x, (w - 1, 0)), weight.unsqueeze(1), bias, groups=x.shape[1])
    if activation in ("silu", "swish"):
        out = F.silu(out)
    elif activation is not None:
        raise ValueError(f"causal_conv1d_ref: activation {activation!r} is not 'silu'")
    return out
