"""The `eegwb` subcommands, one module each: `add_arguments(parser)` and `run(args) -> int`
(the exit code; 2 for an `eegwb.errors.InputError`). `eegwb/cli.py` imports a module only
when its subcommand runs."""

__all__ = [
    "autopsy",
    "control",
    "finetune",
    "info",
    "ingest",
    "pretrain",
    "report",
    "sweep",
    "synth",
    "validate",
]
