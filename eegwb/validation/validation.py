"""`validate`: data quality, the leakage audit over a dataset's splits and, given a label,
the shortcut audit, as one report.

Shared by `eegwb validate` and notebooks/02_validate_data.py, so both give the same
checks, the same summary and the same pass/fail (exit 1 when any check fails).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from eegwb.data.dataset_record import check_dataset
from eegwb.data.layout import DatasetError
from eegwb.data.splits import SplitData, default_splits, load_splits, participant_labels
from eegwb.validation.checks import Check, format_checks, jsonable, worst
from eegwb.validation.data_quality import QualityConfig, QualityReport, run_quality
from eegwb.validation.leakage import AuditResult, LeakageConfig, audit_leakage
from eegwb.validation.shortcuts import ShortcutConfig, ShortcutReport, audit_dataset


@dataclass
class LabelInput:
    """The label the shortcut audit is about: its name, the recording label table
    (file, participant, run, label 0/1: `eegwb.train.labels.recording_labels`) and, when
    the label came from a table, its other columns (participant[, run], ...)."""

    name: str
    labels: pl.DataFrame
    extra: pl.DataFrame | None = None


@dataclass
class ValidationReport:
    source: str  # where the splits came from (a file, or the default split)
    splits: dict[str, SplitData]
    quality: QualityReport
    leakage: AuditResult | None  # None with a single split
    shortcuts: ShortcutReport | None = None  # None without a label
    record: list[Check] = field(default_factory=list)  # each dataset against its ingest record

    @property
    def checks(self) -> list[Check]:
        shortcut = self.shortcuts.checks if self.shortcuts else []
        leakage = self.leakage.checks if self.leakage else []
        return self.record + leakage + self.quality.checks + shortcut

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def summary(self) -> str:
        sizes = ", ".join(
            f"{name}: {s.resolved()['participant'].n_unique()} participants, {s.n_windows()} "
            "windows"
            for name, s in self.splits.items()
        )
        return f"splits from {self.source}\n{sizes}\n" + format_checks(self.checks)

    def to_json(self) -> str:
        payload = {
            "status": self.status,
            "source": self.source,
            "splits": {
                name: {
                    "root": str(s.root),
                    "participants": sorted(set(s.resolved()["participant"].to_list())),
                    "windows": s.n_windows(),
                }
                for name, s in self.splits.items()
            },
            "leakage": self.leakage.to_dict() if self.leakage else None,
            "shortcuts": self.shortcuts.table().to_dicts() if self.shortcuts else None,
            "checks": [c.to_dict() for c in self.checks],
        }
        return json.dumps(jsonable(payload), indent=2, allow_nan=False)


def resolve_splits(
    data_dir: str | Path | None,
    splits_file: str | Path | None = None,
    *,
    seed: int = 0,
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1),
    stratify: str | None = None,
) -> tuple[dict[str, SplitData], str]:
    """Splits from a splits file (DATA_DIR, when given, replaces its default dataset) or,
    without one, a default participant-grouped split of DATA_DIR; with a description."""
    if splits_file is not None:
        spec = load_splits(splits_file)
        return spec.split_data(data_dir), f"splits file {splits_file}"
    if data_dir is None:
        raise DatasetError("validate: give a dataset directory or a splits file")
    if stratify is not None:
        participant_labels(data_dir, stratify)  # raises when it is not a participant label
    spec = default_splits(data_dir, fractions=fractions, seed=seed, label=stratify)
    how = f", stratified by {stratify!r}" if stratify else ""
    desc = (
        f"the default split_by_participant (fractions {list(fractions)}, seed {seed}{how}) of "
        f"{data_dir}"
    )
    return spec.split_data(), desc


def record_check(splits: Mapping[str, SplitData]) -> Check:
    """Each dataset root against its ingest record (dataset_record.py): fail when an ingest
    did not finish or recordings are unlisted or missing (training refuses those), warn
    when Parquet files are ignored for their names."""
    states = [check_dataset(root) for root in dict.fromkeys(s.root for s in splits.values())]
    incomplete = [line for st in states for line in st.incomplete]
    ignored = [line for st in states for line in st.ignored]
    status = "fail" if incomplete else ("warn" if ignored else "pass")
    summary = " ".join(incomplete + ignored) or "datasets hold what their ingest records list"
    examples = [{"problem": line} for line in incomplete + ignored]
    return Check("dataset/record", status, summary, {"count": len(examples)}, examples)


def validate(
    splits: Mapping[str, SplitData],
    *,
    source: str = "given splits",
    leakage_cfg: LeakageConfig | None = None,
    quality_cfg: QualityConfig | None = None,
    label: LabelInput | None = None,
    shortcut_cfg: ShortcutConfig | None = None,
    progress: bool = False,
) -> ValidationReport:
    """Run every data-quality check, with two or more splits the leakage audit, and with a
    `label` the shortcut audit over every labelled recording of the splits (all splits
    together: the audit cross-validates over participants itself)."""
    splits = dict(splits)
    quality = run_quality(splits, quality_cfg, progress=progress)
    leakage = audit_leakage(splits, leakage_cfg, progress=progress) if len(splits) > 1 else None
    shortcuts = None
    if label is not None:
        roots = {s.root.resolve() for s in splits.values()}
        if len(roots) > 1:
            raise DatasetError(
                f"shortcut audit: the splits read {len(roots)} datasets "
                f"({sorted(map(str, roots))}); audit one dataset's label at a time"
            )
        root = next(iter(splits.values())).root
        units = pl.concat([s.resolved() for s in splits.values()]).unique(maintain_order=True)
        shortcuts = audit_dataset(
            root, units, label.labels, label_name=label.name, extra=label.extra, cfg=shortcut_cfg
        )
    return ValidationReport(
        source=source,
        splits=splits,
        quality=quality,
        leakage=leakage,
        shortcuts=shortcuts,
        record=[record_check(splits)],
    )
