"""`validate`: data quality plus the leakage audit over a dataset's splits, as one report.

Shared by `eegwb validate` and notebooks/02_validate_data.py, so both give the same
checks, the same summary and the same pass/fail (exit 1 when any check fails).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eegwb.data.layout import DatasetError
from eegwb.data.splits import SplitData, default_splits, load_splits, participant_labels
from eegwb.validation.checks import Check, format_checks, jsonable, worst
from eegwb.validation.data_quality import QualityConfig, QualityReport, run_quality
from eegwb.validation.leakage import AuditResult, LeakageConfig, audit_leakage


@dataclass
class ValidationReport:
    source: str  # where the splits came from (a file, or the default split)
    splits: dict[str, SplitData]
    quality: QualityReport
    leakage: AuditResult | None  # None with a single split

    @property
    def checks(self) -> list[Check]:
        return (self.leakage.checks if self.leakage else []) + self.quality.checks

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


def validate(
    splits: Mapping[str, SplitData],
    *,
    source: str = "given splits",
    leakage_cfg: LeakageConfig | None = None,
    quality_cfg: QualityConfig | None = None,
    progress: bool = False,
) -> ValidationReport:
    """Run every data-quality check and, with two or more splits, the leakage audit."""
    splits = dict(splits)
    quality = run_quality(splits, quality_cfg, progress=progress)
    leakage = audit_leakage(splits, leakage_cfg, progress=progress) if len(splits) > 1 else None
    return ValidationReport(source=source, splits=splits, quality=quality, leakage=leakage)
