"""Leakage levels 1-3, from metadata and window times only (no samples are read).

    1 participant   the same participant id in two splits
    2 run           the same (participant, run); or one source recording (metadata
                    source_hash) under other ids
    3 window        the same window span of one recording in two splits; time overlap:
                    spans of one recording that intersect (in seconds, so recordings
                    resampled differently still compare)

"One recording" means the same file, the same source hash, or (with cross-dataset ids)
the same participant and run in another dataset root.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from eegwb.data.layout import recordings_index
from eegwb.data.splits import SplitData
from eegwb.errors import MissingInputError
from eegwb.validation.checks import Check


def recordings(splits: dict[str, SplitData]) -> dict[str, pl.DataFrame]:
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
            raise MissingInputError(
                f"{root}: split {name!r} selects files that do not exist: {missing[:5]}"
            )
        ids = split.resolved().unique("file").select("file", "participant", "run")
        out[name] = rec.join(ids, on="file").with_columns(pl.lit(str(root)).alias("root"))
    return out


def _ids(rec: pl.DataFrame, cross: bool, cols: list[str]) -> dict[tuple, list[str]]:
    out: dict[tuple, list[str]] = {}
    for row in rec.iter_rows(named=True):
        key = tuple(row[c] for c in cols) if cross else (row["root"], *(row[c] for c in cols))
        out.setdefault(key, []).append(row["file"])
    return out


def id_checks(
    recs: dict[str, pl.DataFrame], cross_dataset_ids: bool, max_examples: int
) -> list[Check]:
    """Levels 1-2 from metadata only."""
    checks = []
    for level, name, cols in (
        (1, "participant", ["participant"]),
        (2, "run", ["participant", "run"]),
    ):
        count, examples = 0, []
        for a, b in itertools.combinations(recs, 2):
            ia, ib = (
                _ids(recs[a], cross_dataset_ids, cols),
                _ids(recs[b], cross_dataset_ids, cols),
            )
            shared = sorted(set(ia) & set(ib))
            count += len(shared)
            for key in shared[: max(0, max_examples - len(examples))]:
                examples.append(
                    {
                        "splits": f"{a}|{b}",
                        name: "/".join(key[-len(cols) :]),
                        f"{a}_file": ia[key][0],
                        f"{b}_file": ib[key][0],
                    }
                )
        what = "participants" if level == 1 else "(participant, run) pairs"
        checks.append(finding(f"leakage/{name}", level, count, f"{what} in two splits", examples))
    count, examples = 0, []
    for a, b in itertools.combinations(recs, 2):
        ra, rb = recs[a], recs[b]
        joined = ra.filter(pl.col("source_hash") != "").join(
            rb.filter(pl.col("source_hash") != ""), on="source_hash", suffix="_b"
        )
        same_ids = (pl.col("participant") == pl.col("participant_b")) & (
            pl.col("run") == pl.col("run_b")
        )
        if not cross_dataset_ids:
            same_ids = same_ids & (pl.col("root") == pl.col("root_b"))
        other = joined.filter(~same_ids)
        count += other.height
        for row in other.head(max(0, max_examples - len(examples))).iter_rows(named=True):
            examples.append(
                {
                    "splits": f"{a}|{b}",
                    f"{a}_file": row["file"],
                    f"{b}_file": row["file_b"],
                    "source_hash": row["source_hash"],
                }
            )
    checks.append(
        finding(
            "leakage/source_recording",
            2,
            count,
            "recordings from one source file under other ids",
            examples,
        )
    )
    return checks


def _window_times(
    root: str, file: str, starts: list[int], ends: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, window_start) of the selected spans of one file, sorted by window_start."""
    rows = np.concatenate([np.arange(i, j) for i, j in zip(starts, ends, strict=True)])
    ws = pq.read_table(Path(root) / file, columns=["window_start"]).column(0).to_numpy()
    order = np.argsort(ws[rows], kind="stable")
    return rows[order], ws[rows][order].astype(np.int64)


def _matching_recordings(
    ra_rows: list[dict], rb_rows: list[dict], cross: bool
) -> list[tuple[dict, dict]]:
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
        keys = [
            ("file", ra["root"], ra["file"]),
            ("hash", ra["source_hash"]) if ra["source_hash"] else None,
        ]
        keys.append(("ids", ra["participant"], ra["run"]) if cross else None)
        found = sorted({j for key in keys if key is not None for j in by_key.get(key, [])})
        pairs += [(ra, rb_rows[j]) for j in found]
    return pairs


def _span_matches(
    ta: np.ndarray, la: float, tb: np.ndarray, lb: float, eps: float
) -> tuple[np.ndarray, ...]:
    """For each window of a (start ta, length la, seconds; tb sorted): how many windows of b
    have the same span, how many others intersect it, and where b's intersecting run starts."""
    hi = np.searchsorted(tb, ta + la - eps, "left")  # b starts before a ends
    lo = np.searchsorted(tb, ta - lb + eps, "right")  # b ends after a starts
    eq_lo, eq_hi = np.searchsorted(tb, ta - eps, "left"), np.searchsorted(tb, ta + eps, "right")
    n_same = (eq_hi - eq_lo) if abs(la - lb) < eps else np.zeros_like(hi)
    return n_same, np.maximum(hi - lo, 0) - n_same, lo, eq_lo


def time_checks(
    recs: dict[str, pl.DataFrame], cross_dataset_ids: bool, max_examples: int
) -> list[Check]:
    """Level 3: identical window spans and intersecting spans of one recording, in seconds."""
    acc = {"same": [0, []], "overlap": [0, []]}
    for a, b in itertools.combinations(recs, 2):
        pairs = _matching_recordings(
            list(recs[a].iter_rows(named=True)),
            list(recs[b].iter_rows(named=True)),
            cross_dataset_ids,
        )
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
                for i in np.flatnonzero(counts)[: max(0, max_examples - len(examples))]:
                    j = (
                        eq_lo[i]
                        if kind == "same"
                        else lo[i] + int(abs(tb[lo[i]] - ta[i]) < eps and n_same[i] > 0)
                    )
                    examples.append(
                        {
                            "splits": f"{a}|{b}",
                            f"{a}_file": ra["file"],
                            f"{a}_row": int(rows_a[i]),
                            f"{a}_start_s": round(float(ta[i]), 4),
                            f"{b}_file": rb["file"],
                            f"{b}_row": int(rows_b[j]),
                            f"{b}_start_s": round(float(tb[j]), 4),
                        }
                    )
    return [
        finding(
            "leakage/window",
            3,
            acc["same"][0],
            "windows of one recording in two splits",
            acc["same"][1],
        ),
        finding(
            "leakage/time_overlap",
            3,
            acc["overlap"][0],
            "windows of one recording overlapping in time across splits",
            acc["overlap"][1],
        ),
    ]


def finding(
    name: str,
    level: int,
    count: int,
    what: str,
    examples: list,
    status: str | None = None,
    **numbers,
) -> Check:
    status = status or ("fail" if count else "pass")
    summary = f"{count} {what}" if count else f"no {what}"
    return Check(name, status, summary, {"count": count, **numbers}, examples, level=level)  # type: ignore[arg-type]
