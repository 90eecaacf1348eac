"""Sweeps: sequential pretraining runs over a grid of config values, in one MLflow experiment.

The original's mask-ratio sweep is

    eegwb sweep --config configs/pretrain.yaml --param masking.mask_ratio=0.2,0.4,0.6,0.8

Every combination is validated before the first run starts. Runs share the base
config's experiment and carry the tag `eegwb.sweep` (one id per sweep). Checkpoints keep
the original names; when a swept key is not part of the name (e.g. train.lr), or two runs'
names are the same anyway (mask ratios 0.12 and 0.125 both name `m12`), each run writes
into its own sub-directory so runs never overwrite each other; a sweep that would still
write one file twice (a repeated value) is refused before anything runs.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegwb.config import ConfigError, apply_overrides, from_dict, parse_value, resolve_key, to_dict
from eegwb.train.autopsy_hook import AutopsyHook, require_hook
from eegwb.train.checkpoints import checkpoint_name
from eegwb.train.config import PretrainConfig
from eegwb.train.pretrain import pretrain

if TYPE_CHECKING:
    import polars as pl

logger = logging.getLogger(__name__)

# Keys that checkpoint_name() spells out: sweeping only these keeps the original file names.
NAMED_KEYS = (
    "model.backbone",
    "model.d_model",
    "model.n_layers",
    "masking.mask_ratio",
    "masking.style",
)


def parse_param(text: str) -> tuple[str, list[Any]]:
    """`"masking.mask_ratio=0.2,0.4"` -> ("masking.mask_ratio", [0.2, 0.4]); values are YAML."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ConfigError(
            f"--param {text!r}: expected KEY=V1,V2,..., e.g. masking.mask_ratio=0.2,0.4"
        )
    return key.strip(), [parse_value(v) for v in values.split(",")]


def expand_grid(params: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination, first key varying slowest."""
    keys = list(params)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(params[k] for k in keys))]


def _label(combo: Mapping[str, Any]) -> str:
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in combo.items())


def _slug(combo: Mapping[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "_".join(f"{k}={v}" for k, v in combo.items()))


@dataclass
class SweepRun:
    overrides: dict[str, Any]
    config: PretrainConfig
    result: Any = None  # RunResult
    error: str = ""


@dataclass
class SweepResult:
    sweep_id: str
    experiment: str
    runs: list[SweepRun] = field(default_factory=list)

    def table(self) -> pl.DataFrame:
        """One row per run: swept values, best/final loss, epochs, stop reason, run id,
        checkpoint."""
        import polars as pl

        rows = []
        for run in self.runs:
            row = {k: str(v) for k, v in run.overrides.items()}
            summary = run.result.summary() if run.result is not None else {}
            row.update(
                best_val_loss=summary.get("best_val_loss", float("nan")),
                final_train_loss=summary.get("final_train_loss", float("nan")),
                epochs=summary.get("epochs", 0),
                stopped=summary.get("stopped", "error") if not run.error else "error",
                run_id=summary.get("run_id", ""),
                checkpoint=summary.get("best_checkpoint", ""),
                error=run.error,
            )
            rows.append(row)
        return pl.DataFrame(rows, infer_schema_length=None)


def sweep_configs(
    base: PretrainConfig, params: Mapping[str, Sequence[Any]], sweep_id: str
) -> list[SweepRun]:
    """One validated config per combination (all checked before anything runs)."""
    full = {resolve_key(PretrainConfig, k): list(v) for k, v in params.items()}
    if not full or any(not v for v in full.values()):
        raise ConfigError("sweep: give at least one --param KEY=V1,V2 with values")
    runs = [SweepRun(combo, _run_config(base, combo, sweep_id)) for combo in expand_grid(full)]
    names = [checkpoint_name(run.config) for run in runs]
    if not set(full) <= set(NAMED_KEYS) or len(set(names)) < len(names):
        for run in runs:
            run.config.train.checkpoint_dir = str(
                Path(base.train.checkpoint_dir) / f"sweep-{_slug(run.overrides)}"
            )
    _refuse_shared_checkpoints(runs)
    return runs


def _run_config(base: PretrainConfig, combo: Mapping[str, Any], sweep_id: str) -> PretrainConfig:
    data = apply_overrides(PretrainConfig, to_dict(base), combo)
    data["tracking"]["tags"] = {
        **data["tracking"].get("tags", {}),
        "eegwb.sweep": sweep_id,
        **{f"eegwb.sweep.{k}": str(v) for k, v in combo.items()},
    }
    if base.tracking.run_name is None:
        data["tracking"]["run_name"] = f"sweep {_label(combo)}"
    try:
        return from_dict(PretrainConfig, data)
    except ConfigError as err:
        raise ConfigError(f"sweep run {_label(combo)}: {err}") from err


def _refuse_shared_checkpoints(runs: list[SweepRun]) -> None:
    """Two runs writing one file would overwrite each other: refuse before any run starts."""
    writer: dict[Path, Mapping[str, Any]] = {}
    for run in runs:
        path = Path(run.config.train.checkpoint_dir) / checkpoint_name(run.config)
        if path in writer:
            raise ConfigError(
                f"sweep runs {_label(writer[path])} and {_label(run.overrides)} would both "
                f"write {path} (is a value repeated?)"
            )
        writer[path] = run.overrides


def run_sweep(
    base: PretrainConfig,
    params: Mapping[str, Sequence[Any]],
    *,
    progress: Callable[[dict], None] | None = None,
    bar: bool | None = None,
    stop_on_error: bool = False,
    autopsy: AutopsyHook | None = None,
) -> SweepResult:
    """Run every combination in turn; a failed run is recorded (and the sweep goes on,
    unless `stop_on_error`). `autopsy` goes to each `pretrain` (see autopsy_hook.py)."""
    sweep_id = time.strftime("%Y%m%d-%H%M%S")
    runs = sweep_configs(base, params, sweep_id)
    for run in runs:
        run.config.check_paths()
        require_hook(run.config.train.autopsy, autopsy)
    out = SweepResult(sweep_id=sweep_id, experiment=base.tracking.experiment, runs=runs)
    for i, run in enumerate(runs):
        logger.info("sweep %s: run %d/%d %s", sweep_id, i + 1, len(runs), _label(run.overrides))
        hook = None if progress is None else (lambda ev, i=i: progress({**ev, "sweep_run": i}))
        try:
            run.result = pretrain(run.config, hook, bar=bar, autopsy=autopsy)
        except Exception as err:
            run.error = f"{type(err).__name__}: {err}"
            logger.error("sweep run %s failed: %s", _label(run.overrides), run.error)
            if stop_on_error:
                raise
    return out
