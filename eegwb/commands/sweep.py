"""`eegwb sweep`: sequential pretraining runs over a grid, one MLflow experiment, a summary table.

    eegwb sweep --config configs/pretrain.yaml --param masking.mask_ratio=0.2,0.4,0.6,0.8
    eegwb sweep --config configs/tiny.yaml --param mask_ratio=0.2,0.8 --param train.lr=1e-3,3e-3

Exit codes: 0 every run finished, 1 a run failed, 2 bad config (nothing ran).
"""

from __future__ import annotations

import argparse
import sys

from eegwb.commands.pretrain import add_config_arguments, autopsy_hook, config_overrides
from eegwb.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        required=True,
        metavar="KEY=V1,V2,...",
        help="values to sweep (repeat for a grid)",
    )


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from eegwb.config import ConfigError, load_config
    from eegwb.train.config import PretrainConfig
    from eegwb.train.sweep import parse_param, run_sweep

    try:
        base = load_config(PretrainConfig, args.config, config_overrides(args))
        params: dict = {}
        for text in args.params:
            key, values = parse_param(text)
            if key in params:
                raise ConfigError(f"--param {key}: given twice")
            params[key] = values
        # Always passed: a --param may set train.autopsy for some runs only.
        result = run_sweep(
            base, params, bar=False if args.no_bar else None, autopsy=autopsy_hook(True)
        )
    except InputError as err:
        print(f"eegwb sweep: error: {err}", file=sys.stderr)
        return 2
    table = result.table()
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
        print(f"sweep {result.sweep_id} in MLflow experiment {result.experiment!r}")
        print(table.drop("error") if table["error"].str.len_chars().max() == 0 else table)
    return 1 if any(r.error for r in result.runs) else 0
