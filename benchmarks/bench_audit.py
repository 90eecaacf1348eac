"""Benchmark the leakage audit (not a test; numbers go in README's Performance section).

1. The full validation (data quality + leakage audit, levels 1-5) on the default synthetic
   cohort (SynthConfig(): 20 participants x 2 runs x 24 windows x 19 channels x 2048
   samples), default split_by_participant.
2. The content search alone (levels 2, 4, 5: z-score, hash, projection, blocked candidate
   search, exact verification) at 10k / 30k / 100k window vectors of 2048 samples, every
   vector against every other once (as the audit compares, whatever the split), with
   five planted near duplicates that must all be found. Peak memory is
   tracemalloc's peak (numpy allocations included) and the process's max RSS; it must
   grow linearly, not with the square of the window count.

    python benchmarks/bench_audit.py [--sizes 10000 30000 100000] [--skip-cohort]
    taskset -c 0,1 python benchmarks/bench_audit.py   # emulate the 2-core target
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.signal

from eegwb.validation.near_duplicates import (
    ContentConfig,
    IndexBuilder,
    Projector,
    hash_pairs,
    similar_pairs,
)

T = 2048
CHUNK = 2048


def _eeg_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, T) float32: AR(1) 'brown-ish' noise plus white noise, a crude 1/f-like EEG."""
    ar = scipy.signal.lfilter([1.0], [1.0, -0.95], rng.standard_normal((n, T)), axis=1)
    return (10.0 * ar + 2.0 * rng.standard_normal((n, T))).astype(np.float32)


def content_search(n: int, workdir: str, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    cfg = ContentConfig()
    ends = np.sort(rng.choice(n, 10, replace=False))
    planted = [(int(i), int(j)) for i, j in zip(ends[::2], ends[1::2], strict=True)]
    keep: dict[int, np.ndarray] = {}
    tracemalloc.start()
    t_index = 0.0  # time in IndexBuilder only, not in making the test signals
    builder = IndexBuilder("all", "bench", workdir, Projector(cfg.prefilter_dims), cfg)
    for s in range(0, n, CHUNK):
        x = _eeg_like(rng, min(CHUNK, n - s))
        rows = np.arange(s, s + len(x))
        for i, j in planted:
            if s <= i < s + len(x):
                keep[i] = x[i - s].copy()
            if s <= j < s + len(x):  # j > i: its source was kept already
                noise = rng.standard_normal(T).astype(np.float32) * 0.03 * keep[i].std()
                x[j - s] = keep[i] + noise
        t0 = time.perf_counter()
        builder.add(x, f"f{s // CHUNK}", rows, "CZ", rows * T)
        t_index += time.perf_counter() - t0
    t0 = time.perf_counter()
    index = builder.finish()
    t_index += time.perf_counter() - t0
    # What the audit does: every vector against every other, once (leakage_content.py).
    t1, c1 = time.perf_counter(), time.process_time()
    ha, _ = hash_pairs(index, index)
    found = {
        (int(i), int(j))
        for ia, ib, _ in similar_pairs(index, index, cfg)
        for i, j in zip(ia, ib, strict=True)
    }
    t_search, cpu_search = time.perf_counter() - t1, time.process_time() - c1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    missing = set(planted) - found
    if missing:
        raise AssertionError(f"planted near duplicates not found: {missing}")
    return {
        "windows": n,
        "index_s": t_index,
        "search_s": t_search,
        "search_cpu_s": cpu_search,
        "total_s": t_index + t_search,
        "found": len(found),
        "hash_pairs": len(ha),
        "peak_tracemalloc_mb": peak / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def full_audit(workdir: str) -> dict[str, float]:
    from eegwb.data.synthetic import SynthConfig, generate_cohort
    from eegwb.validation.validation import resolve_splits, validate

    root = Path(workdir) / "cohort"
    t0 = time.perf_counter()
    generate_cohort(root, SynthConfig(), progress=False)
    t_gen = time.perf_counter() - t0
    splits, source = resolve_splits(root)
    t1, c1 = time.perf_counter(), time.process_time()
    report = validate(splits, source=source)
    t_validate, cpu_validate = time.perf_counter() - t1, time.process_time() - c1
    vectors = sum(int(v.get("vectors", 0)) for v in report.leakage.splits.values())
    return {
        "generate_s": t_gen,
        "validate_s": t_validate,
        "validate_cpu_s": cpu_validate,
        "vectors": vectors,
        "status": report.status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--skip-cohort", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as workdir:
        if not args.skip_cohort:
            r = full_audit(workdir)
            print(
                f"default cohort: generate {r['generate_s']:.1f} s, validate (quality + leakage) "
                f"{r['validate_s']:.1f} s wall / {r['validate_cpu_s']:.1f} s CPU over "
                f"{r['vectors']} "
                f"window-channel vectors, status {r['status']}"
            )
        print(
            f"{'windows':>8} {'index s':>8} {'search s':>9} {'search CPU s':>13} {'total s':>8} "
            f"{'peak MB':>8} {'maxrss MB':>10}"
        )
        for n in args.sizes:
            r = content_search(n, workdir)
            print(
                f"{r['windows']:>8} {r['index_s']:>8.1f} {r['search_s']:>9.1f} "
                f"{r['search_cpu_s']:>13.1f} "
                f"{r['total_s']:>8.1f} "
                f"{r['peak_tracemalloc_mb']:>8.0f} {r['max_rss_mb']:>10.0f}"
            )


if __name__ == "__main__":
    main()
