"""Control experiments: floors + model diagnostics + verdict for one trained model.

`run_control(checkpoint, ...)` answers in minutes the question the original pipeline
spent a long hand analysis on: with 100% of windows masked, what does the loss that still
falls actually learn? `train_controls()` trains the control configs (configs/control_*.yaml)
through the ordinary pretraining API, and `write_control_cohort()` writes a small
dataset whose position, channel and context information is planted and known, so each
control has a right answer (the default synthetic cohort normalises each channel and
draws random phases, so position and channel carry ~nothing in its signal targets: an
honest control there says "no information").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from eegwb.atomic import atomic_write_text
from eegwb.config import load_config
from eegwb.data.layout import RecordingMeta, build_table, write_recording
from eegwb.data.montage import electrode_positions
from eegwb.errors import InputError, MissingInputError
from eegwb.evaluation.floor_data import TokenKeys, dataset_floors, fit_floors, loader
from eegwb.evaluation.floors import KINDS, LABELS, Floors
from eegwb.experiments.autopsy import autopsy_once
from eegwb.experiments.model_probe import ModelDiagnostics, load_objective, open_split, probe
from eegwb.experiments.verdict import InputInfo, Verdict, VerdictConfig, decide
from eegwb.train.config import PretrainConfig
from eegwb.train.pretrain import pretrain
from eegwb.train.tracking import find_project_root

CONTROLS = {
    "a": "control_a_mask100_enc_off",  # mask 1.0, both encodings off
    "b": "control_b_mask100_temporal",  # mask 1.0, temporal on, spatial off
    "c": "control_c_mask100_both",  # mask 1.0, both on
    "d": "control_d_mask50",  # mask 0.5, both on
}


def control_config_path(name: str, configs_dir: str | Path | None = None) -> Path:
    """configs/control_*.yaml for a control letter ("a".."d") or full name."""

    stem = CONTROLS.get(name, name)
    path = (
        Path(configs_dir or find_project_root(Path(__file__).parent) / "configs") / f"{stem}.yaml"
    )
    if not path.is_file():
        raise MissingInputError(
            f"{path}: control config {name!r} does not exist "
            f"(known: {', '.join(f'{k}={v}' for k, v in CONTROLS.items())})"
        )
    return path


# ----------------------------------------------------------------------------- the report


@dataclass
class ControlReport:
    name: str
    inputs: InputInfo
    floors: Floors
    diagnostics: ModelDiagnostics
    verdict: Verdict
    checkpoint: str = ""
    model: dict[str, Any] = field(default_factory=dict)  # the checkpoint's model/masking config

    def floor_frame(self) -> pl.DataFrame:
        """kind, information, mse (exact), mse_unbiased, n_groups, min_group."""
        return pl.DataFrame(self.floors.rows())

    def diagnostics_frame(self) -> pl.DataFrame:
        """diagnostic, value, threshold, original, reading."""
        return pl.DataFrame(self.diagnostics.rows())

    def summary(self) -> dict[str, Any]:
        u = {f"floor_{k}": self.floors.reference(k) for k in KINDS}
        return {
            "control": self.name,
            "mask_ratio": self.inputs.mask_ratio,
            "temporal": self.inputs.temporal_encoding,
            "spatial": self.inputs.spatial_encoding,
            "loss": self.diagnostics.val_loss,
            **u,
            "floors": self.floors.basis,
            "verdict": self.verdict.title,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "checkpoint": self.checkpoint,
            "inputs": asdict(self.inputs),
            "model": self.model,
            "floors": self.floors.to_dict(),
            "diagnostics": self.diagnostics.to_dict(),
            "verdict": self.verdict.to_dict(),
        }

    def save_json(self, path: str | Path, overwrite: bool = False) -> Path:
        """The report as JSON at `path`; an existing file is replaced only with `overwrite`
        (else `OutputExistsError` naming it)."""
        return save_reports_json(self, path, overwrite=overwrite)

    def text(self) -> str:
        """The floor table, the diagnostics table and the verdict, for a terminal."""
        lines = [
            f"Control: {self.name}" + (f" ({self.checkpoint})" if self.checkpoint else ""),
            (
                f"inputs: mask {self.inputs.mask_ratio:.0%}, temporal encoding "
                f"{'on' if self.inputs.temporal_encoding else 'off'}, spatial encoding "
                f"{'on' if self.inputs.spatial_encoding else 'off'}, target {self.inputs.target}"
            ),
            f"tokens scored: {self.floors.n_tokens} masked x {self.floors.dim} (a token: one "
            + "channel's window)",
            "",
            *self.floors.table_lines(),
            f"{'model loss':<24}{self.diagnostics.val_loss:>10.4f}",
        ]
        lines += ["", f"{'diagnostic':<26}{'value':>10}  {'threshold':<12}{'original':<36}reading"]
        for r in self.diagnostics.rows():
            lines.append(
                f"{r['diagnostic']:<26}{r['value']:>10.4f}  {r['threshold']:<12}"
                f"{r['original']:<36}{r['reading']}"
            )
        return "\n".join([*lines, "", self.verdict.text()])


def save_reports_json(
    reports: ControlReport | Sequence[ControlReport], path: str | Path, overwrite: bool = False
) -> Path:
    """One report as a JSON object, or several as a list; an existing `path` is replaced only
    with `overwrite` (else `OutputExistsError` naming it)."""
    data = (
        reports.to_dict() if isinstance(reports, ControlReport) else [r.to_dict() for r in reports]
    )
    text = json.dumps(data, indent=2, default=_json_default, allow_nan=True)
    return atomic_write_text(path, text + "\n", overwrite=overwrite)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


def run_control(
    checkpoint_or_objective: str | Path | torch.nn.Module,
    dataset: Any = None,
    *,
    split: str = "val",
    batch_size: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
    verdict_cfg: VerdictConfig | None = None,
    name: str | None = None,
    train_dataset: Any = None,
) -> ControlReport:
    """Floors, diagnostics and verdict of one model on one split.

    checkpoint_or_objective: a pretraining checkpoint, or a MaskedReconstruction-like
    objective (with `.model.cfg` and `.masking`). dataset: an EEGDataset, a dataset
    directory (the checkpoint's split fractions applied to it), or None for the
    checkpoint's own `split` of its training data. The transfer floors learn their group
    means on `train_dataset` (default, with a checkpoint and split val: the same data's
    train split); without one the verdict uses the unbiased in-sample floors.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    checkpoint = ""
    if isinstance(checkpoint_or_objective, torch.nn.Module):
        objective = checkpoint_or_objective.to(device)
        if dataset is None or isinstance(dataset, (str, Path)):
            raise ValueError(
                "run_control: with an objective instead of a checkpoint, pass an EEGDataset"
            )
    else:
        checkpoint = str(checkpoint_or_objective)
        objective, cfg = load_objective(checkpoint, device)
        if dataset is None or isinstance(dataset, (str, Path)):
            root, dataset = dataset, open_split(cfg, split, data_root=dataset)
            if train_dataset is None and split == "val":
                train_dataset = open_split(cfg, "train", data_root=root)
    model_cfg, masking = objective.model.cfg, objective.masking
    keys, train = TokenKeys(), None
    if train_dataset is not None:
        batches = (b.to(device) for b in loader(train_dataset, batch_size))
        train = fit_floors(batches, objective.targets, keys, keys.people(train_dataset.index))
    floors, diag = probe(
        objective,
        (b.to(device) for b in loader(dataset, batch_size)),
        seed=seed,
        keys=keys,
        people=keys.people(dataset.index),
        train=train,
    )
    inputs = InputInfo.from_config(model_cfg, masking)
    verdict = decide(floors, diag, inputs, verdict_cfg)
    model = {
        **{k: v for k, v in asdict(model_cfg).items() if isinstance(v, (str, int, float, bool))},
        "mask_ratio": masking.mask_ratio,
        "mask_style": masking.style,
    }
    return ControlReport(
        name or (Path(checkpoint).stem if checkpoint else "model"),
        inputs,
        floors,
        diag,
        verdict,
        checkpoint,
        model,
    )


# ----------------------------------------------------------------------------- charts and tables


def summary_frame(reports: Sequence[ControlReport]) -> pl.DataFrame:
    """One row per control: inputs, loss, unbiased floors, verdict."""
    return pl.DataFrame([r.summary() for r in reports])


def ladder_chart(
    reports: ControlReport | Sequence[ControlReport], title: str = "floor ladder"
) -> Any:
    """Floors as dots (the verdicts' reference: transfer, else unbiased; the exact in-sample
    floor as a tick), each model's loss as a dashed horizontal rule, the axis zoomed to the
    values: 0.97 vs 1.01 vs 1.03 is the answer, and on an axis from 0 they look equal (bars
    from 0 would mislead on a zoomed axis, hence dots). The floors drawn are the first
    report's: give reports of one split and fixed targets (signal), or one per chart."""
    import altair as alt

    reports = [reports] if isinstance(reports, ControlReport) else list(reports)
    order = [LABELS[k] for k in KINDS]
    floors = pl.DataFrame(reports[0].floors.rows()).fill_nan(None)  # no transfer: null, not NaN
    losses = pl.DataFrame(
        [{"model": f"{r.name}: {r.verdict.title}", "loss": r.diagnostics.val_loss} for r in reports]
    )
    # zoomed to the verdicts' floors and the losses; an exact in-sample floor far below
    # them (groups of one token score 0) is clipped, its number in the floors table
    shown = [
        v for v in [*floors["reference"], *losses["loss"]] if v is not None and math.isfinite(v)
    ]
    lo, hi = (min(shown), max(shown)) if shown else (0.0, 1.0)
    pad = 0.08 * (hi - lo) or 0.05 * abs(hi) or 0.05
    y_scale = alt.Scale(domain=[lo - pad, hi + pad], zero=False, nice=False)
    x = alt.X(
        "information:N",
        sort=order,
        title="what the model may know",
        axis=alt.Axis(labelAngle=-20, labelLimit=160),
    )
    basis = reports[0].floors.basis
    dots = (
        alt.Chart(floors)
        .mark_point(filled=True, size=120)
        .encode(
            x=x,
            y=alt.Y("reference:Q", title=f"MSE per element ({basis} floor; zoomed)", scale=y_scale),
            tooltip=[
                "information",
                alt.Tooltip("reference:Q", title="verdicts' floor", format=".4f"),
                alt.Tooltip("mse_transfer:Q", title="transfer", format=".4f"),
                alt.Tooltip("mse_unbiased:Q", title="unbiased (in-sample)", format=".4f"),
                alt.Tooltip("mse:Q", title="exact (in-sample)", format=".4f"),
                "n_groups",
                alt.Tooltip("participants_per_group:Q", title="training people per group"),
            ],
        )
    )
    ticks = (
        alt.Chart(floors)
        .mark_tick(color="black", thickness=2, clip=True)
        .encode(x=x, y=alt.Y("mse:Q", scale=y_scale))
    )
    rules = (
        alt.Chart(losses)
        .mark_rule(strokeWidth=2, strokeDash=[6, 3])
        .encode(
            y=alt.Y("loss:Q", scale=y_scale),
            color=alt.Color("model:N", title="model validation loss"),
            tooltip=["model", alt.Tooltip("loss:Q", format=".4f")],
        )
    )
    return (dots + ticks + rules).properties(title=title, width=420, height=260)


def floor_lines(cfg: Any, split: str = "val") -> dict[str, float] | None:
    """The floors a pretraining config's `split` sets for its loss chart, {name: MSE}: the
    verdicts' reference (transfer floors from the train split's participants), to draw with
    `eegwb.train.pretrain_steps.loss_chart(floors=...)`. None for learned targets: their
    floors depend on the model, so only a checkpoint has them (`eegwb control`)."""
    if cfg.model.target != "signal":
        return None
    floors = dataset_floors(open_split(cfg, split), open_split(cfg, "train"))
    return {
        "dataset mean": floors.reference("nothing"),
        "position": floors.reference("position"),
        "channel x position": floors.reference("channel_position"),
    }


# --------------------------------------------------------------------------- training the controls


def train_controls(
    names: Sequence[str] = ("a", "b", "c", "d"),
    *,
    data_root: str | Path | None = None,
    checkpoint_dir: str | Path = "checkpoints/control",
    overrides: Sequence[str] = (),
    configs_dir: str | Path | None = None,
    progress: Callable[[str, dict], None] | None = None,
) -> dict[str, Any]:
    """Pretrain each control config (eegwb.train.pretrain) -> {letter: RunResult}.

    Each control writes to `checkpoint_dir/<config name>/` (their checkpoint names would
    otherwise clash: (a)-(c) share width, depth and mask ratio). `overrides` are
    `key=value` strings applied to every control, after `data_root`.
    """

    results = {}
    for name in names:
        path = control_config_path(name, configs_dir)
        extra = [f"data.root={data_root}"] if data_root is not None else []
        extra.append(f"train.checkpoint_dir={Path(checkpoint_dir) / path.stem}")
        cfg = load_config(PretrainConfig, path, [*extra, *overrides])
        callback = (lambda event, _n=name: progress(_n, event)) if progress else None
        results[name] = pretrain(cfg, callback, bar=False, autopsy=autopsy_once)
    return results


# ---------------------------------------------------------------------- a cohort with known floors


@dataclass
class ControlCohortConfig:
    """Windows = position template x a(t/T) + channel template + AR(1) context + noise."""

    n_participants: int = 32  # half train, half validation in the control configs
    runs_per_participant: int = 2  # groups of the val split hold >= 2 tokens (unbiased floors)
    channels: tuple[str, ...] = ("TP9", "AF7", "AF8", "TP10")  # Muse: the original's headset
    n_windows: int = 16
    window_samples: int = 32  # tiny windows: the controls train in seconds on a CPU
    sfreq: float = 64.0
    position_amp: float = 1.0  # amplitude of the position-locked waveform (cos of t/T)
    channel_amp: float = 1.0  # amplitude of each channel's own waveform
    context_amp: float = 1.0  # AR(1) process over windows: predictable from neighbours only
    context_rho: float = 0.9  # window-to-window correlation of the context process
    noise_amp: float = 0.5  # white noise: what nothing predicts
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_participants < 2 or self.runs_per_participant < 1 or self.n_windows < 2:
            raise ValueError(
                "ControlCohortConfig: need n_participants >= 2, runs >= 1, n_windows >= 2"
            )
        if self.window_samples < 16:
            raise ValueError(
                f"ControlCohortConfig.window_samples: must be >= 16, got {self.window_samples}"
            )
        if not 0.0 <= self.context_rho < 1.0:
            raise ValueError(
                f"ControlCohortConfig.context_rho: must be in [0, 1), got {self.context_rho}"
            )
        if min(self.position_amp, self.channel_amp, self.context_amp, self.noise_amp) < 0:
            raise ValueError("ControlCohortConfig: amplitudes must be >= 0")


def write_control_cohort(
    out: str | Path, cfg: ControlCohortConfig | None = None, *, overwrite: bool = False
) -> dict[str, Any]:
    """Write the cohort in the dataset layout plus manifest.json; returns the manifest."""

    cfg = cfg or ControlCohortConfig()
    out = Path(out)
    t, n = cfg.window_samples, cfg.n_windows
    s = np.arange(t) / t
    root2 = math.sqrt(2.0)
    position_wave = root2 * np.sin(2 * np.pi * 1 * s)  # (t,) unit power
    channel_waves = {
        ch: root2 * np.sin(2 * np.pi * (2 + k) * s + k) for k, ch in enumerate(cfg.channels)
    }
    context_wave = root2 * np.sin(2 * np.pi * 7 * s + 0.5)
    profile = np.cos(np.pi * np.arange(n) / (n - 1))  # (n,) position profile over the sequence
    positions = electrode_positions(cfg.channels)
    rng = np.random.default_rng(cfg.seed)
    files = []
    for p in range(cfg.n_participants):
        for r in range(cfg.runs_per_participant):
            signals = {}
            for ch in cfg.channels:
                z = np.empty(n)
                z[0] = rng.standard_normal()
                for i in range(1, n):
                    z[i] = (
                        cfg.context_rho * z[i - 1]
                        + math.sqrt(1 - cfg.context_rho**2) * rng.standard_normal()
                    )
                x = (
                    cfg.position_amp * profile[:, None] * position_wave
                    + cfg.channel_amp * channel_waves[ch]
                    + cfg.context_amp * z[:, None] * context_wave
                    + cfg.noise_amp * rng.standard_normal((n, t))
                )  # (n, t)
                signals[ch] = (10.0 * x).astype(np.float32)  # µV-like scale
            meta = RecordingMeta(
                sfreq=cfg.sfreq,
                window_samples=t,
                hop_samples=t,
                channel_positions=positions,
                montage="muse",
                source_file="eegwb.experiments.control.write_control_cohort",
                source_hash=f"control-{cfg.seed}-{p}-{r}",
            )
            table = build_table(f"{p + 1:02d}", str(r + 1), signals, np.arange(n) * t, meta)
            files.append(write_recording(out, table, overwrite=overwrite).name)
    manifest = {
        "kind": "control_cohort",
        "config": asdict(cfg),
        "files": files,
        "planted": {
            "position": "cos(pi i/(n-1)) x sin(2 pi s/t)",
            "channel": "sin(2 pi (2 + k) s/t + k) for channel k",
            "context": f"AR(1) rho={cfg.context_rho} x sin(2 pi 7 s/t + 0.5)",
        },
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
