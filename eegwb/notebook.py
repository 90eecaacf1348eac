"""Small helpers every notebook shares: when to run without a click, and CLI arguments.

Seen with marimo 0.25.2: under `marimo export html nb.py -- --args`, `mo.app_meta().mode`
reads "edit", not "script". So "run without a click" is decided from the CLI arguments
(`mo.cli_args()`), and the mode only adds the plain `python nb.py` case.
"""

from __future__ import annotations

from typing import Any


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


def load_config_or_callout(cls: type, path: str) -> tuple[Any, Any]:
    """(config, a line saying it loaded) or (None, a red callout naming the bad key).

    For a notebook cell that then does `mo.stop(cfg is None, shown)`: a bad config file
    stops the dependent cells with the reason on screen instead of a traceback.
    """
    import marimo as mo

    from eegwb.config import ConfigError, load_config

    try:
        cfg = load_config(cls, path)
    except ConfigError as err:
        return None, mo.callout(mo.md(f"**Config not loaded.** {err}"), kind="danger")
    return cfg, mo.md(f"Loaded `{path}`; the widgets below start from it.")
