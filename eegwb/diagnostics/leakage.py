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

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from eegwb.data.layout import channel_array, channel_columns, recordings_index
from eegwb.data.splits import SplitData
from eegwb.diagnostics.checks import Check, format_checks
from eegwb.diagnostics.near_duplicates import (
    ContentConfig,
    ContentIndex,
    IndexBuilder,
    Projector,
    hash_pairs,
    same_window,
    similar_pairs,
)

log = logging.getLogger(__name__)

__all__ = ["AuditResult", "LeakageConfig", "LeakageError", "SplitData", "audit_leakage", "leakage_gate"]


class LeakageError(RuntimeError):
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
            threshold=self.near_dup_threshold, prefilter_dims=self.prefilter_dims, block_size=self.block_size
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
            raise TypeError(f"split {name!r}: expected SplitData(root, selection), got {type(value).__name__}")
    if len(out) < 2:
        raise ValueError(f"the leakage audit needs at least two splits, got {sorted(out)}")
    return out


def _recordings(splits: dict[str, SplitData]) -> dict[str, pl.DataFrame]:
    """Per split: one row per selected file with ids, source hash, timing and row spans."""
    indexes: dict[Path, pl.DataFrame] = {}
    out = {}
    for name, split in splits.items():
        root = split.root.resolve()
        if root not in indexes:
            indexes[root] = recordings_index(root)
        spans = split.resolved().group_by("file", maintain_order=True).agg("row_start", "row_end")
        meta = indexes[root].select("file", "source_hash", "sfreq", "window_samples")
        rec = spans.join(meta, on="file", how="left")
        missing = rec.filter(pl.col("sfreq").is_null())["file"].to_list()
        if missing:
            raise FileNotFoundError(f"{root}: split {name!r} selects files that do not exist: {missing[:5]}")
        ids = split.resolved().unique("file").select("file", "participant", "run")
        out[name] = rec.join(ids, on="file").with_columns(pl.lit(str(root)).alias("root"))
    return out


def _ids(rec: pl.DataFrame, cross: bool, cols: list[str]) -> dict[tuple, list[str]]:
    out: dict[tuple, list[str]] = {}
    for row in rec.iter_rows(named=True):
        key = tuple(row[c] for c in cols) if cross else (row["root"], *(row[c] for c in cols))
        out.setdefault(key, []).append(row["file"])
    return out


def _id_checks(recs: dict[str, pl.DataFrame], cfg: LeakageConfig) -> list[Check]:
    """Levels 1-2 from metadata only."""
    checks = []
    for level, name, cols in ((1, "participant", ["participant"]), (2, "run", ["participant", "run"])):
        count, examples = 0, []
        for a, b in itertools.combinations(recs, 2):
            ia, ib = _ids(recs[a], cfg.cross_dataset_ids, cols), _ids(recs[b], cfg.cross_dataset_ids, cols)
            shared = sorted(set(ia) & set(ib))
            count += len(shared)
            for key in shared[: max(0, cfg.max_examples - len(examples))]:
                examples.append({"splits": f"{a}|{b}", name: "/".join(key[-len(cols):]),
                                 f"{a}_file": ia[key][0], f"{b}_file": ib[key][0]})  # fmt: skip
        what = "participants" if level == 1 else "(participant, run) pairs"
        checks.append(_finding(f"leakage/{name}", level, count, f"{what} in two splits", examples))
    count, examples = 0, []
    for a, b in itertools.combinations(recs, 2):
        ra, rb = recs[a], recs[b]
        joined = ra.filter(pl.col("source_hash") != "").join(
            rb.filter(pl.col("source_hash") != ""), on="source_hash", suffix="_b"
        )
        same_ids = (pl.col("participant") == pl.col("participant_b")) & (pl.col("run") == pl.col("run_b"))
        if not cfg.cross_dataset_ids:
            same_ids = same_ids & (pl.col("root") == pl.col("root_b"))
        other = joined.filter(~same_ids)
        count += other.height
        for row in other.head(max(0, cfg.max_examples - len(examples))).iter_rows(named=True):
            examples.append({"splits": f"{a}|{b}", f"{a}_file": row["file"], f"{b}_file": row["file_b"],
                             "source_hash": row["source_hash"]})  # fmt: skip
    checks.append(_finding("leakage/source_recording", 2, count, "recordings from one source file under other ids", examples))
    return checks


def _window_times(root: str, file: str, starts: list[int], ends: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, window_start) of the selected spans of one file, sorted by window_start."""
    rows = np.concatenate([np.arange(i, j) for i, j in zip(starts, ends, strict=True)])
    ws = pq.read_table(Path(root) / file, columns=["window_start"]).column(0).to_numpy()
    order = np.argsort(ws[rows], kind="stable")
    return rows[order], ws[rows][order].astype(np.int64)


def _matching_recordings(ra_rows: list[dict], rb_rows: list[dict], cross: bool) -> list[tuple[dict, dict]]:
    """Pairs of selected files that are one recording: same file, same source hash, or
    (with cross-dataset ids) the same participant and run."""
    by_key: dict[tuple, list[int]] = {}
    for j, rb in enumerate(rb_rows):
        keys = [("file", rb["root"], rb["file"])]
        if rb["source_hash"]:
            keys.append(("hash", rb["source_hash"]))
        if cross:
            keys.append(("ids", rb["participant"], rb["run"]))
        for key in keys:
            by_key.setdefault(key, []).append(j)
    pairs = []
    for ra in ra_rows:
        keys = [("file", ra["root"], ra["file"]), ("hash", ra["source_hash"]) if ra["source_hash"] else None]
        keys.append(("ids", ra["participant"], ra["run"]) if cross else None)
        found = sorted({j for key in keys if key is not None for j in by_key.get(key, [])})
        pairs += [(ra, rb_rows[j]) for j in found]
    return pairs


def _span_matches(ta: np.ndarray, la: float, tb: np.ndarray, lb: float, eps: float) -> tuple[np.ndarray, ...]:
    """For each window of a (start ta, length la, seconds; tb sorted): how many windows of b
    have the same span, how many others intersect it, and where b's intersecting run starts."""
    hi = np.searchsorted(tb, ta + la - eps, "left")  # b starts before a ends
    lo = np.searchsorted(tb, ta - lb + eps, "right")  # b ends after a starts
    eq_lo, eq_hi = np.searchsorted(tb, ta - eps, "left"), np.searchsorted(tb, ta + eps, "right")
    n_same = (eq_hi - eq_lo) if abs(la - lb) < eps else np.zeros_like(hi)
    return n_same, np.maximum(hi - lo, 0) - n_same, lo, eq_lo


def _time_checks(recs: dict[str, pl.DataFrame], cfg: LeakageConfig) -> list[Check]:
    """Level 3: identical window spans and intersecting spans of one recording, in seconds."""
    acc = {"same": [0, []], "overlap": [0, []]}
    for a, b in itertools.combinations(recs, 2):
        pairs = _matching_recordings(list(recs[a].iter_rows(named=True)), list(recs[b].iter_rows(named=True)),
                                     cfg.cross_dataset_ids)  # fmt: skip
        for ra, rb in pairs:
            rows_a, sa = _window_times(ra["root"], ra["file"], ra["row_start"], ra["row_end"])
            rows_b, sb = _window_times(rb["root"], rb["file"], rb["row_start"], rb["row_end"])
            ta, tb = sa / ra["sfreq"], sb / rb["sfreq"]  # seconds
            la, lb = ra["window_samples"] / ra["sfreq"], rb["window_samples"] / rb["sfreq"]
            eps = 0.25 / max(ra["sfreq"], rb["sfreq"])  # a quarter sample of float slack
            n_same, n_over, lo, eq_lo = _span_matches(ta, la, tb, lb, eps)
            for kind, counts in (("same", n_same), ("overlap", n_over)):
                acc[kind][0] += int(counts.sum())
                examples = acc[kind][1]
                for i in np.flatnonzero(counts)[: max(0, cfg.max_examples - len(examples))]:
                    j = eq_lo[i] if kind == "same" else lo[i] + int(abs(tb[lo[i]] - ta[i]) < eps and n_same[i] > 0)
                    examples.append({
                        "splits": f"{a}|{b}", f"{a}_file": ra["file"], f"{a}_row": int(rows_a[i]),
                        f"{a}_start_s": round(float(ta[i]), 4), f"{b}_file": rb["file"],
                        f"{b}_row": int(rows_b[j]), f"{b}_start_s": round(float(tb[j]), 4),
                    })  # fmt: skip
    return [
        _finding("leakage/window", 3, acc["same"][0], "windows of one recording in two splits", acc["same"][1]),
        _finding("leakage/time_overlap", 3, acc["overlap"][0],
                 "windows of one recording overlapping in time across splits", acc["overlap"][1]),
    ]  # fmt: skip


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
        for file, meta, table, rows in tqdm(recs, total=n_files, desc=f"index {name}", disable=not progress):
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
                for i, j, c in zip(ia[keep].tolist(), ib[keep].tolist(), cos[keep].tolist(), strict=True):
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
                ex = {"splits": f"{a}|{b}", f"{a}_file": ea["file"], f"{a}_row": ea["row"], "channel": ea["channel"],
                      f"{b}_file": eb["file"], f"{b}_row": eb["row"], f"{b}_channel": eb["channel"],
                      "cosine": round(c, 6)}  # fmt: skip
                acc["examples"].append(ex)
    checks = [
        _finding("leakage/identical_content", 4, identical["count"],
                 "window-channel pairs with identical z-scored samples under other ids",
                 identical["examples"], windows=len(identical["windows"])),
    ]  # fmt: skip
    if cfg.near_duplicates:
        status = "fail" if near["count"] > cfg.near_duplicate_max else ("warn" if near["count"] else "pass")
        checks.append(_finding(
            "leakage/near_duplicate", 5, near["count"],
            f"window-channel pairs with cosine >= {ccfg.threshold} after z-scoring",
            near["examples"], windows=len(near["windows"]), status=status,
            threshold=ccfg.threshold, allowed=cfg.near_duplicate_max,
            min_cosine=near["min_cos"] if near["count"] else None,
        ))  # fmt: skip
    return checks


def _finding(name: str, level: int, count: int, what: str, examples: list, status: str | None = None, **numbers) -> Check:
    status = status or ("fail" if count else "pass")
    summary = f"{count} {what}" if count else f"no {what}"
    return Check(name, status, summary, {"count": count, **numbers}, examples, level=level)  # type: ignore[arg-type]


def audit_leakage(
    splits: Mapping[str, SplitData], cfg: LeakageConfig | None = None, *, progress: bool = False
) -> AuditResult:
    """Compare every pair of splits at levels 1-5; see the module docstring."""
    cfg = cfg or LeakageConfig()
    data = _coerce(splits)
    recs = _recordings(data)
    checks = _id_checks(recs, cfg) + _time_checks(recs, cfg)
    info: dict[str, dict[str, object]] = {
        name: {"root": str(s.root), "files": recs[name].height, "windows": s.n_windows()} for name, s in data.items()
    }
    if cfg.content:
        ccfg = cfg.content_config()
        with tempfile.TemporaryDirectory(prefix="eegwb-audit-") as workdir:
            indexes = _build_indexes(data, ccfg, workdir, progress)
            checks += _content_checks(indexes, cfg, ccfg)
            for name, idx in indexes.items():
                info[name] |= {"vectors": len(idx), "skipped_vectors": idx.skipped}
            lengths = {idx.window_samples for idx in indexes.values() if len(idx)}
            if len(lengths) > 1:
                log.warning("content levels compare only splits with equal window_samples; got %s", lengths)
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
        lines = [c.line() + (f" (e.g. {c.examples[0]})" if c.examples else "") for c in result.blocking]
        message = "splits leak:\n" + "\n".join(lines)
        if not allow_leakage:
            raise LeakageError(message + "\nFix the splits, or set allow_leakage: true to run anyway (tagged 'leaky').")
        log.warning("%s\nallow_leakage is set: continuing; the run is tagged 'leaky'", message)
    return result
