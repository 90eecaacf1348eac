"""benchmarks/bench_model.py compares like with like: its textbook scan computes the same
SSD as the reference, its no-scan ceiling keeps the block's other work, and it runs.

Timings are not asserted here (they live in the benchmark); only that the variants it
times are what it says they are.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eegwb.kernels.ssd_reference import mamba_chunk_scan_ref
from eegwb.model import EEGModel, ModelConfig
from eegwb.model.mamba2 import EEGMamba2

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_model.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_model", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("l", "chunk"), [(124, 64), (50, 16), (16, 16)])
def test_textbook_scan_is_the_same_ssd(bench, l, chunk):
    gen = torch.Generator().manual_seed(l)
    b, h, p, n = 2, 4, 8, 16
    x = torch.randn(b, l, h, p, generator=gen, dtype=torch.float64)
    dt = torch.nn.functional.softplus(torch.randn(b, l, h, generator=gen, dtype=torch.float64))
    A = -torch.exp(torch.randn(h, generator=gen, dtype=torch.float64))
    B, C = (torch.randn(b, l, 1, n, generator=gen, dtype=torch.float64) for _ in "BC")
    D = torch.randn(h, generator=gen, dtype=torch.float64)
    ours = mamba_chunk_scan_ref(x, dt, A, B, C, chunk, D=D)
    textbook = bench.textbook_scan(x, dt, A, B, C, chunk, D=D)
    assert ((textbook - ours).norm() / ours.norm()).item() <= 1e-10


def test_no_scan_ceiling_still_backpropagates_into_the_whole_block(bench):
    cfg = ModelConfig(
        window_samples=32,
        d_model=16,
        n_layers=1,
        d_state=8,
        headdim=8,
        chunk_size=8,
        kernel_backend="ref",
    )
    model = bench.with_scan(EEGModel(cfg), bench.no_scan)
    x = torch.randn(2, 10, 32)
    coords = torch.nn.functional.normalize(torch.randn(2, 3), dim=1)
    model(x, coords, torch.zeros(2, 10, dtype=torch.bool)).square().mean().backward()
    block = next(m for m in model.modules() if isinstance(m, EEGMamba2))
    # dt_bias and A_log only get a gradient (of zeros) if the backward reached dt and A.
    assert block.dt_bias.grad is not None and block.A_log.grad is not None
    assert torch.count_nonzero(block.dt_bias.grad) == 0
    assert block.in_proj.weight.grad.abs().sum() > 0


def test_benchmark_runs_and_reports_every_variant(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--batch",
            "2",
            "--length",
            "12",
            "--window-samples",
            "16",
            "--d-model",
            "16",
            "--n-layers",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(out.read_text())
    names = set(report["results"])
    assert {
        "mamba2 (eegwb reference SSD)",
        "mamba2 (textbook SSD, Listing 1)",
        "transformer",
        "mamba2 (no scan: y = D x, ceiling)",
    } <= names
    assert all(r["tokens_per_s"] > 0 for r in report["results"].values())
    assert report["model_no_scan_over_textbook"] > 0 and report["scan_reference_over_textbook"] > 0
    assert report["meta"]["config"]["length"] == 12
