"""Loader throughput: eegwb's cached dataset vs a naive Parquet loader vs a plain memcpy.

    python benchmarks/bench_loader.py [--data data/synthetic] [--batch-size 32] [--seconds 5]

On the default synthetic cohort (20 participants x 2 runs x 19 channels x 24 windows x
2048 samples; generated into --data when missing) it prints windows/s of

- eegwb:  random sequences -> `EEGDataset.__getitems__`, which normalises (robust z) from
          the memory-mapped cache straight into the padded batch -> `collate` (adopts it);
- eegwb through torch DataLoader: the same, driven by a DataLoader (num_workers=0,
          random sampler), i.e. plus DataLoader's own per-batch overhead;
- eegwb per sample: `[ds[i] for i in batch]` then `collate` (three passes over the bytes);
- naive:  per sequence, read that channel's list column from Parquet with pyarrow,
          `np.stack` the cells, normalise, collate (what the original pipeline did);
- memcpy: a plain copy of the same number of bytes, batch-sized blocks, from RAM.

Targets (issue 2): eegwb >= 10x naive and >= 50% of memcpy. Not a test: timings depend on
the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from eegwb.data.dataset import EEGDataset, collate

REPO = Path(__file__).resolve().parents[1]


def ensure_cohort(root: Path) -> None:
    """The default synthetic cohort, written once (eegwb.data.synthetic's generator)."""
    if root.is_dir() and any(root.glob("sub-*_run-*.parquet")):
        return
    from eegwb.data.synthetic import SynthConfig, generate_cohort

    print(f"writing the default synthetic cohort to {root} ...")
    generate_cohort(root, SynthConfig(), progress=True)


def interleaved(steps: dict, budget_s: float, slice_s: float) -> dict[str, np.ndarray]:
    """windows/s of each step() (returns windows moved), measured in alternating slices so
    that load from other processes on a shared machine hits every loader alike."""
    for step in steps.values():
        step()  # warm-up: page cache, mappings, allocator
    rates: dict[str, list[float]] = {name: [] for name in steps}
    start = time.perf_counter()
    while time.perf_counter() - start < budget_s * len(steps):
        for name, step in steps.items():
            n, t0 = 0, time.perf_counter()
            while (dt := time.perf_counter() - t0) < slice_s:
                n += step()
            rates[name].append(n / dt)
    return {name: np.asarray(r) for name, r in rates.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO / "data" / "synthetic")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--seconds", type=float, default=5.0, help="time budget per loader (interleaved)"
    )
    p.add_argument("--slice", type=float, default=0.1, help="seconds per loader per round")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)  # one process, one core: the fair comparison with memcpy

    ensure_cohort(args.data)
    t0 = time.perf_counter()
    ds = EEGDataset.open(args.data, progress=True, on_bad="skip")
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = EEGDataset.open(args.data, on_bad="skip")
    warm_open_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    b, t = args.batch_size, ds.window_samples
    rows = ds.index.select("file", "channel", "row_start", "row_end").rows()
    seq = ds._seq

    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=1 << 40)
    generator = torch.Generator().manual_seed(args.seed)
    sampler.generator = generator
    batches = iter(
        torch.utils.data.DataLoader(ds, batch_size=b, sampler=sampler, collate_fn=collate)
    )

    def loader_step() -> int:
        return int(next(batches).lengths.sum())

    def eegwb_step() -> int:
        return int(collate(ds.__getitems__(rng.integers(0, len(ds), b).tolist())).lengths.sum())

    def per_sample_step() -> int:
        batch = collate([ds[int(i)] for i in rng.integers(0, len(ds), b)])
        return int(batch.lengths.sum())

    def naive_step() -> int:
        samples = []
        for i in rng.integers(0, len(ds), b):
            file, channel, a, z = rows[i]
            col = pq.read_table(args.data / file, columns=[channel]).column(channel)
            x = np.stack(col.to_numpy(zero_copy_only=False)[a:z])  # (l, t)
            x = (x - seq["center"][i]) * seq["inv_scale"][i]
            samples.append(
                {
                    "x": torch.from_numpy(x.astype(np.float32)),
                    "coords": torch.zeros(3),
                    "seq_index": int(i),
                }
            )
        return int(collate(samples).lengths.sum())

    # memcpy: all sequences' bytes in RAM, copied in blocks of one padded batch
    source = np.concatenate([e.array().reshape(-1) for e in ds._entries])  # (all samples,)
    block = b * int(ds.index["n_windows"].max()) * t
    dest = np.empty(block, np.float32)
    starts = np.arange(0, source.size - block, block)

    def memcpy_step() -> int:
        np.copyto(dest, source[starts[rng.integers(0, len(starts))] :][:block])
        return block // t

    names = {
        "eegwb": "eegwb (memmap cache + collate)",
        "loader": "eegwb through torch DataLoader",
        "per_sample": "eegwb per sample (__getitem__ + collate)",
        "naive": "naive (Parquet per sample + np.stack)",
        "memcpy": "memcpy (same bytes, RAM to RAM)",
    }
    steps = (eegwb_step, loader_step, per_sample_step, naive_step, memcpy_step)
    rounds = interleaved(dict(zip(names.values(), steps)), args.seconds, args.slice)
    print()
    print(
        f"dataset: {args.data} ({len(ds)} sequences of {ds.index['n_windows'].max()} windows "
        f"x {t} samples, {len(ds._entries)} files)"
    )
    print(
        f"open: {open_s:.2f} s (decodes into the cache only the first time); warm open "
        f"{warm_open_s:.3f} s"
    )
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
        f"(1 min); {datetime.date.today()}; batch {b}, one process, torch threads 1"
    )
    report(rounds, names, mb_per_window=t * 4 / 1e6, slice_s=args.slice)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(
    rounds: dict[str, np.ndarray], names: dict[str, str], mb_per_window: float, slice_s: float
) -> None:
    """The table: median and best round per loader, ratios to naive and to memcpy."""
    med = {k: float(np.median(r)) for k, r in rounds.items()}
    best = {k: float(np.max(r)) for k, r in rounds.items()}
    naive, memcpy = names["naive"], names["memcpy"]
    n_rounds = len(rounds[naive])
    print(f"\n{n_rounds} interleaved rounds of {slice_s} s per loader; median (best round)\n")
    print(
        f"| {'loader':40s} | {'windows/s':>19s} | {'MB/s':>6s} | {'vs naive':>8s} | "
        f"{'vs memcpy':>11s} |"
    )
    print(f"|{'-' * 42}|{'-' * 20}:|{'-' * 7}:|{'-' * 9}:|{'-' * 12}:|")
    for name in rounds:
        rate = f"{med[name]:,.0f} ({best[name]:,.0f})"
        vs_mem = f"{med[name] / med[memcpy]:.0%} ({best[name] / best[memcpy]:.0%})"
        print(
            f"| {name:40s} | {rate:>19s} | {med[name] * mb_per_window:6,.0f} | "
            f"{med[name] / med[naive]:7.1f}x | {vs_mem:>11s} |"
        )
    eegwb = names["eegwb"]
    print(
        "\ntargets (medians): >= 10x naive: "
        f"{'met' if med[eegwb] >= 10 * med[naive] else 'NOT met'}; "
        f">= 50% of memcpy: {'met' if med[eegwb] >= 0.5 * med[memcpy] else 'NOT met'} "
        f"(best rounds: {'met' if best[eegwb] >= 0.5 * best[memcpy] else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
