"""Forward + backward throughput (windows/s) of the EEG model, its variants in one run.

    python benchmarks/bench_model.py                      # the original default config
    python benchmarks/bench_model.py --repeats 3 --json reports/bench_model.json
    python benchmarks/bench_model.py --threads 1 --clock cpu    # on a busy shared machine

(a) eegwb's Mamba-2 (reference PyTorch SSD on CPU), (b) the same model with the textbook
SSD of the Mamba-2 paper (Listing 1: segsum + einsums, as in mamba-ssm's ssd_minimal.py)
in place of the scan, inside the same block, (c) the Transformer backbone at the same
width, (d) the same Mamba-2 with no scan at all (y = D x): the ceiling any scan could
reach inside this block; on CUDA also (e) the fused Triton path when mamba_ssm imports.
A token is one window of one channel; throughput is b * l / median(seconds per fwd+bwd
step), rounds interleaved across variants. The SSD scan alone, forward + backward at the
block's shapes, is timed too.

What to expect on CPU: both scans are matmul-bound and form the same kind of matmuls.
At L = 124, chunk 64 (two chunks) the reference skips the work that adds nothing (chunk
0's zero entering state, the last chunk's unused state) and forms C B^T once per group:
about 38 M multiply-adds forward against the listing's ~55 M, so ~1.5-1.9x on the scan.
The scan is a minority of a Mamba-2 step (in_proj, conv, norm, out_proj and the 2048-wide
token encoder and head are the rest, shared by both variants), so the whole model gains
much less than the scan; variant (d) measures the most any scan could give: textbook time
over no-scan time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from einops import rearrange

from eegwb.atomic import atomic_write_text
from eegwb.kernels.fused import fused_available
from eegwb.kernels.ssd_reference import mamba_chunk_scan_ref
from eegwb.model import EEGModel, ModelConfig
from eegwb.model.mamba2 import EEGMamba2


def textbook_segsum(a: torch.Tensor) -> torch.Tensor:
    """(..., T) -> (..., T, T) segment sums by a cumsum over a repeated, masked matrix."""
    T = a.shape[-1]
    a = a[..., None].repeat(*([1] * a.dim()), T)
    below = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), diagonal=-1)
    sums = torch.cumsum(a.masked_fill(~below, 0), dim=-2)
    on_or_below = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device))
    return sums.masked_fill(~on_or_below, -torch.inf)


def textbook_ssd(X, A, B, C, block_len):
    """The paper's Listing 1 (X, A already multiplied by dt). X (b, l, h, p), A (b, l, h)."""
    X, A, B, C = (rearrange(t, "b (c l) ... -> b c l ...", l=block_len) for t in (X, A, B, C))
    A = rearrange(A, "b c l h -> b h c l")
    A_cumsum = torch.cumsum(A, dim=-1)
    L = torch.exp(textbook_segsum(A))  # 1. diagonal blocks
    Y_diag = torch.einsum("bclgn,bcsgn,bhcls,bcshp->bclhp", C, B, L, X)
    decay_states = torch.exp(A_cumsum[..., -1:] - A_cumsum)  # 2. chunk states
    states = torch.einsum("bclgn,bhcl,bclhp->bcghpn", B, decay_states, X)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)  # 3. pass states
    decay_chunk = torch.exp(textbook_segsum(F.pad(A_cumsum[..., -1], (1, 0))))
    states = torch.einsum("bhzc,bcghpn->bzghpn", decay_chunk, states)[:, :-1]
    Y_off = torch.einsum("bclgn,bcghpn,bhcl->bclhp", C, states, torch.exp(A_cumsum))  # 4.
    return rearrange(Y_diag + Y_off, "b c l h p -> b (c l) h p")


def textbook_scan(x, dt, A, B, C, chunk_size, D=None, **_):
    """Listing 1 behind the block's scan signature (ngroups = 1, as the listing assumes)."""
    l = x.shape[1]
    pad = (-l) % chunk_size
    xp, Bp, Cp = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (x, B, C))
    dtp = F.pad(dt, (0, 0, 0, pad))
    y = textbook_ssd(xp * dtp[..., None], A * dtp, Bp, Cp, chunk_size)[:, :l]
    return y + x * D[:, None] if D is not None else y


def no_scan(x, dt, A, B, C, chunk_size, D=None, **_):
    """The ceiling: only the D skip, with zero gradients still flowing to dt, A, B and C
    so that everything upstream of the scan does its full backward."""
    unused = (dt.sum() + A.sum() + B.sum() + C.sum()) * 0
    return x * D[:, None] + unused


def with_scan(model: EEGModel, scan) -> EEGModel:
    """`model` with `scan` in place of the SSD in every Mamba-2 block (the rest unchanged)."""
    for m in model.modules():
        if isinstance(m, EEGMamba2):
            m.scan_override = scan
    return model


NO_SCAN = "mamba2 (no scan: y = D x, ceiling)"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(
    steps: dict[str, Callable[[], None]], cuda: bool, repeats: int, warmup: int, clock: str = "wall"
) -> dict[str, tuple[float, float]]:
    """{name: (median, min) seconds of one call}, rounds interleaved across `steps`.

    Interleaving puts every variant under the same background load, so the ratios are
    side by side; the min is the least disturbed round. clock "cpu" is this process's CPU
    time: on a shared machine it counts only our own work (use it with --threads 1; with
    more threads it sums them).
    """
    now = CLOCKS[clock]
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + repeats):
        for name, step in steps.items():
            if cuda:
                torch.cuda.synchronize()
            t0 = now()
            step()
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append(now() - t0)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def model_step(model: EEGModel, x, coords, pad_mask, bf16: bool = False):
    """One forward + backward (MSE on every position), as a closure; bf16: under autocast,
    as pretraining runs on CUDA."""

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x, coords, pad_mask)
        out.float().square().mean().backward()

    return step


def scan_step(scan, cfg: ModelConfig, b: int, l: int, device):
    """The SSD scan alone at the block's shapes, forward + backward, as a closure."""
    h, g = cfg.nheads, cfg.ngroups
    x = torch.randn(b, l, h, cfg.headdim, device=device, requires_grad=True)
    dt = F.softplus(torch.randn(b, l, h, device=device) - 2).requires_grad_()
    A = (-torch.rand(h, device=device) - 0.5).requires_grad_()
    B, C = (torch.randn(b, l, g, cfg.d_state, device=device, requires_grad=True) for _ in "BC")
    D = torch.ones(h, device=device, requires_grad=True)

    def step():
        scan(x, dt, A, B, C, cfg.chunk_size, D=D).square().sum().backward()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=124, help="windows per sequence (L)")
    ap.add_argument("--window-samples", type=int, default=2048)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="wall time, or process CPU time (steadier on a shared machine)",
    )
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (as training on CUDA)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    base = ModelConfig(
        window_samples=args.window_samples,
        d_model=args.d_model,
        n_layers=args.n_layers,
        kernel_backend="ref",
    )
    b, l = args.batch, args.length
    x = torch.randn(b, l, base.window_samples, device=device)
    coords = F.normalize(torch.randn(b, 3, device=device), dim=1)
    pad_mask = torch.zeros(b, l, dtype=torch.bool, device=device)

    variants: dict[str, EEGModel] = {}
    variants["mamba2 (eegwb reference SSD)"] = EEGModel(base)
    variants["mamba2 (textbook SSD, Listing 1)"] = with_scan(EEGModel(base), textbook_scan)
    variants["transformer"] = EEGModel(replace(base, backbone="transformer"))
    variants[NO_SCAN] = with_scan(EEGModel(base), no_scan)
    ok, why = fused_available()
    if device.type == "cuda" and ok:
        variants["mamba2 (fused Triton)"] = EEGModel(replace(base, kernel_backend="fused"))
    elif device.type == "cuda":
        print(f"fused path skipped: {why}")

    cuda = device.type == "cuda"
    results = {}
    print(
        f"fwd+bwd, batch {b} x {l} windows of {base.window_samples} samples, "
        f"d_model {base.d_model}, {base.n_layers} layers, {torch.get_num_threads()} threads, "
        f"{args.clock} clock{', bf16 autocast' if args.bf16 else ''}"
    )
    steps = {
        name: model_step(model.to(device).train(), x, coords, pad_mask, args.bf16)
        for name, model in variants.items()
    }
    for name, (med, best) in timed(steps, cuda, args.repeats, args.warmup, args.clock).items():
        results[name] = {
            "median_s": med,
            "min_s": best,
            "tokens_per_s": b * l / med,
            "tokens_per_s_best": b * l / best,
        }
        print(
            f"{name:36s} {med * 1e3:9.1f} ms/step (min {best * 1e3:7.1f}) "
            f"{b * l / med:9.1f} tokens/s (best {b * l / best:9.1f})",
            flush=True,
        )
    ours, textbook_key = "mamba2 (eegwb reference SSD)", "mamba2 (textbook SSD, Listing 1)"
    ratio = results[ours]["tokens_per_s"] / results[textbook_key]["tokens_per_s"]
    best_ratio = results[ours]["tokens_per_s_best"] / results[textbook_key]["tokens_per_s_best"]
    print(f"model: eegwb reference / textbook = {ratio:.2f}x (median), {best_ratio:.2f}x (best)")
    ceiling_ratio = results[NO_SCAN]["tokens_per_s"] / results[textbook_key]["tokens_per_s"]
    print(
        f"ceiling: no scan / textbook = {ceiling_ratio:.2f}x (median): no scan, however fast, "
        f"can beat the textbook by more inside this block"
    )
    scans = timed(
        {
            "reference": scan_step(mamba_chunk_scan_ref, base, b, l, device),
            "textbook": scan_step(textbook_scan, base, b, l, device),
        },
        cuda,
        3 * args.repeats,
        args.warmup,
        args.clock,
    )
    for name, (med, best) in scans.items():
        print(f"scan alone, {name:9s} {med * 1e3:8.1f} ms (min {best * 1e3:7.1f})")
    scan_ratio = scans["textbook"][0] / scans["reference"][0]
    print(
        f"scan alone: eegwb reference / textbook = {scan_ratio:.2f}x (median), "
        f"{scans['textbook'][1] / scans['reference'][1]:.2f}x (best)"
    )

    if args.json:
        meta = {
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "clock": args.clock,
            "bf16": args.bf16,
            "command": " ".join(sys.argv),
            "torch": torch.__version__,
            "config": {
                "batch": b,
                "length": l,
                "window_samples": base.window_samples,
                "d_model": base.d_model,
                "n_layers": base.n_layers,
            },
        }
        report = {
            "meta": meta,
            "results": results,
            "model_reference_over_textbook": ratio,
            "model_no_scan_over_textbook": ceiling_ratio,
            "scan_seconds": scans,
            "scan_reference_over_textbook": scan_ratio,
        }
        atomic_write_text(args.json, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
