"""`eegwb autopsy`: why a trained model does what it does, as a markdown + HTML report.

    eegwb autopsy --checkpoint checkpoints/mamba2_eeg_d128_l6_m50_mae.pt
    eegwb autopsy --checkpoint ckpt_finetuned.pt --data data/other \
        --sections predictions,ablations --out reports/x

Exit codes: 0 no failed check, 1 a check failed (collapse, dead layers, ...), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys

from eegwb.errors import InputError
from eegwb.experiments.autopsy import SECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, metavar="PATH", help="pretrained or fine-tuned checkpoint"
    )
    parser.add_argument(
        "--data", metavar="DIR", help="dataset to score (default: the checkpoint's own)"
    )
    parser.add_argument(
        "--split",
        choices=("train", "val", "test", "all"),
        help="default: val (pretrained) or the held-out test participants (fine-tuned)",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated (default: {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="report folder (default: reports/autopsy/<checkpoint stem>)"
    )
    parser.add_argument("--max-sequences", type=int, default=32, help="probe set size (default 32)")
    parser.add_argument(
        "--ig-steps", type=int, default=24, help="Integrated Gradients steps (default 24)"
    )
    parser.add_argument(
        "--baselines", default="zero,mean,noise", help="IG baselines (default zero,mean,noise)"
    )
    parser.add_argument(
        "--ablation",
        choices=("zero", "mean"),
        default="zero",
        help="ablate by zeroing or mean window",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing report in --out"
    )
    parser.add_argument("--no-track", action="store_true", help="do not log the report to MLflow")
    parser.add_argument(
        "--run-id", help="MLflow run to nest the report under (default: found by checkpoint tag)"
    )
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: the checkpoint config's)"
    )


def run(args: argparse.Namespace) -> int:
    from eegwb.config import from_dict
    from eegwb.experiments.autopsy import (
        AutopsyConfig,
        default_out_dir,
        parse_sections,
        run_autopsy,
    )

    out = args.out or str(default_out_dir(args.checkpoint))
    try:
        cfg = from_dict(
            AutopsyConfig,
            {
                "split": args.split,
                "max_sequences": args.max_sequences,
                "seed": args.seed,
                "device": args.device,
                "attribution": {
                    "baselines": args.baselines.split(","),
                    "n_steps": args.ig_steps,
                    "seed": args.seed,
                },
                "ablation": {"mode": args.ablation},
            },
        )
        report = run_autopsy(
            args.checkpoint,
            args.data,
            parse_sections(args.sections),
            out,
            config=cfg,
            overwrite=args.overwrite,
            track=not args.no_track,
            run_id=args.run_id,
            tracking_uri=args.tracking_uri,
            bar=sys.stderr.isatty(),
        )
    except InputError as err:
        print(f"eegwb autopsy: error: {err}", file=sys.stderr)
        return 2
    for section, f in report.findings:
        print(f"{f.severity.upper():>4} {section}: {f.what}")
    if not report.findings:
        print("no issues detected")
    print(f"report: {report.files['report.html']} (and report.md, report.json)")
    if report.run_id:
        print(f"mlflow: run {report.run_id}")
    return 1 if any(f.severity == "fail" for _, f in report.findings) else 0
