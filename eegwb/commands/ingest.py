"""`eegwb ingest SOURCES... --out data/NAME`: real EEG into the dataset layout (data/ingest.py).

    eegwb ingest ../shared/data/eegmat --out data/eegmat --config configs/ingest_eegmat.yaml
    eegwb ingest recordings/ --out data/x --set sfreq=256 --set crop_end_seconds=3

The options are an `IngestConfig` (data/ingest_config.py): a YAML file (`--config`), then
`--set KEY=VALUE` overrides, then the flags below (each one sets its config key), checked
as every config is. Exit codes: 0 all sources written or skipped as unchanged, 1 some
sources failed (`--on-error skip`), 2 bad input (printed with the file it is about).
"""

from __future__ import annotations

import argparse
import logging

from eegwb.commands.pretrain import add_set_argument

log = logging.getLogger(__name__)
KEEP = argparse.SUPPRESS  # a flag not given leaves the config's value


def _run_labels(text: str) -> dict[str, object]:
    from eegwb.data.sources import parse_run_labels

    try:
        return parse_run_labels(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources", nargs="+", help="EEG files, folders (recursive) or BIDS roots; CSV exports"
    )
    parser.add_argument(
        "--out", required=True, help="dataset directory to write (e.g. data/eegmat)"
    )
    add_config_options(parser)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing, different dataset"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """--config, --set and the IngestConfig flags: what `eegwb ingest` and notebook 01 read."""
    parser.add_argument("--config", default=None, help="YAML IngestConfig (default: its defaults)")
    add_set_argument(parser, "crop_end_seconds=3")
    group = parser.add_argument_group(
        "config keys as flags (each sets its key, after --config and --set)"
    )
    for flag, key, options in FLAGS:
        group.add_argument(flag, dest=key, default=KEEP, **options)


# (flag, IngestConfig key, argparse options)
FLAGS: tuple[tuple[str, str, dict], ...] = (
    (
        "--window-samples",
        "window_samples",
        {"type": int, "help": "samples per window (default 2048)"},
    ),
    (
        "--hop-samples",
        "hop_samples",
        {"type": int, "help": "samples between window starts (default: window)"},
    ),
    ("--sfreq", "sfreq", {"type": float, "help": "resample to this rate in Hz"}),
    ("--l-freq", "l_freq", {"type": float, "help": "band-pass high-pass edge in Hz"}),
    ("--h-freq", "h_freq", {"type": float, "help": "band-pass low-pass edge in Hz"}),
    (
        "--notch",
        "notch_hz",
        {"type": float, "help": "line frequency in Hz (harmonics notched too)"},
    ),
    (
        "--crop-start",
        "crop_start_seconds",
        {
            "type": float,
            "help": "seconds dropped from each recording's start, after filtering (default 0)",
        },
    ),
    (
        "--crop-end",
        "crop_end_seconds",
        {
            "type": float,
            "help": "seconds dropped from each recording's end, after filtering (eegmat: 3)",
        },
    ),
    (
        "--participant-pattern",
        "participant_pattern",
        {"help": "regex on the file name with groups (?P<participant>...) and (?P<run>...)"},
    ),
    (
        "--labels",
        "labels",
        {
            "action": "append",
            "help": "CSV/TSV of labels: participant[, run] + label columns (repeatable)",
        },
    ),
    ("--run-labels", "run_labels", {"type": _run_labels, "help": "per-run label, e.g. 1=0,2=1"}),
    (
        "--run-label-name",
        "run_label_name",
        {"help": "name of the --run-labels label (default task)"},
    ),
    (
        "--channels",
        "channels",
        {"type": _names, "help": "comma-separated channels every source must have"},
    ),
    ("--elc", "elc_path", {"help": "ASA .elc electrode positions instead of MNE's template"}),
    ("--csv-time-unit", "csv_time_unit", {"choices": ("auto", "s", "ms")}),
    ("--csv-units", "csv_units", {"choices": ("uV", "mV", "V")}),
    (
        "--on-error",
        "on_error",
        {
            "choices": ("raise", "skip"),
            "help": "stop at the first bad source (default), or report it and go on",
        },
    ),
)


def config_overrides(args: argparse.Namespace) -> list[str | tuple[str, object]]:
    """The `--set` overrides, then (key, value) for each IngestConfig flag given."""
    import dataclasses

    from eegwb.data.ingest_config import IngestConfig

    keys = [f.name for f in dataclasses.fields(IngestConfig)]
    return [*args.overrides, *((key, getattr(args, key)) for key in keys if hasattr(args, key))]


def run(args: argparse.Namespace) -> int:
    from eegwb.config import load_config
    from eegwb.data.ingest import IngestConfig, ingest
    from eegwb.errors import InputError

    try:
        cfg = load_config(IngestConfig, args.config, config_overrides(args))
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
