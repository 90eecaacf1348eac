"""The leakage audit: does any evaluation window also sit, in some form, in training data?

Splits are compared pairwise at five levels (issue 5), each reported as a `Check`:

    1 participant          the same participant id in both splits
    2 run                  the same (participant, run); or the same source recording
                           (metadata source_hash) under other ids
    3 window               the same window of the same recording in both splits;
      time overlap         windows of one recording whose [start, end) intersect
    4 identical content    identical z-scored samples under another id (a copied window)
    5 near duplicate       cosine >= threshold after z-scoring (a copy plus noise)

Splits may come from different dataset roots (pretraining data vs fine-tuning evaluation
data). Ids are then compared across roots too (`cross_dataset_ids`): a false alarm is
loud and can be waived, a missed leak is silent. Levels 1-4 fail; level 5 fails above
`near_duplicate_max`. `leakage_gate` raises `LeakageError` on a failure unless the caller
allows leakage; the result's `.leaky` tells trainers to tag the run.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from eegwb.data.layout import channel_array, channel_columns
from eegwb.data.splits import SplitData
from eegwb.errors import InputError
from eegwb.validation.checks import Check, format_checks
from eegwb.validation.leakage_ids import finding, id_checks, recordings, time_checks
from eegwb.validation.near_duplicates import (
    ContentConfig,
    ContentIndex,
    IndexBuilder,
    Projector,
    hash_pairs,
    same_window,
    similar_pairs,
)

log = logging.getLogger(__name__)

__all__ = [
    "AuditResult",
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
    block_size: int = 4096

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


def _build_indexes(
    splits: dict[str, SplitData], cfg: ContentConfig, workdir: str, progress: bool
) -> dict[str, ContentIndex]:
    from tqdm.auto import tqdm

    projector = Projector(cfg.prefilter_dims)
    out = {}
    for name, split in splits.items():
        builder = IndexBuilder(name, str(split.root.resolve()), workdir, projector, cfg)
        n_files = split.resolved()["file"].n_unique()
        recs = split.iter_recordings()
        for file, _meta, table, rows in tqdm(
            recs, total=n_files, desc=f"index {name}", disable=not progress
        ):
            starts = table.column("window_start").to_numpy()
            for ch in channel_columns(table.schema):
                builder.add(channel_array(table, ch), file, rows, ch, starts)
        out[name] = builder.finish()
    return out


def _content_checks(
    indexes: dict[str, ContentIndex], cfg: LeakageConfig, ccfg: ContentConfig
) -> list[Check]:
    identical: dict = {"count": 0, "examples": [], "windows": set()}
    near: dict = {"count": 0, "examples": [], "windows": set(), "min_cos": 1.0}
    for a, b in itertools.combinations(indexes, 2):
        xa, xb = indexes[a], indexes[b]
        ha, hb = hash_pairs(xa, xb)
        keep = ~same_window(xa, ha, xb, hb)
        seen = set(zip(ha[keep].tolist(), hb[keep].tolist(), strict=True))
        pairs = [(ia, ib, 1.0, identical) for ia, ib in seen]
        if cfg.near_duplicates:
            for ia, ib, cos in similar_pairs(xa, xb, ccfg):
                keep = ~same_window(xa, ia, xb, ib)
                for i, j, c in zip(
                    ia[keep].tolist(), ib[keep].tolist(), cos[keep].tolist(), strict=True
                ):
                    if (i, j) in seen:
                        continue
                    pairs.append((i, j, c, identical if 1.0 - c <= ccfg.identical_tol else near))
        for i, j, c, acc in sorted(pairs, key=lambda p: (p[0], p[1])):
            acc["count"] += 1
            acc["windows"].add((xb.file_idx[j], xb.row[j]))
            if acc is near:
                acc["min_cos"] = min(acc["min_cos"], c)
            if len(acc["examples"]) < cfg.max_examples:
                ea, eb = xa.describe(i), xb.describe(j)
                ex = {
                    "splits": f"{a}|{b}",
                    f"{a}_file": ea["file"],
                    f"{a}_row": ea["row"],
                    "channel": ea["channel"],
                    f"{b}_file": eb["file"],
                    f"{b}_row": eb["row"],
                    f"{b}_channel": eb["channel"],
                    "cosine": round(c, 6),
                }
                acc["examples"].append(ex)
    checks = [
        finding(
            "leakage/identical_content",
            4,
            identical["count"],
            "window-channel pairs with identical z-scored samples under other ids",
            identical["examples"],
            windows=len(identical["windows"]),
        ),
    ]
    if cfg.near_duplicates:
        status = (
            "fail"
            if near["count"] > cfg.near_duplicate_max
            else ("warn" if near["count"] else "pass")
        )
        checks.append(
            finding(
                "leakage/near_duplicate",
                5,
                near["count"],
                f"window-channel pairs with cosine >= {ccfg.threshold} after z-scoring",
                near["examples"],
                windows=len(near["windows"]),
                status=status,
                threshold=ccfg.threshold,
                allowed=cfg.near_duplicate_max,
                min_cosine=near["min_cos"] if near["count"] else None,
            )
        )
    return checks


def _note_other_lengths(content: list[Check], indexes: dict[str, ContentIndex]) -> None:
    """Levels 4-5 compare vectors of one length only: when any were skipped for another
    length, a copy among them would go unseen, so those levels warn (or still fail) and
    name what was not compared."""
    skipped = {name: idx.other_lengths for name, idx in indexes.items() if idx.other_lengths}
    if not skipped:
        return
    compared = sorted({idx.window_samples for idx in indexes.values() if len(idx)})
    missed = ", ".join(
        f"{name!r}: {n} vectors of {t} samples"
        for name, lengths in skipped.items()
        for t, n in sorted(lengths.items())
    )
    lengths = "/".join(map(str, compared)) or "no"
    note = f"; only {lengths}-sample vectors were compared, not {missed}"
    for check in content:
        check.status = "warn" if check.status == "pass" else check.status
        check.summary += note
        check.numbers |= {"compared_samples": compared, "not_compared": skipped}


def audit_leakage(
    splits: Mapping[str, SplitData], cfg: LeakageConfig | None = None, *, progress: bool = False
) -> AuditResult:
    """Compare every pair of splits at levels 1-5; see the module docstring."""
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
        ccfg = cfg.content_config()
        with tempfile.TemporaryDirectory(prefix="eegwb-audit-") as workdir:
            indexes = _build_indexes(data, ccfg, workdir, progress)
            content = _content_checks(indexes, cfg, ccfg)
            _note_other_lengths(content, indexes)
            checks += content
            for name, idx in indexes.items():
                info[name] |= {"vectors": len(idx), "skipped_vectors": idx.skipped}
    return AuditResult(checks=checks, splits=info, config=cfg)


def leakage_gate(
    splits: Mapping[str, SplitData],
    *,
    allow_leakage: bool,
    near_duplicate_max: int = 0,
    cfg: LeakageConfig | None = None,
    progress: bool = False,
) -> AuditResult:
    """Audit and refuse leaky splits: raises LeakageError naming each failing finding unless
    `allow_leakage`; then the result's `.leaky` says to tag the run `leaky`."""
    cfg = replace(cfg or LeakageConfig(), near_duplicate_max=near_duplicate_max)
    result = audit_leakage(splits, cfg, progress=progress)
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
