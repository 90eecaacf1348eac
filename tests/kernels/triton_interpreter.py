"""Run mamba-ssm's fused Triton kernels on CPU tensors, through Triton's interpreter.

Without a GPU this is the one way to hold eegwb's reference path against the kernels its
fused path runs. `scripts/interpreter_env.sh` puts triton and mamba-ssm's source in
.interp/ and sets TRITON_INTERPRET=1 and EEGWB_MAMBA_SSM_SRC; the README's test command
and `scripts/fused_interpreter.sh` source it.

The interpreter executes each kernel's own arithmetic (numpy, float32); only what a GPU
driver would provide is stood in for, and none of it touches the numbers:
- `torch.cuda.device(None)` is a no-op (CPU-only torch raises in `__enter__`);
- the autotuner keeps one config (it cannot time kernels without a driver);
- `get_device_properties(cpu).multi_processor_count` (grid sizes in backward wrappers).
mamba_ssm's package `__init__` is skipped (it imports the CUDA extension and
`transformers`): its submodules load from the source tree named by EEGWB_MAMBA_SSM_SRC.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

SOURCE_ENV = "EEGWB_MAMBA_SSM_SRC"
HOW = "run scripts/fused_interpreter.sh"


def why_not_available() -> str | None:
    """None when the interpreter, triton and mamba-ssm's source are all in place."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return f"needs TRITON_INTERPRET=1, triton and mamba-ssm's source ({HOW})"
    if importlib.util.find_spec("triton") is None:
        return f"triton is not importable ({HOW})"
    src = os.environ.get(SOURCE_ENV)
    if not src or not (Path(src) / "mamba_ssm" / "ops" / "triton").is_dir():
        return f"{SOURCE_ENV} must name an unpacked mamba-ssm sdist ({HOW})"
    return None


class _DeviceNoneIsNoOp(torch.cuda.device):
    """`torch.cuda.device(None)`, documented as a no-op, raises on CPU-only torch."""

    def __enter__(self):
        return self if self.idx is None else super().__enter__()

    def __exit__(self, *exc):
        return False if self.idx is None else super().__exit__(*exc)


def _cpu_device_properties(original):
    def properties(device=None):
        if device is not None and torch.device(device).type == "cpu":
            return types.SimpleNamespace(multi_processor_count=4, name="cpu (Triton interpreter)")
        return original(device)

    return properties


def _one_config(original):
    def prune(self, kwargs):
        return original(self, kwargs)[-1:]  # any config computes the same; the last is quickest

    return prune


@pytest.fixture(scope="module")
def upstream() -> Iterator[types.ModuleType]:
    """mamba_ssm (its submodules importable), with the interpreter's stand-ins in place."""
    why = why_not_available()
    if why:
        pytest.skip(why)
    from triton.runtime import autotuner

    from eegwb.kernels.fused import reset_kernel_cache

    package = types.ModuleType("mamba_ssm")
    package.__path__ = [str(Path(os.environ[SOURCE_ENV]) / "mamba_ssm")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "mamba_ssm", package)
        if importlib.util.find_spec("huggingface_hub") is None:  # only Mamba2's hub mixin
            hub = types.ModuleType("huggingface_hub")
            hub.PyTorchModelHubMixin = type("PyTorchModelHubMixin", (), {})
            mp.setitem(sys.modules, "huggingface_hub", hub)
        mp.setattr(torch.cuda, "device", _DeviceNoneIsNoOp)
        mp.setattr(
            torch.cuda,
            "get_device_properties",
            _cpu_device_properties(torch.cuda.get_device_properties),
        )
        mp.setattr(
            autotuner.Autotuner, "prune_configs", _one_config(autotuner.Autotuner.prune_configs)
        )
        reset_kernel_cache()
        yield package
        for name in [m for m in sys.modules if m.startswith("mamba_ssm.")]:
            del sys.modules[name]
    reset_kernel_cache()
