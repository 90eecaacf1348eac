"""Benchmark fine-tuning and its evaluation (not a test; numbers go in README's Performance
section).

1. Participant bootstrap: 2000 resamples of AUROC + balanced accuracy (`bootstrap_ci`,
   vectorised over resamples) at 20 / 50 / 200 participants x 100 units each, beside a
   plain loop calling `auroc` per resample (the obvious implementation) on 200 resamples.
2. Baseline band powers: windows per second through Welch + band integration for
   4-channel 8 s windows at 256 Hz (the original's Muse set-up).
3. `finetune` end to end on configs/finetune_tiny.yaml (24 Muse participants, d_model 16,
   one layer) with a random-init backbone: seconds per strategy and for the baseline.

    python benchmarks/bench_finetune.py [--epochs 5] [--skip-finetune]
    taskset -c 0,1 python benchmarks/bench_finetune.py   # emulate the 2-core target
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eegwb.evaluation.baseline import DEFAULT_BANDS_HZ, band_powers
from eegwb.evaluation.metrics import auroc, bootstrap_ci

REPO = Path(__file__).resolve().parents[1]


def bench_bootstrap() -> None:
    print("participant bootstrap (AUROC + balanced accuracy)")
    rng = np.random.default_rng(0)
    for n_people in (20, 50, 200):
        units = 100
        part = np.repeat(np.arange(n_people), units).astype(str)
        y = np.repeat(np.arange(n_people) % 2, units)
        s = y * 0.3 + rng.normal(size=y.size)
        t0 = time.perf_counter()
        bootstrap_ci(y, s, part, n_boot=2000)
        vec = time.perf_counter() - t0
        members = [np.flatnonzero(part == p) for p in np.unique(part)]
        t0 = time.perf_counter()
        for _ in range(200):
            idx = np.concatenate([members[g] for g in rng.integers(0, n_people, n_people)])
            auroc(y[idx], s[idx])
        loop = (time.perf_counter() - t0) * 10  # scaled to 2000 resamples
        print(
            f"  {n_people:>4} participants x {units} units: vectorised {vec:6.2f} s, "
            f"plain loop {loop:6.2f} s (x{loop / vec:.1f})"
        )


def bench_band_powers() -> None:
    x = np.random.default_rng(0).normal(size=(512, 4, 2048)).astype(np.float32)
    band_powers(x[:8], 256.0, DEFAULT_BANDS_HZ)
    t0 = time.perf_counter()
    band_powers(x, 256.0, DEFAULT_BANDS_HZ)
    dt = time.perf_counter() - t0
    print(f"baseline band powers: {512 / dt:,.0f} windows/s (4 channels x 2048 samples, 5 bands)")


def bench_finetune(epochs: int) -> None:
    from eegwb.config import load_config, to_dict
    from eegwb.data.synthetic import SynthConfig, generate_cohort
    from eegwb.model.config import ModelConfig
    from eegwb.model.eeg_model import EEGModel
    from eegwb.train.checkpoints import save_checkpoint
    from eegwb.train.finetune import finetune
    from eegwb.train.finetune_config import FinetuneConfig

    with tempfile.TemporaryDirectory(prefix="eegwb-bench-ft-") as tmp:
        tmp = Path(tmp)
        generate_cohort(
            tmp / "muse",
            SynthConfig(
                n_participants=24,
                runs_per_participant=1,
                montage="muse",
                window_samples=128,
                n_windows=16,
                effect_size=8.0,
                effect_channels=("TP9", "AF7", "AF8", "TP10"),
            ),
            progress=False,
        )
        mc = ModelConfig(
            window_samples=128, d_model=16, n_layers=1, headdim=8, d_state=8, chunk_size=8
        )
        ckpt = save_checkpoint(
            tmp / "backbone.pt",
            {"model": EEGModel(mc).state_dict(), "config": {"model": to_dict(mc)}},
        )
        print(
            f"finetune, configs/finetune_tiny.yaml, {epochs} epochs, torch threads "
            f"{torch.get_num_threads()}"
        )
        for strategy in ("frozen", "full", "scratch"):
            cfg = load_config(
                FinetuneConfig,
                REPO / "configs" / "finetune_tiny.yaml",
                [
                    f"data.root={tmp / 'muse'}",
                    f"pretrained.checkpoint={ckpt}",
                    f"train.strategies=[{strategy}]",
                    f"train.epochs={epochs}",
                    f"train.checkpoint_dir={tmp / 'out'}",
                    "train.overwrite=true",
                    "tracking.enabled=false",
                    f"baseline.enabled={'true' if strategy == 'frozen' else 'false'}",
                ],
            )
            t0 = time.perf_counter()
            result = finetune(cfg)
            dt = time.perf_counter() - t0
            auc = result.headline().filter(result.headline()["strategy"] == strategy)["auroc"][0]
            print(
                f"  {strategy:<8} {dt:6.1f} s end to end (gate, data, training, metrics), "
                f"recording AUROC {auc:.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--skip-finetune", action="store_true")
    args = parser.parse_args()
    bench_bootstrap()
    bench_band_powers()
    if not args.skip_finetune:
        bench_finetune(args.epochs)


if __name__ == "__main__":
    main()
