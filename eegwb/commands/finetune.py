"""`eegwb finetune`: fine-tune a pretrained backbone on a label and print the results table.

    eegwb finetune --config configs/finetune.yaml
    eegwb finetune --config configs/finetune.yaml --strategies frozen,scratch --set data.kfold=5
    eegwb finetune --config configs/finetune_tiny.yaml --set pretrained.checkpoint=PATH --levels all

Every strategy and the band-power baseline are evaluated on the same held-out
participants; each row gives AUROC and balanced accuracy with participant-bootstrap CIs.

Exit codes: 0 done, 2 bad config or input, leaky splits, or an output that exists (nothing ran).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eegwb.commands.pretrain import add_config_arguments, autopsy_hook, config_overrides
from eegwb.errors import InputError, OutputExistsError

DEFAULT_CONFIG = "configs/finetune.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, DEFAULT_CONFIG, example="train.epochs=20")
    parser.add_argument(
        "--strategies",
        metavar="LIST",
        help="comma-separated subset of frozen,full,scratch (default: the config's)",
    )
    parser.add_argument(
        "--levels",
        default=None,
        choices=("prediction", "recording", "participant", "all"),
        help="table rows (default: the config's eval.level)",
    )
    parser.add_argument(
        "--predictions",
        metavar="CSV",
        help="also write every test prediction to this CSV (--overwrite replaces it)",
    )


def run(args: argparse.Namespace) -> int:
    from eegwb.atomic import atomic_write_text
    from eegwb.config import load_config
    from eegwb.train.finetune import finetune
    from eegwb.train.finetune_config import FinetuneConfig

    overrides = config_overrides(args)
    if args.strategies:
        names = [s.strip() for s in args.strategies.split(",") if s.strip()]
        overrides.append(f"train.strategies=[{', '.join(names)}]")
    try:
        if args.predictions and Path(args.predictions).exists() and not args.overwrite:
            raise OutputExistsError(
                f"{args.predictions}: already exists (pass --overwrite to replace it)"
            )
        cfg = load_config(FinetuneConfig, args.config, overrides)
        result = finetune(cfg, bar=not args.no_bar, autopsy=autopsy_hook(cfg.train.autopsy))
    except InputError as err:
        print(f"eegwb finetune: error: {err}", file=sys.stderr)
        return 2
    print(result.format(args.levels))
    print(
        "\nthresholds (chosen on validation): "
        + ", ".join(f"{k} {v:.3f}" for k, v in result.thresholds.items())
    )
    print(f"pretrained: {result.pretrained}")
    for strategy, paths in result.checkpoints.items():
        print(f"saved {strategy}: {', '.join(str(p) for p in paths)}")
    if result.leaky:
        print(
            "LEAKY: the leakage gate found problems and allow_leakage was set; see leakage.txt "
            "in the MLflow run (pretraining saw test participants: "
            f"{result.pretraining_overlap or 'none'})"
        )
    if result.run_id:
        print(f"mlflow run: {result.run_id}")
    if args.predictions:
        import polars as pl

        frames = [
            p.with_columns(pl.lit(s).alias("strategy")) for s, p in result.predictions.items()
        ]
        atomic_write_text(
            args.predictions,
            pl.concat(frames, how="diagonal").write_csv(),
            overwrite=args.overwrite,
        )
        print(f"predictions: {args.predictions}")
    print(f"elapsed: {result.elapsed_s:.1f} s")
    return 0
