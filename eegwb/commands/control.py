"""`eegwb control --checkpoint PATH [--data DIR] [--json OUT]`: floors, diagnostics, verdict.

Prints the floor table, the diagnostics table (each number beside the original
analysis's threshold) and the verdict in words. Exit codes: 0, or 1 when the verdict is
"leak suspected" or "target collapse" (so scripts and CI can stop on them), 2 for a bad
checkpoint, dataset or output path (nothing was judged).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)
FAILING_VERDICTS = ("leak_suspected", "target_collapse")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a pretraining checkpoint (.pt)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset directory (default: the checkpoint's own data root)",
    )
    parser.add_argument(
        "--split",
        choices=("val", "train", "all"),
        default="val",
        help="which split of the data to probe (default: val)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the report as JSON here"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="seed of the probe's masks")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")


def run(args: argparse.Namespace) -> int:
    from eegwb.errors import InputError, OutputExistsError
    from eegwb.experiments.control import run_control

    try:
        if args.json is not None and args.json.exists() and not args.overwrite:  # before the work
            raise OutputExistsError(f"{args.json}: already exists (pass --overwrite to replace it)")
        report = run_control(
            args.checkpoint,
            args.data,
            split=args.split,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
        )
        print(report.text())
        if args.json is not None:
            report.save_json(args.json, overwrite=args.overwrite)
            print(f"\nreport written to {args.json}")
    except InputError as err:
        print(f"eegwb control: error: {err}", file=sys.stderr)
        return 2
    return 1 if report.verdict.label in FAILING_VERDICTS else 0
