"""`eegwb info [--device DEV] [--json]`: versions, the torch device, and the kernel path.

Says which Mamba-2 kernels `kernel_backend=auto` resolves to on the device, and why
(e.g. "tensors are on cpu" or "mamba_ssm is not importable (...)"), so a slow run on a GPU
machine can be traced to a missing mamba-ssm before it is traced anywhere else.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
from typing import Any

from eegwb.errors import InputError

PACKAGES = (
    "eegwb",
    "torch",
    "mamba-ssm",
    "causal-conv1d",
    "triton",
    "numpy",
    "polars",
    "pyarrow",
    "mne",
    "marimo",
    "mlflow",
    "captum",
    "scipy",
    "scikit-learn",
    "altair",
    "einops",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default=None,
        help="device to resolve the kernel path for (default: cuda if any)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect(device: str | None = None) -> dict[str, Any]:
    """Everything `eegwb info` reports, as a dict (also used by notebooks and run logs)."""
    import torch

    from eegwb.kernels.fused import fused_available, kernel_ops

    cuda = torch.cuda.is_available()
    try:
        dev = torch.device(device or ("cuda" if cuda else "cpu"))
    except RuntimeError as err:  # torch's own message lists the device types it knows
        raise InputError(f"--device {device}: {err}") from err
    if dev.type == "cuda" and not cuda:
        raise InputError(f"--device {dev}: CUDA is not available on this machine")
    ops = kernel_ops("auto", dev)
    fused_ok, fused_why = fused_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "torch": {
            "version": torch.__version__,
            "cuda_build": torch.version.cuda,
            "cuda_available": cuda,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "threads": torch.get_num_threads(),
        },
        "device": str(dev),
        "kernel": {
            "auto_resolves_to": ops.path,
            "reason": ops.reason,
            "mamba_ssm_importable": fused_ok,
            "mamba_ssm_problem": fused_why or None,
        },
    }


def run(args: argparse.Namespace) -> int:
    try:
        info = collect(args.device)
    except InputError as err:  # e.g. --device cuda:3 on a machine without it
        print(f"eegwb info: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    t = info["torch"]
    print(f"python {info['python']} on {info['platform']}")
    print(
        f"torch {t['version']} (CUDA build {t['cuda_build']}), cuda available: "
        f"{t['cuda_available']} {', '.join(t['gpus'])}".rstrip()
    )
    print(f"device: {info['device']}, threads: {t['threads']}")
    k = info["kernel"]
    print(f"kernel_backend=auto -> {k['auto_resolves_to']}: {k['reason']}")
    if not k["mamba_ssm_importable"]:
        print(f"fused kernels: {k['mamba_ssm_problem']}")
    print("packages:")
    for name, version in info["packages"].items():
        print(f"  {name:15s} {version or '-'}")
    return 0
