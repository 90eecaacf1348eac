"""The one place that decides which kernels Mamba-2 runs on: fused Triton or reference.

`kernel_ops(requested, device)` returns a `KernelOps` bundle (chunked scan, gated RMSNorm,
causal conv) and says why. On CUDA, when `mamba_ssm` imports (lazily: it needs its CUDA
build, so any ImportError/OSError/RuntimeError counts as "absent"), the fused Triton
kernels of `mamba_ssm.ops.triton` are used, and `causal_conv1d_fn` when that package is
present. `auto` otherwise falls back to `eegwb.kernels.ssd_reference` with one log line;
an explicit `fused` that cannot be met raises `KernelUnavailableError`. Both paths compute
the same architecture with the same weights; only the speed differs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from eegwb.kernels.ssd_reference import causal_conv1d_ref, mamba_chunk_scan_ref, rmsnorm_gated_ref

log = logging.getLogger(__name__)

KernelPath = Literal["fused-triton", "reference"]
_IMPORT_FAILURES = (ImportError, OSError, RuntimeError)


class KernelUnavailableError(RuntimeError):
    """`kernel_backend='fused'` was asked for and cannot be given."""


@dataclass(frozen=True)
class KernelOps:
    path: KernelPath
    reason: str
    chunk_scan: Callable[..., torch.Tensor]  # signature of mamba_chunk_scan_combined
    rmsnorm_gated: Callable[..., torch.Tensor]  # signature of rmsnorm_gated_ref
    causal_conv1d: Callable[..., torch.Tensor]  # (x (b, d, l), weight (d, w), bias, activation)


@functools.cache
def _load_mamba_ssm() -> tuple[dict[str, Callable] | None, str]:
    """Import the fused kernels once; (functions, "") or (None, why not)."""
    try:
        from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except _IMPORT_FAILURES as err:
        return None, f"mamba_ssm is not importable ({type(err).__name__}: {err})"
    fns: dict[str, Callable] = {"scan": mamba_chunk_scan_combined, "rmsnorm": rmsnorm_fn}
    try:
        from causal_conv1d import causal_conv1d_fn

        fns["conv"] = causal_conv1d_fn
    except _IMPORT_FAILURES:
        pass  # optional: the reference conv is a cuDNN depthwise conv on CUDA anyway
    return fns, ""


def fused_available() -> tuple[bool, str]:
    """Whether mamba_ssm's Triton kernels import here, and if not, why."""
    fns, why = _load_mamba_ssm()
    return fns is not None, why


def _fused_ops(fns: dict[str, Callable], reason: str) -> KernelOps:
    upstream_scan, upstream_rmsnorm = fns["scan"], fns["rmsnorm"]

    def chunk_scan(
        x,
        dt,
        A,
        B,
        C,
        chunk_size,
        D=None,
        z=None,
        dt_bias=None,
        initial_states=None,
        dt_softplus=False,
        dt_limit=(0.0, float("inf")),
        return_final_states=False,
    ):
        return upstream_scan(
            x,
            dt,
            A,
            B,
            C,
            chunk_size,
            D=D,
            z=z,
            dt_bias=dt_bias,
            initial_states=initial_states,
            dt_softplus=dt_softplus,
            dt_limit=dt_limit,
            return_final_states=return_final_states,
        )

    def rmsnorm_gated(x, weight, z=None, *, eps=1e-5, group_size=None, norm_before_gate=False):
        return upstream_rmsnorm(
            x, weight, None, z=z, eps=eps, group_size=group_size, norm_before_gate=norm_before_gate
        )

    conv = fns.get("conv")
    if conv is None:
        conv_fn = causal_conv1d_ref
    else:

        def conv_fn(x, weight, bias=None, activation=None):
            return conv(x, weight, bias=bias, activation=activation)

    return KernelOps("fused-triton", reason, chunk_scan, rmsnorm_gated, conv_fn)


REFERENCE = functools.partial(
    KernelOps,
    "reference",
    chunk_scan=mamba_chunk_scan_ref,
    rmsnorm_gated=rmsnorm_gated_ref,
    causal_conv1d=causal_conv1d_ref,
)


@functools.cache
def _resolve(requested: str, device_type: str) -> KernelOps:
    if requested not in ("auto", "ref", "fused"):
        raise ValueError(f"kernel_backend: {requested!r} is not one of ('auto', 'ref', 'fused')")
    if requested == "ref":
        return REFERENCE(reason="kernel_backend='ref' asked for the pure-PyTorch SSD")
    if device_type != "cuda":
        why = f"tensors are on {device_type}, the fused Triton kernels need CUDA"
    else:
        fns, why = _load_mamba_ssm()
        if fns is not None:
            conv = "causal_conv1d_fn" if "conv" in fns else "reference conv (no causal_conv1d)"
            return _fused_ops(fns, f"CUDA and mamba_ssm import: Triton SSD + gated RMSNorm, {conv}")
    if requested == "fused":
        raise KernelUnavailableError(f"kernel_backend='fused' cannot be met: {why}")
    log.info("kernel_backend=auto -> reference PyTorch SSD: %s", why)
    return REFERENCE(reason=why)


def kernel_ops(requested: str, device: torch.device | str) -> KernelOps:
    """The kernels Mamba-2 blocks use for tensors on `device` (decided once per pair)."""
    return _resolve(requested, torch.device(device).type)


def reset_kernel_cache() -> None:
    """Forget every decision and import attempt (tests; after installing mamba_ssm)."""
    _resolve.cache_clear()
    _load_mamba_ssm.cache_clear()


def mamba_chunk_scan_combined(
    x,
    dt,
    A,
    B,
    C,
    chunk_size,
    D=None,
    z=None,
    dt_bias=None,
    initial_states=None,
    dt_softplus=False,
    dt_limit=(0.0, float("inf")),
    return_final_states=False,
    *,
    backend: str = "auto",
):
    """The SSD scan on `backend`; same signature as `mamba_chunk_scan_ref` (see there)."""
    ops = kernel_ops(backend, x.device)
    return ops.chunk_scan(
        x,
        dt,
        A,
        B,
        C,
        chunk_size,
        D=D,
        z=z,
        dt_bias=dt_bias,
        initial_states=initial_states,
        dt_softplus=dt_softplus,
        dt_limit=dt_limit,
        return_final_states=return_final_states,
    )
