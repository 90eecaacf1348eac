"""`eegwb validate DATA_DIR [--splits FILE] [--label NAME] [--json OUT]`: data quality, the
leakage audit and, with --label, the shortcut audit (can nuisance variables alone give
that label?).

Prints one line per check and exits 0 when nothing fails, 1 when something does (a CI
gate), 2 when the input cannot be read. Without --splits it audits a default
participant-grouped split of DATA_DIR, and says so.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data_dir", nargs="?", help="dataset directory (replaces the splits file's default dataset)"
    )
    parser.add_argument(
        "--splits", metavar="FILE", help="splits file (JSON, see docs/architecture.md)"
    )
    parser.add_argument("--json", metavar="OUT", help="write the full report as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument(
        "--near-dup-threshold", type=float, default=0.995, help="cosine for level 5 (default 0.995)"
    )
    parser.add_argument(
        "--near-duplicate-max", type=int, default=0, help="level-5 pairs tolerated (default 0)"
    )
    parser.add_argument(
        "--ids-only", action="store_true", help="skip content levels 4-5 (no samples hashed)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the default split")
    parser.add_argument(
        "--fractions", type=float, nargs="+", default=[0.8, 0.1, 0.1], help="default split sizes"
    )
    parser.add_argument(
        "--stratify", metavar="LABEL", help="participant label to stratify the default split by"
    )
    parser.add_argument(
        "--label",
        metavar="NAME",
        help="audit shortcuts to this label (a metadata label of the recordings, e.g. task)",
    )
    parser.add_argument(
        "--positive",
        metavar="VALUE",
        help="the --label value counted as class 1 (default: 0/1 labels)",
    )
    parser.add_argument(
        "--labels",
        metavar="FILE",
        action="append",
        default=[],
        help="labels CSV whose per-participant columns are audited as nuisance variables too",
    )
    parser.add_argument("--progress", action="store_true", help="progress bars")


def run(args: argparse.Namespace) -> int:
    from eegwb.atomic import atomic_write_text
    from eegwb.config import from_dict
    from eegwb.errors import InputError, OutputExistsError
    from eegwb.train.labels import audit_label
    from eegwb.validation.leakage import LeakageConfig
    from eegwb.validation.validation import resolve_splits, validate

    try:
        if args.json and Path(args.json).exists() and not args.overwrite:  # before minutes of audit
            raise OutputExistsError(f"{args.json}: already exists (pass --overwrite to replace it)")
        cfg = from_dict(
            LeakageConfig,
            {
                "near_dup_threshold": args.near_dup_threshold,
                "near_duplicate_max": args.near_duplicate_max,
                "content": not args.ids_only,
            },
        )
        splits, source = resolve_splits(
            args.data_dir,
            args.splits,
            seed=args.seed,
            fractions=tuple(args.fractions),
            stratify=args.stratify,
        )
        if args.splits is None:
            print(f"no --splits given: auditing {source}")
        root = next(iter(splits.values())).root
        label = audit_label(root, args.label, args.positive, args.labels) if args.label else None
        report = validate(
            splits, source=source, leakage_cfg=cfg, label=label, progress=args.progress
        )
        print(report.summary())
        if args.json:
            atomic_write_text(args.json, report.to_json() + "\n", overwrite=args.overwrite)
            print(f"report written to {args.json}")
    except InputError as err:
        print(f"eegwb validate: {err}", file=sys.stderr)
        return 2
    return 1 if report.failed else 0
