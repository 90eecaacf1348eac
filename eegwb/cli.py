"""The `eegwb` command line: one subcommand per module in `eegwb/commands/`.

Each command module exposes `add_arguments(parser)` and `run(args) -> int` (the exit
code). Modules are imported only when their subcommand runs, so `eegwb synth` never pays
for importing torch, MLflow or marimo.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, str] = {
    "synth": "write the synthetic cohort (the embedded default dataset)",
    "ingest": "ingest EEG recordings (EDF/BDF/FIF/BrainVision/EEGLAB, BIDS, CSV) into a dataset",
    "validate": "data quality checks and the leakage audit; exit 1 when something fails",
    "pretrain": "masked-reconstruction pretraining (also under torchrun)",
    "sweep": "sequential pretraining runs over a grid of config values",
    "floors": "the information floor ladder of a dataset (no checkpoint needed)",
    "control": "information floors, model diagnostics and the control verdict",
    "finetune": "fine-tune a pretrained backbone on a clinical label",
    "autopsy": "why a trained model does what it does: a diagnostic report",
    "report": "run a notebook into an HTML report that opens offline",
    "info": "environment, kernel path and package versions",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eegwb", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    # Parse only the command name here; the command's module owns the rest of the line.
    top, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if top.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(f"eegwb.commands.{top.command}")
    command_parser = argparse.ArgumentParser(
        prog=f"eegwb {top.command}", description=COMMANDS[top.command]
    )
    module.add_arguments(command_parser)
    # A command that runs another program (`eegwb report nb.py -o out.html -- --data d`)
    # takes everything after `--` as that program's arguments, wherever its options stand.
    passthrough: list[str] = []
    if getattr(module, "PASSTHROUGH", False) and "--" in rest:
        cut = rest.index("--")
        rest, passthrough = rest[:cut], rest[cut + 1 :]
    args = command_parser.parse_args(rest)
    if getattr(module, "PASSTHROUGH", False):
        args.passthrough = passthrough
    return int(module.run(args) or 0)
