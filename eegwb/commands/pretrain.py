"""`eegwb pretrain`: one masked-reconstruction pretraining run from a YAML config.

    eegwb pretrain --config configs/pretrain.yaml --set masking.mask_ratio=0.8
    eegwb pretrain --config configs/pretrain.yaml --resume checkpoints/..._last.pt
    torchrun --nproc_per_node=2 -m eegwb pretrain --config configs/pretrain.yaml

Exit codes: 0 done, 1 stopped by a failed gate, 2 bad config or input (an `InputError`).
"""

from __future__ import annotations

import argparse
import sys

from eegwb.errors import InputError

DEFAULT_CONFIG = "configs/pretrain.yaml"


def add_config_arguments(
    parser: argparse.ArgumentParser,
    default: str = DEFAULT_CONFIG,
    example: str = "model.d_model=64",
) -> None:
    """The config options `pretrain`, `sweep` and `finetune` share (each its own default)."""
    parser.add_argument("--config", default=default, help=f"YAML config (default {default})")
    add_set_argument(parser, example)
    parser.add_argument("--overwrite", action="store_true", help="replace existing checkpoints")
    parser.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    parser.add_argument(
        "--no-bar", action="store_true", help="one log line per epoch, no progress bar"
    )


def add_set_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set KEY=VALUE` (repeatable) into `args.overrides`: every command and notebook's."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. --set {example} (repeatable)",
    )


def shortcut_overrides(*, overwrite: bool, no_track: bool) -> list[str]:
    """What `--overwrite` and `--no-track` stand for: the same for the commands and the
    notebooks (eegwb/notebook.py's `config_overrides`)."""
    extra = ["train.overwrite=true"] if overwrite else []
    return extra + (["tracking.enabled=false"] if no_track else [])


def config_overrides(args: argparse.Namespace) -> list[str]:
    """`--set` overrides, then the shortcuts."""
    return list(args.overrides) + shortcut_overrides(
        overwrite=args.overwrite, no_track=args.no_track
    )


def autopsy_hook(enabled: bool):
    """`eegwb.experiments.autopsy.autopsy_once` when `train.autopsy` asks for it, else None
    (imported only then: the autopsy pulls in Captum and the report code)."""
    if not enabled:
        return None
    from eegwb.experiments.autopsy import autopsy_once

    return autopsy_once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--resume", metavar="PATH", help="continue exactly from a *_last.pt checkpoint"
    )


def run(args: argparse.Namespace) -> int:
    from eegwb.config import load_config
    from eegwb.train.config import PretrainConfig
    from eegwb.train.pretrain import pretrain

    try:
        cfg = load_config(PretrainConfig, args.config, config_overrides(args))
        cfg.check_paths()
        result = pretrain(
            cfg,
            resume=args.resume,
            bar=False if args.no_bar else None,
            autopsy=autopsy_hook(cfg.train.autopsy),
        )
    except InputError as err:
        print(f"eegwb pretrain: error: {err}", file=sys.stderr)
        return 2
    if result.run_id is not None or result.last_checkpoint is not None:  # the main process
        for key, value in result.summary().items():
            print(f"{key:>18}: {value}")
        if result.run_id:
            print(f"{'mlflow':>18}: {result.tracking_uri} (run {result.run_id})")
        if result.tracking_failures:
            print(f"{'not logged':>18}: {len(result.tracking_failures)} MLflow call(s) failed")
            for failure in result.tracking_failures:
                if failure.startswith("end run"):  # says how to end a run left RUNNING
                    print(f"{'mlflow run':>18}: {failure}")
    return 1 if result.stopped == "gate" else 0
