"""Small helpers every notebook shares: when to run without a click, CLI arguments, and
stopping on bad input.

Seen with marimo 0.25.2: under `marimo export html nb.py -- --args`, `mo.app_meta().mode`
reads "edit", not "script". So "run without a click" is decided from the CLI arguments
(`mo.cli_args()`), and the mode only adds the plain `python nb.py` case.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from eegwb.commands.ingest import add_config_options as add_ingest_options
from eegwb.commands.ingest import config_overrides as ingest_overrides
from eegwb.commands.pretrain import add_set_argument, shortcut_overrides

EXIT_BAD_INPUT = 2  # as the `eegwb` commands exit on unreadable data, configs or checkpoints


def cli_args() -> dict[str, Any]:
    """`mo.cli_args()` as a plain dict ({} when marimo is not running the notebook)."""
    import marimo as mo

    try:
        return dict(mo.cli_args())
    except Exception:  # noqa: BLE001 - outside a marimo runtime, any failure means "no args"
        return {}


def autorun() -> bool:
    """True when the notebook runs headless: CLI arguments given, or `python nb.py`."""
    import marimo as mo

    if cli_args():
        return True
    meta = mo.app_meta()
    return meta.mode == "script"


def arg(name: str, default: Any = None) -> Any:
    """One CLI argument (`--name value`), or `default`; '-' and '_' are interchangeable."""
    args = cli_args()
    for key in (name, name.replace("_", "-"), name.replace("-", "_")):
        if key in args:
            return args[key]
    return default


def flag(name: str, default: bool = False) -> bool:
    """A boolean CLI switch (`--overwrite`), `default` when absent.

    marimo's `mo.cli_args()` turns a bare `--overwrite` into '' (falsy), so presence counts
    as True; explicit values 'false'/'0'/'no'/'off' count as False.
    """
    sentinel = object()
    value = arg(name, sentinel)
    if value is sentinel:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in {"false", "0", "no", "off"}


def stop_or_exit(condition: bool, shown: Any, message: str) -> None:
    """`mo.stop(condition, shown)` in an open notebook; headless, a failure that says why.

    In the browser the dependent cells wait and `shown` (a callout) says what to fix. A
    headless run (`python nb.py --args`, `marimo export html ... -- --args`) would end there
    with exit code 0 and nothing printed, and a script would carry on as if it had worked:
    there `message` (plain text naming the file or setting) goes to stderr and the run exits
    with `EXIT_BAD_INPUT` (`marimo export` reports any failed cell as exit code 1).
    """
    import marimo as mo

    if condition and autorun():
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)
    mo.stop(condition, shown)


def _known_args(add_options: Callable[[argparse.ArgumentParser], None]) -> argparse.Namespace:
    """The run's arguments that `add_options` defines, read from `sys.argv` as the command
    reads them (others are left to `arg()`). marimo sets `sys.argv` to the notebook's
    arguments, also under `marimo export html nb.py -- --args`; `mo.cli_args()` would split
    `--set a.b=1` at the `=` into a key "set a.b"."""
    parser = argparse.ArgumentParser(prog="notebook", allow_abbrev=False)
    add_options(parser)
    return parser.parse_known_args(sys.argv[1:] if cli_args() else [])[0]


def config_overrides() -> list[str]:
    """A headless run's config overrides, read as `eegwb pretrain` reads them: `--set
    KEY=VALUE` (repeatable, e.g. `--set model.d_model=64`), then `--overwrite` and
    `--no-track` (`shortcut_overrides`). [] in an open notebook."""
    sets = _known_args(lambda parser: add_set_argument(parser, "model.d_model=64"))
    return sets.overrides + shortcut_overrides(
        overwrite=flag("overwrite"), no_track=flag("no-track")
    )


def ingest_config_args() -> tuple[str | None, list]:
    """(`--config`, overrides) of a headless notebook 01 run, read by `eegwb ingest`'s own
    options (commands/ingest.py): `--config`, `--set` and the IngestConfig flags."""
    known = _known_args(add_ingest_options)
    return known.config, ingest_overrides(known)


def load_config_or_stop(cls: type, path: str | None, overrides: Sequence = ()) -> tuple[Any, Any]:
    """(config, a line saying it loaded): the YAML file at `path` with `overrides` (usually
    `config_overrides()`) applied; a bad file or override stops the cell (`stop_or_exit`).

    In the browser the red callout names the bad key instead of a traceback; headless, the
    run exits non-zero with the same reason.
    """
    import marimo as mo

    from eegwb.config import ConfigError, load_config

    cfg, error = None, None
    try:
        cfg = load_config(cls, path, overrides)
    except ConfigError as err:
        error = err
    stop_or_exit(
        cfg is None,
        mo.callout(mo.md(f"**Config not loaded.** {error}"), kind="danger"),
        f"config not loaded: {error}",
    )
    shown = ", ".join(f"`{o}`" if isinstance(o, str) else f"`{o[0]}={o[1]}`" for o in overrides)
    source = f"`{path}`" if path else "the defaults"
    return cfg, mo.md(
        f"Loaded {source}{' with ' + shown if shown else ''}; the widgets below start from it."
    )


def default_config(cpu: str, gpu: str) -> str:
    """The config a notebook opens with: `gpu` where CUDA is available, else `cpu` (the
    original's d_model-128, 6-layer model trains for hours on a laptop CPU)."""
    import torch

    return gpu if torch.cuda.is_available() else cpu


def table_numbers(frame: Any, digits: int = 4) -> Any:
    """A Polars frame for people to read: floats rounded to `digits` significant digits
    (1.0123, not 1.0123456789012345)."""
    import polars as pl

    return frame.with_columns(pl.col(pl.Float32, pl.Float64).round_sig_figs(digits))
