"""Shortcut audit: can the label be predicted from nuisance variables alone?

A model can score on a label without its physiology when something else differs between
the classes: on PhysioNet's EEGMAT, rest recordings give 22 windows of 8 s and arithmetic
ones 7, and a fine-tuned model that learnt nothing reached recording AUROC 0.88-0.91 from
sequence length alone. For each nuisance variable (`shortcut_variables.py`) this fits a
simple model of the label on that variable only, cross-validated over participants
(StratifiedGroupKFold; logistic regression on the standardised value, one-hot for
categories), scores AUROC on the out-of-fold predictions, and gives a 95% CI from the
participant bootstrap of `eegwb.evaluation.metrics` (the folds are not refitted). Each
variable is a `Check` named `shortcut/<variable>`:

    fail   AUROC >= fail_auroc and the CI's lower bound above 0.5: a clear shortcut
    warn   the CI's lower bound above 0.5 (weaker, but not chance), or AUROC >=
           fail_auroc with too few participants to exclude chance
    pass   otherwise; a constant variable passes with "constant: carries nothing"

Variables fall in two kinds. *Removable* ones the pipeline can take away (length and
position: length-matched crops; channel set: a common channel list; sampling rate: one
rate at ingest), and the fine-tuning gate refuses on them. *Design* ones are in how the
data were collected (recording order or date, amplitude, line noise, metadata): no crop
removes them, so they are reported and left to the researcher to judge (a real effect can
move amplitude: alpha power at rest).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from eegwb.errors import InputError
from eegwb.evaluation.metrics import auroc, bootstrap_ci
from eegwb.validation.checks import Check, Status
from eegwb.validation.shortcut_variables import (
    BUILTIN,
    METADATA_PREFIX,
    SIGNAL_VARIABLES,
    describe,
    nuisance_frame,
)

REMOVABLE = {  # variable -> what removes it
    "n_windows": "equal-length units (finetune data.length_match=crop)",
    "position_s": "crops at the same offsets in every recording (finetune data.length_match=crop)",
    "channel_set": "one channel list for every recording (data.channels)",
    "sfreq": "one sampling rate for every recording (ingest --sfreq)",
}
DESIGN = {  # variable -> what a failing one means (no crop removes it)
    "recording_order": "the classes were recorded in a fixed order: time in session (electrode "
    "drift, fatigue) cannot be told from the label",
    "recording_date": "the classes were recorded at different times (equipment, site, season)",
    "amplitude_uv": "a gain or impedance difference, or the label's own physiology (e.g. alpha "
    "power); per-recording normalisation hides it from the deep models, not from band power",
    "line_noise": "the classes were recorded in different electrical environments",
    "null_space": "the classes were cleaned differently (more ICA components removed, or "
    "another reference, in one of them): a model that mixes channels can read the label from "
    "the channels' linear dependencies instead of the brain",
}
CATEGORICAL = ("channel_set", "sfreq")  # few distinct values, no order that matters


class ShortcutError(InputError):
    """A shortcut the pipeline can remove clearly predicts the label: evaluation refused."""


@dataclass(frozen=True)
class ShortcutConfig:
    fail_auroc: float = 0.7  # "clearly predicts": 0.7 is where discrimination is conventionally
    # called acceptable (Hosmer & Lemeshow); a nuisance that good would carry a model's score
    confidence: float = 0.95  # of the participant-bootstrap CI
    n_folds: int = 5  # participant-grouped folds (fewer when fewer participants)
    n_boot: int = 1000  # bootstrap resamples of participants
    C: float = 1.0  # inverse L2 strength of the logistic regression (values are standardised)
    min_participants: int = 4  # fewer cannot be cross-validated over participants
    max_windows_read: int = 16  # windows per recording read for amplitude and line noise
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 < self.fail_auroc <= 1.0:
            raise ValueError(
                f"ShortcutConfig.fail_auroc must be in (0.5, 1], got {self.fail_auroc}"
            )
        if not 0 < self.confidence < 1:
            raise ValueError(f"ShortcutConfig.confidence must be in (0, 1), got {self.confidence}")
        for name in ("n_folds", "min_participants"):
            if getattr(self, name) < 2:
                raise ValueError(f"ShortcutConfig.{name} must be >= 2, got {getattr(self, name)}")
        if self.n_boot < 10 or self.max_windows_read < 1 or self.C <= 0:
            raise ValueError("ShortcutConfig: need n_boot >= 10, max_windows_read >= 1, C > 0")


def _features(values: pl.Series, categorical: bool) -> np.ndarray | None:
    """(n, f) design matrix of one variable, or None when it is constant."""
    if values.drop_nulls().n_unique() + int(values.null_count() > 0) < 2:
        return None
    if categorical or values.dtype == pl.String:
        codes = values.cast(pl.String).fill_null("(missing)").to_numpy()
        return (codes[:, None] == np.unique(codes)[None, :]).astype(np.float64)  # one-hot
    x = values.cast(pl.Float64).to_numpy()
    missing = np.isnan(x)
    filled = np.where(missing, np.nanmedian(x), x)
    return np.column_stack([filled, missing]) if missing.any() else filled[:, None]


def out_of_fold_scores(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, cfg: ShortcutConfig
) -> np.ndarray:
    """(n,) P(label 1) of each unit from a model fitted on other participants only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = min(cfg.n_folds, len(np.unique(groups)))
    scores = np.full(len(y), np.nan)
    with warnings.catch_warnings():  # "least populated class has only n members": k is capped
        warnings.simplefilter("ignore", UserWarning)
        folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(
            x, y, groups
        )
        for train, test in folds:
            if len(np.unique(y[train])) < 2:  # nothing to learn: the training prevalence
                scores[test] = y[train].mean()
                continue
            model = make_pipeline(
                StandardScaler(), LogisticRegression(C=cfg.C, class_weight="balanced")
            )
            scores[test] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return scores


def shortcut_status(auc: float, low: float, cfg: ShortcutConfig) -> Status:
    """fail / warn / pass from a cross-validated AUROC and its CI's lower bound (see above)."""
    clear = math.isfinite(low) and low > 0.5
    if clear and auc >= cfg.fail_auroc:
        return "fail"
    return "warn" if clear or auc >= cfg.fail_auroc else "pass"


def _class_contrast(values: pl.Series, y: np.ndarray) -> str:
    """How the classes differ in this variable, in a few words."""
    parts = []
    for cls in (1, 0):
        v = values.filter(pl.Series(y == cls))
        if v.dtype == pl.String or v.drop_nulls().n_unique() <= 3:
            top = (
                v.map_elements(_fmt, return_dtype=pl.String)
                .fill_null("(missing)")
                .value_counts(sort=True)
            )
            parts.append(f"label {cls}: mostly {top[0, 0]} ({top[0, 1]} of {v.len()})")
        else:
            lo, med, hi = (_fmt(float(v.quantile(q))) for q in (0.0, 0.5, 1.0))
            parts.append(f"label {cls}: median {med} (range {lo}-{hi})")
    return "; ".join(parts)


def _fmt(value: object) -> str:
    """3 significant digits; whole numbers without a decimal point."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.3g}"
    return str(value)


def audit_variable(frame: pl.DataFrame, variable: str, cfg: ShortcutConfig, unit: str) -> Check:
    """One `shortcut/<variable>` check of the units in `frame` (participant, label, variable)."""
    name = f"shortcut/{variable}"
    values = frame[variable]
    y = frame["label"].to_numpy().astype(int)
    people = frame["participant"].to_numpy().astype(str)
    n_people = len(np.unique(people))
    numbers: dict[str, object] = {
        "variable": variable,
        "unit": unit,
        "n_units": frame.height,
        "n_participants": n_people,
        "removable": variable in REMOVABLE,
    }
    what = describe(variable)
    x = _features(values, variable in CATEGORICAL)
    if x is None:
        known = values.drop_nulls()
        said = f"constant ({_fmt(known[0])})" if known.len() else "unknown for every unit"
        return Check(
            name,
            "pass",
            f"{what}: {said}: carries nothing",
            numbers | {"auroc": 0.5, "auroc_low": 0.5, "auroc_high": 0.5, "constant": True},
        )
    scores = out_of_fold_scores(x, y, people, cfg)
    auc = auroc(y, scores)
    ci = bootstrap_ci(
        y, scores, people, n_boot=cfg.n_boot, confidence=cfg.confidence, seed=cfg.seed
    )["auroc"]
    status = shortcut_status(auc, ci[0], cfg)
    numbers |= {
        "auroc": auc,
        "auroc_low": ci[0],
        "auroc_high": ci[1],
        "constant": False,
        "contrast": _class_contrast(values, y),
    }
    auc_ci = f"AUROC {auc:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    summary = f"{what} alone predicts the label with {auc_ci} per {unit}"
    if status != "pass":
        summary += f" ({numbers['contrast']})"
        if variable in REMOVABLE:
            summary += f"; removed by {REMOVABLE[variable]}"
        else:
            why = DESIGN.get(variable, "a confound in the design, or a copy of the label")
            summary += f"; in the data's design, no crop removes it: {why}"
        if status == "warn" and not (math.isfinite(ci[0]) and ci[0] > 0.5):
            summary += f"; {n_people} participants are too few to exclude chance"
    return Check(name, status, summary, numbers)


def audit_shortcuts(
    frame: pl.DataFrame,
    cfg: ShortcutConfig | None = None,
    *,
    unit: str,
    variables: Sequence[str] | None = None,
    skip: Sequence[str] = (),
) -> list[Check]:
    """`shortcut/<variable>` checks of every nuisance column of `frame` (or `variables`)
    but `skip`: frame has `participant`, `label` (0/1) and one column per variable, one
    row per unit."""
    cfg = cfg or ShortcutConfig()
    names = (
        list(variables)
        if variables is not None
        else [
            c
            for c in frame.columns
            if (c in BUILTIN or c.startswith(METADATA_PREFIX)) and c not in skip
        ]
    )
    n_people = frame["participant"].n_unique() if frame.height else 0
    if n_people < cfg.min_participants or frame["label"].n_unique() < 2:
        return [
            Check(
                "shortcut/audit",
                "pass",
                f"not assessed: {n_people} participants and {frame['label'].n_unique()} classes "
                f"(cross-validating over participants needs >= {cfg.min_participants} "
                "and both classes)",
                {"unit": unit, "n_units": frame.height, "n_participants": n_people},
            )
        ]
    return [audit_variable(frame, v, cfg, unit) for v in names]


# ----------------------------------------------------------------------------- a dataset's audit


@dataclass
class ShortcutReport:
    """The checks of one audit, and the per-unit table they were computed from."""

    checks: list[Check]
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)  # unit -> nuisance frame

    def table(self) -> pl.DataFrame:
        """One row per check: name, unit, status, auroc with CI, units, participants, summary."""
        rows = [
            {
                "check": c.name,
                "unit": c.numbers.get("unit"),
                "status": c.status,
                "auroc": c.numbers.get("auroc"),
                "auroc_low": c.numbers.get("auroc_low"),
                "auroc_high": c.numbers.get("auroc_high"),
                "n_units": c.numbers.get("n_units"),
                "n_participants": c.numbers.get("n_participants"),
                "summary": c.summary,
            }
            for c in self.checks
        ]
        schema = {
            "check": pl.String,
            "unit": pl.String,
            "status": pl.String,
            "auroc": pl.Float64,
            "auroc_low": pl.Float64,
            "auroc_high": pl.Float64,
            "n_units": pl.Int64,
            "n_participants": pl.Int64,
            "summary": pl.String,
        }
        return pl.DataFrame(rows, schema=schema, orient="row")

    def chart(self, fail_auroc: float = ShortcutConfig.fail_auroc):
        """AUROC of each nuisance variable with its CI, over chance (0.5) and the fail line."""
        import altair as alt

        data = self.table().drop_nulls("auroc")
        y = alt.Y("check:N", sort=None, title=None)
        scale = alt.Scale(domain=[0, 1])
        colors = alt.Scale(domain=["pass", "warn", "fail"], range=["#4c956c", "#f4a259", "#bc4b51"])
        bars = (
            alt.Chart(data)
            .mark_bar(height=10)
            .encode(
                x=alt.X(
                    "auroc:Q", scale=scale, title="cross-validated AUROC from the variable alone"
                ),
                y=y,
                color=alt.Color("status:N", scale=colors),
                tooltip=[
                    "check",
                    "unit",
                    alt.Tooltip("auroc:Q", format=".3f"),
                    alt.Tooltip("auroc_low:Q", format=".3f"),
                    alt.Tooltip("auroc_high:Q", format=".3f"),
                    "n_participants",
                    "summary",
                ],
            )
        )
        ci = (
            alt.Chart(data).mark_rule(color="black").encode(x="auroc_low:Q", x2="auroc_high:Q", y=y)
        )
        lines = (
            alt.Chart(pl.DataFrame({"auroc": [0.5, fail_auroc], "line": ["chance", "fail"]}))
            .mark_rule(strokeDash=[4, 3], color="gray")
            .encode(x="auroc:Q")
        )
        return (bars + ci + lines).properties(
            title="Shortcut audit: the label from nuisance variables alone", width=380
        )


def label_units(units: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Units joined with their recording's 0/1 label; unlabelled units left out."""
    return units.join(
        labels.select("participant", "run", "label"), on=["participant", "run"], how="inner"
    )


def windows_of(units: pl.DataFrame) -> pl.DataFrame:
    """One unit per window of each unit (row_end = row_start + 1)."""
    return (
        units.with_columns(pl.int_ranges("row_start", "row_end").alias("_row"))
        .explode("_row")
        .select(
            "file",
            "participant",
            "run",
            pl.col("_row").alias("row_start"),
            (pl.col("_row") + 1).alias("row_end"),
        )
    )


def audit_units(
    root: str | Path,
    units: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    label_name: str,
    unit: str,
    extra: pl.DataFrame | None = None,
    channels: Sequence[str] | None = None,
    variables: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    cfg: ShortcutConfig | None = None,
) -> ShortcutReport:
    """Audit units (selection rows) of the dataset at `root` against the recording label
    table `labels` (file, participant, run, label: `eegwb.train.labels.recording_labels`).
    Units of unlabelled recordings are left out; `unit` names one unit in the checks."""
    cfg = cfg or ShortcutConfig()
    labelled = label_units(
        units.select("file", "participant", "run", "row_start", "row_end").unique(
            maintain_order=True
        ),
        labels,
    )
    signal = variables is None or bool(set(SIGNAL_VARIABLES) & set(variables))
    frame = nuisance_frame(
        root,
        labelled,
        exclude=[label_name],
        extra=extra,
        channels=channels,
        max_windows_read=cfg.max_windows_read,
        signal=signal,
    ).with_columns(labelled["label"])
    return ShortcutReport(
        audit_shortcuts(frame, cfg, unit=unit, variables=variables, skip=skip), {unit: frame}
    )


def audit_dataset(
    root: str | Path,
    selection: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    label_name: str,
    extra: pl.DataFrame | None = None,
    cfg: ShortcutConfig | None = None,
) -> ShortcutReport:
    """The audit `eegwb validate --label` runs: every variable per recording (each selected
    row range is one), and the position of each window in its recording per window."""
    cfg = cfg or ShortcutConfig()
    per_rec = audit_units(
        root,
        selection,
        labels,
        label_name=label_name,
        unit="recording",
        extra=extra,
        skip=["position_s"],
        cfg=cfg,
    )
    per_win = audit_units(
        root,
        windows_of(selection),
        labels,
        label_name=label_name,
        unit="window",
        variables=["position_s"],
        cfg=cfg,
    )
    return ShortcutReport(per_rec.checks + per_win.checks, per_rec.frames | per_win.frames)
