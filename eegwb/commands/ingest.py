"""`eegwb ingest SOURCES... --out data/NAME`: real EEG into the dataset layout (data/ingest.py).

Exit codes: 0 all sources written or skipped as unchanged, 1 some sources failed
(`--on-error skip`), 2 the ingest stopped on an error (printed with the file it is about).
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def _run_labels(text: str) -> dict[str, object]:
    from eegwb.data.sources import parse_run_labels

    try:
        return parse_run_labels(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources", nargs="+", help="EEG files, folders (recursive) or BIDS roots; CSV exports"
    )
    parser.add_argument(
        "--out", required=True, help="dataset directory to write (e.g. data/eegmat)"
    )
    parser.add_argument(
        "--window-samples", type=int, default=2048, help="samples per window (default 2048)"
    )
    parser.add_argument(
        "--hop-samples",
        type=int,
        default=None,
        help="samples between window starts (default: window)",
    )
    parser.add_argument("--sfreq", type=float, default=None, help="resample to this rate in Hz")
    parser.add_argument("--l-freq", type=float, default=None, help="band-pass high-pass edge in Hz")
    parser.add_argument("--h-freq", type=float, default=None, help="band-pass low-pass edge in Hz")
    parser.add_argument(
        "--notch", type=float, default=None, help="line frequency in Hz (harmonics notched too)"
    )
    parser.add_argument(
        "--crop-start",
        type=float,
        default=0.0,
        help="seconds dropped from each recording's start, after filtering (default 0)",
    )
    parser.add_argument(
        "--crop-end",
        type=float,
        default=0.0,
        help="seconds dropped from each recording's end, after filtering (eegmat: 3, its taper)",
    )
    parser.add_argument(
        "--participant-pattern",
        default=None,
        help="regex on the file name with groups (?P<participant>...) and (?P<run>...)",
    )
    parser.add_argument(
        "--labels",
        action="append",
        default=[],
        help="CSV/TSV of labels: participant[, run] + label columns (repeatable)",
    )
    parser.add_argument(
        "--run-labels", type=_run_labels, default=None, help="per-run label, e.g. 1=0,2=1"
    )
    parser.add_argument(
        "--run-label-name", default="task", help="name of the --run-labels label (default task)"
    )
    parser.add_argument(
        "--channels", default=None, help="comma-separated channels every source must have"
    )
    parser.add_argument(
        "--elc", default=None, help="ASA .elc electrode positions instead of MNE's template"
    )
    parser.add_argument("--csv-time-unit", choices=("auto", "s", "ms"), default="auto")
    parser.add_argument("--csv-units", choices=("uV", "mV", "V"), default="uV")
    parser.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="stop at the first bad source, or report it and go on",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing, different dataset"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from eegwb.config import from_dict
    from eegwb.data.ingest import IngestConfig, ingest
    from eegwb.errors import InputError

    try:
        cfg = from_dict(IngestConfig, {
            "window_samples": args.window_samples,
            "hop_samples": args.hop_samples,
            "sfreq": args.sfreq,
            "l_freq": args.l_freq,
            "h_freq": args.h_freq,
            "notch_hz": args.notch,
            "crop_start_seconds": args.crop_start,
            "crop_end_seconds": args.crop_end,
            "participant_pattern": args.participant_pattern,
            "labels": tuple(args.labels),
            "run_labels": args.run_labels,
            "run_label_name": args.run_label_name,
            "channels": tuple(c.strip() for c in args.channels.split(",")) if args.channels else None,
            "elc_path": args.elc,
            "csv_time_unit": args.csv_time_unit,
            "csv_units": args.csv_units,
            "on_error": args.on_error,
        })
        report = ingest(
            args.sources, args.out, cfg, overwrite=args.overwrite, progress=not args.no_progress
        )
    except InputError as err:
        log.error("%s", err)
        return 2
    for result in report.failed:
        log.error("failed: %s", result.reason)
    for warning in report.warnings:
        log.warning("%s", warning)
    for removed in report.removed:
        log.info("removed %s", removed)
    print(report.summary())
    return 1 if report.failed else 0
