"""Mamba-2 kernels: the pure-PyTorch SSD reference and the fused mamba-ssm dispatch."""

from eegwb.kernels.fused import KernelOps, KernelUnavailableError, kernel_ops
from eegwb.kernels.ssd_reference import mamba_chunk_scan_ref

__all__ = ["KernelOps", "KernelUnavailableError", "kernel_ops", "mamba_chunk_scan_ref"]
