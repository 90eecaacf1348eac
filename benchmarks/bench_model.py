"""Forward + backward throughput (windows/s) of the EEG model, three backbones in one run.

    python benchmarks/bench_model.py                      # the original default config
    python benchmarks/bench_model.py --repeats 3 --json reports/bench_model.json

(a) eegwb's Mamba-2 (reference PyTorch SSD on CPU), (b) the same model with the textbook
SSD of the Mamba-2 paper (Listing 1: segsum + einsums, as in mamba-ssm's ssd_minimal.py)
in place of the scan, inside the same block, (c) the Transformer backbone at the same
width; on CUDA also (d) the fused Triton path when mamba_ssm imports. A token is one
window of one channel; throughput is b * l / median(seconds per fwd+bwd step).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from einops import rearrange

from eegwb.atomic import atomic_write_text
from eegwb.kernels.fused import fused_available
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


def time_step(model: EEGModel, x, coords, pad_mask, repeats: int, warmup: int) -> float:
    """Median seconds for one forward + backward (MSE on every position)."""
    times = []
    for i in range(warmup + repeats):
        model.zero_grad(set_to_none=True)
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(x, coords, pad_mask)
        out.float().square().mean().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    base = ModelConfig(window_samples=args.window_samples, d_model=args.d_model,
                       n_layers=args.n_layers, kernel_backend="ref")
    b, l = args.batch, args.length
    x = torch.randn(b, l, base.window_samples, device=device)
    coords = F.normalize(torch.randn(b, 3, device=device), dim=1)
    pad_mask = torch.zeros(b, l, dtype=torch.bool, device=device)

    variants: dict[str, EEGModel] = {}
    variants["mamba2 (eegwb reference SSD)"] = EEGModel(base)
    textbook = EEGModel(base)
    for m in textbook.modules():
        if isinstance(m, EEGMamba2):
            m.scan_override = textbook_scan
    variants["mamba2 (textbook SSD, Listing 1)"] = textbook
    variants["transformer"] = EEGModel(replace(base, backbone="transformer"))
    ok, why = fused_available()
    if device.type == "cuda" and ok:
        variants["mamba2 (fused Triton)"] = EEGModel(replace(base, kernel_backend="fused"))
    elif device.type == "cuda":
        print(f"fused path skipped: {why}")

    results = {}
    for name, model in variants.items():
        model.to(device).train()
        secs = time_step(model, x, coords, pad_mask, args.repeats, args.warmup)
        results[name] = {"seconds_per_step": secs, "tokens_per_s": b * l / secs}
        print(f"{name:36s} {secs * 1e3:9.1f} ms/step {b * l / secs:10.1f} tokens/s", flush=True)
    ratio = (results["mamba2 (eegwb reference SSD)"]["tokens_per_s"]
             / results["mamba2 (textbook SSD, Listing 1)"]["tokens_per_s"])
    print(f"eegwb reference / textbook: {ratio:.2f}x")

    if args.json:
        meta = {
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "config": {"batch": b, "length": l, "window_samples": base.window_samples,
                       "d_model": base.d_model, "n_layers": base.n_layers},
        }
        atomic_write_text(args.json, json.dumps({"meta": meta, "results": results,
                                                 "reference_over_textbook": ratio}, indent=2))


if __name__ == "__main__":
    main()
