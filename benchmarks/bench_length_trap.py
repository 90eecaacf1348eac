"""The length trap on real EEG, measured (not a test; the numbers go in the README).

PhysioNet's EEGMAT (Zyma et al. 2019, Data 4(1):14; Goldberger et al. 2000), rest (run 1,
~180 s) vs mental arithmetic (run 2, ~60 s), ingested as the README does (8-s windows at
256 Hz, --crop-end 3): rest recordings give 20-23 windows, arithmetic ones 7.

1. The shortcut audit (`eegwb validate --label task`) as ingested and with every
   recording cut to its first 7 windows: AUROC of the label from each nuisance alone.
2. The floor ladder (`eegwb floors`): in-sample, unbiased and transfer floors of `signal`
   targets on 7-window sequences, 4 validation participants as in the issue.
3. Fine-tuning, participant-grouped k-fold (every participant tested once), a small
   Mamba-2 trained from scratch and the band-power baseline, with the units cut three
   ways: length_match none (max_windows 32: one 20-23-window unit per rest recording, one
   7-window unit per arithmetic one), none with max_windows 7 (1-2-window tails only at
   rest), and crop (every unit 7 windows at offset 0; the default). The gate is set to
   warn so the first two run at all.

    eegwb ingest ../shared/data/eegmat --out data/eegmat --config configs/ingest_eegmat.yaml
    python benchmarks/bench_length_trap.py data/eegmat [--kfold 4] [--epochs 15] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
import torch

from eegwb.config import load_config
from eegwb.data.splits import SplitData
from eegwb.evaluation.floor_data import dataset_floors
from eegwb.experiments.model_probe import open_split
from eegwb.train.config import PretrainConfig
from eegwb.train.finetune import finetune
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.labels import LabelSource, recording_labels
from eegwb.validation.shortcuts import audit_dataset

SHOWN = ("shortcut/n_windows", "shortcut/position_s", "shortcut/recording_order",
         "shortcut/amplitude_uv", "shortcut/line_noise")  # fmt: skip
UNIT_CUTS = {
    "none, max_windows 32": ["data.length_match=none", "data.max_windows=32"],
    "none, max_windows 7": ["data.length_match=none", "data.max_windows=7"],
    "crop (default)": ["data.length_match=crop", "data.max_windows=32"],
}


def audits(root: Path) -> dict:
    labels = recording_labels(root, LabelSource(name="task"))
    whole = SplitData(root).resolved()
    first7 = whole.with_columns(pl.lit(7, pl.Int64).alias("row_end"))
    out = {}
    for name, sel in (("as ingested", whole), ("first 7 windows", first7)):
        report = audit_dataset(root, sel, labels, label_name="task")
        keys = ("auroc", "auroc_low", "auroc_high", "unit")
        out[name] = {c.name: {k: c.numbers.get(k) for k in keys} | {"status": c.status}
                     for c in report.checks if c.name in SHOWN}  # fmt: skip
    return out


def floors(root: Path) -> dict:
    cfg = load_config(PretrainConfig, None, [f"data.root={root}", "data.max_windows=7",
                                             "data.split_fractions=[0.83, 0.17, 0.0]"])  # fmt: skip
    f = dataset_floors(open_split(cfg, "val"), open_split(cfg, "train"))
    print("\n".join(f.table_lines()))
    return f.to_dict()


def finetunes(root: Path, kfold: int, epochs: int) -> dict:
    out = {}
    for name, sets in UNIT_CUTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(FinetuneConfig, None, [
                f"data.root={root}", "labels.name=task", "data.channels=null",
                f"data.kfold={kfold}", "data.shortcut_gate=warn",
                f"pretrained.checkpoint_dir={tmp}",
                "pretrained.d_model=32", "pretrained.n_layers=1", "train.strategies=[scratch]",
                f"train.epochs={epochs}",
                "train.lr_scratch=1e-3", f"train.checkpoint_dir={tmp}", "tracking.enabled=false",
                "eval.n_boot=1000", *sets,
            ])  # fmt: skip
            t0 = time.perf_counter()
            result = finetune(cfg)
        print(f"\n{name} ({time.perf_counter() - t0:.0f} s)\n{result.format('all')}")
        out[name] = {"table": result.table.to_dicts(), "units": result.length_match}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="EEGMAT ingested with configs/ingest_eegmat.yaml")
    parser.add_argument("--kfold", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"audits": audits(args.data)}
    for cut, checks in results["audits"].items():
        print(f"\nshortcut audit, {cut}:")
        for name, c in checks.items():
            print(
                f"  {c['status']:4} {name:<26} AUROC {c['auroc']:.3f} "
                f"[{c['auroc_low']:.3f}, {c['auroc_high']:.3f}] per {c['unit']}"
            )
    print()
    results["floors"] = floors(args.data)
    if not args.skip_finetune:
        results["finetune"] = finetunes(args.data, args.kfold, args.epochs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str, allow_nan=True) + "\n")


if __name__ == "__main__":
    main()
