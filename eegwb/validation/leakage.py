"""The leakage audit: does any evaluation window also sit, in some form, in training data?

Each finding is a `Check`, at one of five levels (issue 5):

    1 participant          the same participant id in two splits
    2 run                  the same (participant, run); or the same source recording
                           (metadata source_hash) under other ids
      copied recording     a recording whose windows are copies of a recording under
                           another id, found by content (no provenance needed)
    3 window               the same window of the same recording in two splits;
      time overlap         windows of one recording whose [start, end) intersect
    4 identical content    identical z-scored samples under another id (a copied window)
    5 near duplicate       cosine >= threshold after z-scoring (a copy plus noise)

Levels 1-3 compare the splits pairwise, from metadata (leakage_ids.py). The content levels
compare every selected window with every other, whatever split it is in (the search:
leakage_copies.py; judging: leakage_content.py): a copy under another participant id is a
defect of the dataset, and the next seed, other fractions or a k-fold would put its two
halves on both sides. A copy that crosses the current split fails; one inside a split
warns, naming the split.

Splits may come from different dataset roots (pretraining data vs fine-tuning evaluation
data). Ids are then compared across roots too (`cross_dataset_ids`): a false alarm is
loud and can be waived, a missed leak is silent. Levels 1-4 fail when they cross the
split; level 5 fails above `near_duplicate_max` crossing pairs. `leakage_gate` raises
`LeakageError` on a failure unless the caller allows leakage, and logs the warnings; the
result's `.leaky` tells trainers to tag the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from eegwb.data.splits import SplitData
from eegwb.errors import InputError
from eegwb.validation.checks import Check, format_checks
from eegwb.validation.leakage_content import content_checks
from eegwb.validation.leakage_copies import ContentCache, find_copies
from eegwb.validation.leakage_ids import id_checks, recordings, time_checks
from eegwb.validation.near_duplicates import ContentConfig

log = logging.getLogger(__name__)

__all__ = [
    "AuditResult",
    "ContentCache",
    "LeakageConfig",
    "LeakageError",
    "SplitData",
    "audit_leakage",
    "leakage_gate",
]


class LeakageError(InputError, RuntimeError):
    """Splits leak; the message names each failing finding with an example."""


@dataclass
class LeakageConfig:
    near_dup_threshold: float = 0.995  # cosine after z-scoring (issue 5)
    near_duplicate_max: int = 0  # level-5 pairs tolerated before the level fails
    max_examples: int = 5  # concrete cases kept per finding
    content: bool = True  # levels 4-5 read every selected sample; False = ids and times only
    near_duplicates: bool = True  # level 5 (and level 4 beyond exact hashes)
    cross_dataset_ids: bool = True  # the same participant id in two roots is the same person
    prefilter_dims: int = 32  # see ContentConfig
    block_size: int = 1024  # see ContentConfig

    def __post_init__(self) -> None:
        if self.near_duplicate_max < 0 or self.max_examples < 0:
            raise ValueError("LeakageConfig: near_duplicate_max and max_examples must be >= 0")
        self.content_config()  # validates the threshold and block sizes

    def content_config(self) -> ContentConfig:
        return ContentConfig(
            threshold=self.near_dup_threshold,
            prefilter_dims=self.prefilter_dims,
            block_size=self.block_size,
        )


@dataclass
class AuditResult:
    checks: list[Check]  # one per finding kind; status pass when nothing was found
    splits: dict[str, dict[str, object]]  # name -> root, files, windows, vectors, skipped
    config: LeakageConfig = field(default_factory=LeakageConfig)

    @property
    def findings(self) -> list[Check]:
        return [c for c in self.checks if c.status != "pass"]

    @property
    def blocking(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def leaky(self) -> bool:
        """True when the splits leak at a level that blocks training."""
        return bool(self.blocking)

    def summary(self) -> str:
        return format_checks(self.checks)

    def to_dict(self) -> dict[str, object]:
        return {
            "leaky": self.leaky,
            "splits": self.splits,
            "checks": [c.to_dict() for c in self.checks],
        }


def _coerce(splits: Mapping[str, object]) -> dict[str, SplitData]:
    out = {}
    for name, value in splits.items():
        if isinstance(value, SplitData):
            out[name] = value
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            out[name] = SplitData(Path(value[0]), value[1])
        else:
            raise TypeError(
                f"split {name!r}: expected SplitData(root, selection), got {type(value).__name__}"
            )
    if len(out) < 2:
        raise InputError(f"the leakage audit needs at least two splits, got {sorted(out)}")
    return out


def audit_leakage(
    splits: Mapping[str, SplitData],
    cfg: LeakageConfig | None = None,
    *,
    progress: bool = False,
    content_cache: ContentCache | None = None,
) -> AuditResult:
    """Levels 1-5 for these splits; see the module docstring. `content_cache` lets audits
    of one set of windows split several ways (k folds) search their content once."""
    cfg = cfg or LeakageConfig()
    data = _coerce(splits)
    recs = recordings(data)
    checks = id_checks(recs, cfg.cross_dataset_ids, cfg.max_examples)
    checks += time_checks(recs, cfg.cross_dataset_ids, cfg.max_examples)
    info: dict[str, dict[str, object]] = {
        name: {"root": str(s.root), "files": recs[name].height, "windows": s.n_windows()}
        for name, s in data.items()
    }
    if cfg.content:
        copies = find_copies(data, cfg.content_config(), cfg.near_duplicates, progress=progress,
                             cache=content_cache)  # fmt: skip
        content, per_split = content_checks(copies, data, cfg)
        checks += content
        for name, numbers in per_split.items():
            info[name] |= numbers
    return AuditResult(checks=checks, splits=info, config=cfg)


def leakage_gate(
    splits: Mapping[str, SplitData],
    *,
    allow_leakage: bool,
    near_duplicate_max: int = 0,
    cfg: LeakageConfig | None = None,
    progress: bool = False,
    content_cache: ContentCache | None = None,
) -> AuditResult:
    """Audit and refuse leaky splits: raises LeakageError naming each failing finding unless
    `allow_leakage`; then the result's `.leaky` says to tag the run `leaky`. Findings that
    do not leak under these splits (copies inside one split) are logged as warnings."""
    cfg = replace(cfg or LeakageConfig(), near_duplicate_max=near_duplicate_max)
    result = audit_leakage(splits, cfg, progress=progress, content_cache=content_cache)
    for check in result.findings:
        if check.status == "warn":
            log.warning("leakage audit: %s", check.line())
    if result.leaky:
        lines = [
            c.line() + (f" (e.g. {c.examples[0]})" if c.examples else "") for c in result.blocking
        ]
        message = "splits leak:\n" + "\n".join(lines)
        if not allow_leakage:
            raise LeakageError(
                message
                + "\nFix the splits, or set allow_leakage: true to run anyway (tagged 'leaky')."
            )
        log.warning("%s\nallow_leakage is set: continuing; the run is tagged 'leaky'", message)
    return result
