"""`eegwb floors DATA [--target signal] [--config FILE] [--set KEY=VALUE]`: the floor ladder
of a dataset, no checkpoint needed.

What position, channel and both are worth for predicting a fixed target (its information
floors, `eegwb.evaluation.floors`), cut into sequences and split into participants as
pretraining with that config would: in-sample, unbiased and transfer floors (group means
learnt on the training participants, scored on the validation ones), participants per
group, and a line wherever a finer grouping transfers worse than a coarser one. A model
whose validation loss does not get below these has learnt nothing the floors do not hold.
Exit 0, or 2 on bad input (a learnt target such as `ema` needs a model: `eegwb control`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eegwb.commands.pretrain import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="dataset directory")
    parser.add_argument(
        "--target",
        default=None,
        help="fixed target kind (default: the config's model.target, signal)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="pretraining YAML whose data options (split, max_windows, "
        "normalisation) cut the data (default: PretrainConfig's defaults)",
    )
    add_set_argument(parser, "data.max_windows=8")
    parser.add_argument(
        "--split",
        choices=("val", "train"),
        default="val",
        help="the participants scored (the other split's learn the group means)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the floors as JSON here"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")


def run(args: argparse.Namespace) -> int:
    from eegwb.atomic import atomic_write_text
    from eegwb.config import load_config
    from eegwb.errors import InputError, OutputExistsError
    from eegwb.evaluation.floor_data import dataset_floors
    from eegwb.experiments.model_probe import open_split
    from eegwb.train.config import PretrainConfig

    try:
        if args.json is not None and args.json.exists() and not args.overwrite:
            raise OutputExistsError(f"{args.json}: already exists (pass --overwrite to replace it)")
        sets = [f"data.root={args.data}", "data.splits=null", *args.overrides]
        if args.target:
            sets.append(f"model.target={args.target}")
        cfg = load_config(PretrainConfig, args.config, sets)
        other = "train" if args.split == "val" else "val"
        scored, learnt = open_split(cfg, args.split), open_split(cfg, other)
        floors = dataset_floors(scored, learnt, cfg.model.target, args.batch_size)
    except InputError as err:
        print(f"eegwb floors: error: {err}", file=sys.stderr)
        return 2
    d = cfg.data
    print(
        f"floors of {args.data}, target {cfg.model.target!r}: {floors.n_tokens} tokens of the "
        f"{args.split} split ({floors.n_participants} participants); group means learnt on the "
        f"{other} split ({floors.n_train_participants} participants)"
    )
    print(
        f"a token: one channel's window; sequences of at most {d.max_windows} windows, "
        f"{d.normalisation} per recording and channel, split fractions {list(d.split_fractions)} "
        f"seed {d.split_seed}\n"
    )
    print("\n".join(floors.table_lines()))
    if args.json is not None:
        text = json.dumps(floors.to_dict(), indent=2, allow_nan=True)
        atomic_write_text(args.json, text + "\n", overwrite=args.overwrite)
        print(f"\nfloors written to {args.json}")
    return 0
