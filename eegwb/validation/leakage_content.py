"""The content levels of the leakage audit (2: copied recordings, 4, 5), judged against
a split from the copies the search found (leakage_copies.py).

- a pair whose two windows sit in different splits crosses the split: a leak now (fail);
- a pair inside one split, of two participants: no leak in this split, a leak under
  another seed, other fractions or a k-fold (warn, naming the split);
- a pair inside one split, of one participant: that person's own repeated content (not
  counted).

Pairs are grouped by the two recordings they join. When at least `COPIED_FRACTION` of one
recording's windows have a copy in a recording of another id that shares no source hash
with it (a shared hash or shared ids are levels 2-3, found from metadata), the two
recordings are one finding, `leakage/copied_recording` (level 2: one recording under two
ids, found by content because the provenance metadata is gone), not hundreds of window
pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from eegwb.data.splits import SplitData
from eegwb.errors import InputError
from eegwb.validation.checks import Check
from eegwb.validation.leakage_copies import Copies
from eegwb.validation.leakage_ids import finding

if TYPE_CHECKING:
    from eegwb.validation.leakage import LeakageConfig

COPIED_FRACTION = 0.9  # of one recording's windows, copied into another: a copied recording
MAX_SPLITS = 52  # split membership is a bit mask (exact in float64 for the orientation)
LATER = (
    "no leak in this split, a leak under another seed, other fractions or a k-fold that "
    "puts the two participants apart"
)


def _membership(copies: Copies, splits: Mapping[str, SplitData]) -> tuple[list[np.ndarray], dict]:
    """Per root, (n,) uint64 bit masks of the splits each vector's window is in; and per
    split its vectors and skipped vectors (by reason, and other lengths by samples)."""
    if len(splits) > MAX_SPLITS:
        raise InputError(f"the leakage audit compares at most {MAX_SPLITS} splits")
    roots = {rc.root: i for i, rc in enumerate(copies.roots)}
    member = [np.zeros(len(rc.row), np.uint64) for rc in copies.roots]
    by_file = []  # per root: vectors sorted by file, and where each file's run starts
    for rc in copies.roots:
        order = np.argsort(rc.file_idx, kind="stable")
        bounds = np.searchsorted(rc.file_idx[order], np.arange(len(rc.files) + 1))
        by_file.append((order, bounds))
    info: dict[str, dict] = {}
    for k, (name, split) in enumerate(splits.items()):
        r = roots[str(split.root.resolve())]
        rc = copies.roots[r]
        spans: dict[str, list[tuple[int, int]]] = {}
        for f, s, e in split.resolved().select("file", "row_start", "row_end").iter_rows():
            spans.setdefault(f, []).append((s, e))

        def within(file: str, rows: np.ndarray) -> np.ndarray:
            out = np.zeros(len(rows), bool)
            for s, e in spans.get(file, []):  # noqa: B023 - used inside this iteration only
                out |= (rows >= s) & (rows < e)
            return out

        order, bounds = by_file[r]
        n_vectors = 0
        for fi, file in enumerate(rc.files):
            if file in spans:
                pos = order[bounds[fi] : bounds[fi + 1]]  # this file's vectors
                pos = pos[within(file, rc.row[pos])]
                member[r][pos] |= np.uint64(1) << np.uint64(k)
                n_vectors += len(pos)
        skipped = {"non_finite": 0, "constant": 0, "other_length": 0}
        lengths: dict[int, int] = {}
        for file, rows, reason, t in rc.skipped_rows:
            n = int(within(file, rows).sum())
            skipped[reason] += n
            if reason == "other_length" and n:
                lengths[t] = lengths.get(t, 0) + n
        info[name] = {"vectors": n_vectors, "skipped_vectors": skipped, "lengths": lengths}
    return member, info


def _lowest(mask: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of each (nonzero) uint64."""
    low = mask & (~mask + np.uint64(1))
    return np.log2(low.astype(np.float64)).astype(np.int64)


def _highest(mask: np.ndarray) -> np.ndarray:
    return np.floor(np.log2(mask.astype(np.float64))).astype(np.int64)


SIDES = (("a", "b"), ("fa", "fb"), ("ra", "rb"), ("ca", "cb"), ("mu", "mv"))


def _judged(copies: Copies, member: list[np.ndarray], cross_ids: bool) -> pl.DataFrame:
    """Every pair with both windows' file, row, channel and splits (bit masks), oriented so
    that side a's splits come first; `crossing` when the two sit in different splits.
    Pairs of one person inside one split are dropped (not a leak under any split)."""
    frames = []
    for (a, b), grp in copies.pairs.group_by(["a", "b"], maintain_order=True):
        ra, rb = copies.roots[a], copies.roots[b]
        ia, ib = grp["ia"].to_numpy(), grp["ib"].to_numpy()
        n = len(ia)
        side_a = (np.full(n, a), ra.file_idx[ia], ra.row[ia], ra.chan_idx[ia], member[a][ia])
        side_b = (np.full(n, b), rb.file_idx[ib], rb.row[ib], rb.chan_idx[ib], member[b][ib])
        mu, mv = side_a[-1], side_b[-1]
        both = mu | mv
        crossing = (both & (both - np.uint64(1))) != 0
        pa = np.asarray(ra.participants, dtype=object)[side_a[1]]
        pb = np.asarray(rb.participants, dtype=object)[side_b[1]]
        keep = crossing | ~((pa == pb) & (a == b or cross_ids))
        lo_u, lo_v = _lowest(mu), _lowest(mv)
        swap = (lo_u > lo_v) | ((lo_u == lo_v) & (_highest(mu) > _highest(mv)))
        cols: dict[str, object] = {}
        for (ka, kb), xa, xb in zip(SIDES, side_a, side_b, strict=True):
            cols[ka] = np.where(swap, xb, xa)[keep]
            cols[kb] = np.where(swap, xa, xb)[keep]
        cols |= {
            "cosine": grp["cosine"].to_numpy()[keep],
            "identical": grp["identical"].to_numpy()[keep],
            "crossing": crossing[keep],
        }
        frames.append(pl.DataFrame(cols))
    if not frames:
        return pl.DataFrame(
            schema={k: pl.Int64 for pair in SIDES for k in pair}
            | {
                "mu": pl.UInt64,
                "mv": pl.UInt64,
                "cosine": pl.Float64,
                "identical": pl.Boolean,
                "crossing": pl.Boolean,
            }
        )
    return pl.concat(frames).sort("a", "fa", "ra", "b", "fb", "rb", "ca", "cb")


def _split_names(names: list[str], mu: int, mv: int, crossing: bool) -> tuple[str, str]:
    """(split of side a, split of side b): different splits when the pair crosses."""
    sa = [names[k] for k in range(len(names)) if mu >> k & 1]
    sb = [names[k] for k in range(len(names)) if mv >> k & 1]
    if not crossing:
        return sa[0], sa[0]
    x = sa[0]
    y = next((n for n in sb if n != x), None)
    if y is None:
        x, y = next(n for n in sa if n != sb[0]), sb[0]
    return x, y


def _where(crossing: int, inside: dict[str, int], unit: str) -> str:
    parts = [f"{crossing} {unit} across splits (a leak now)"] if crossing else []
    if inside:
        each = ", ".join(f"{n} inside {name!r}" for name, n in inside.items())
        parts.append(f"{each} ({LATER})")
    return "; ".join(parts)


def _inside_counts(p: pl.DataFrame, names: list[str]) -> dict[str, int]:
    inside = p.filter(~pl.col("crossing"))
    if not inside.height:
        return {}
    idx, counts = np.unique(_lowest(inside["mu"].to_numpy()), return_counts=True)
    return {names[i]: int(c) for i, c in zip(idx, counts, strict=True)}


def _window_example(row: dict, copies: Copies, names: list[str]) -> dict[str, object]:
    ra, rb = copies.roots[row["a"]], copies.roots[row["b"]]
    x, y = _split_names(names, row["mu"], row["mv"], row["crossing"])
    a_file, b_file = ra.files[row["fa"]], rb.files[row["fb"]]
    a_ch, b_ch = ra.channels[row["ca"]], rb.channels[row["cb"]]
    if row["crossing"]:
        return {"splits": f"{x}|{y}", f"{x}_file": a_file, f"{x}_row": row["ra"],
                "channel": a_ch, f"{y}_file": b_file, f"{y}_row": row["rb"],
                f"{y}_channel": b_ch, "cosine": round(row["cosine"], 6)}  # fmt: skip
    return {"splits": x, "file": a_file, "row": row["ra"], "channel": a_ch,
            "with_file": b_file, "with_row": row["rb"], "with_channel": b_ch,
            "cosine": round(row["cosine"], 6)}  # fmt: skip


def _window_check(
    p: pl.DataFrame,
    name: str,
    level: int,
    what: str,
    copies: Copies,
    names: list[str],
    cfg: LeakageConfig,
    tolerated: int = 0,
    **numbers,
) -> Check:
    """One level's window-channel pairs: fail when more than `tolerated` cross the split."""
    crossing = int(p["crossing"].sum()) if p.height else 0
    inside = _inside_counts(p, names)
    status = "fail" if crossing > tolerated else ("warn" if p.height else "pass")
    ordered = pl.concat([p.filter(pl.col("crossing")), p.filter(~pl.col("crossing"))])
    examples = [
        _window_example(r, copies, names)
        for r in ordered.head(cfg.max_examples).iter_rows(named=True)
    ]
    windows = p.select("b", "fb", "rb").unique().height if p.height else 0
    check = finding(name, level, p.height, what, examples, status=status, windows=windows,
                    crossing=crossing, inside=inside, **numbers)  # fmt: skip
    if p.height:
        check.summary += ": " + _where(crossing, inside, "pairs")
    return check


def _copied_recordings(
    copies: Copies, p: pl.DataFrame, names: list[str], cfg: LeakageConfig
) -> tuple[Check, pl.DataFrame]:
    """Recordings of other ids whose windows are copies, one finding per pair of files;
    returns the check and the pairs that are not part of such a copy."""
    found, examples = [], []
    if p.height:
        groups = p.group_by("a", "fa", "b", "fb", maintain_order=True).agg(
            na=pl.col("ra").n_unique(), nb=pl.col("rb").n_unique(),
            crossing=pl.col("crossing").any(), min_cos=pl.col("cosine").min(),
            mu=pl.col("mu").sort_by("crossing", descending=True).first(),
            mv=pl.col("mv").sort_by("crossing", descending=True).first(),
        )  # fmt: skip
        for g in groups.iter_rows(named=True):
            ra, rb = copies.roots[g["a"]], copies.roots[g["b"]]
            fa, fb = g["fa"], g["fb"]
            na, nb = ra.file_rows[ra.files[fa]], rb.file_rows[rb.files[fb]]
            if max(g["na"] / na, g["nb"] / nb) < COPIED_FRACTION:
                continue
            if ra.source_hashes[fa] and ra.source_hashes[fa] == rb.source_hashes[fb]:
                continue  # one source file under two ids: level 2 (source_recording)
            same_ids = (ra.participants[fa], ra.runs[fa]) == (rb.participants[fb], rb.runs[fb])
            if same_ids and (g["a"] == g["b"] or cfg.cross_dataset_ids):
                continue  # one recording in two roots: levels 1-3
            found.append(g)
            x, y = _split_names(names, g["mu"], g["mv"], g["crossing"])
            examples.append({
                "splits": f"{x}|{y}" if g["crossing"] else x,
                "file": ra.files[fa], "with_file": rb.files[fb],
                "participants": f"{ra.participants[fa]}|{rb.participants[fb]}",
                "windows": f"{g['na']} of {na} | {g['nb']} of {nb}",
                "min_cosine": round(g["min_cos"], 6),
            })  # fmt: skip
    crossing = sum(bool(g["crossing"]) for g in found)
    inside: dict[str, int] = {}
    for g in found:
        if not g["crossing"]:
            split = names[int(_lowest(np.asarray([g["mu"]], np.uint64))[0])]
            inside[split] = inside.get(split, 0) + 1
    status = "fail" if crossing else ("warn" if found else "pass")
    what = (f"recordings whose windows (>= {COPIED_FRACTION:.0%}) are copies of a recording "
            "under another id, with no shared source hash")  # fmt: skip
    check = finding("leakage/copied_recording", 2, len(found), what,
                    examples[: cfg.max_examples], status=status, crossing=crossing,
                    inside=inside)  # fmt: skip
    if found:
        check.summary += ": " + _where(crossing, inside, "recording pairs")
        copied = pl.DataFrame(
            [{k: g[k] for k in ("a", "fa", "b", "fb")} for g in found],
            schema={k: p.schema[k] for k in ("a", "fa", "b", "fb")},
        )
        p = p.join(copied, on=["a", "fa", "b", "fb"], how="anti")
    return check, p


def content_checks(
    copies: Copies, splits: Mapping[str, SplitData], cfg: LeakageConfig
) -> tuple[list[Check], dict[str, dict]]:
    """Levels 2 (copied recordings), 4 and 5 for `splits`, and per split its vectors and
    skipped vectors; see the module docstring."""
    names = list(splits)
    member, info = _membership(copies, splits)
    pairs = _judged(copies, member, cfg.cross_dataset_ids)
    copied, pairs = _copied_recordings(copies, pairs, names, cfg)
    ccfg = cfg.content_config()
    checks = [
        copied,
        _window_check(pairs.filter(pl.col("identical")), "leakage/identical_content", 4,
                      "window-channel pairs with identical z-scored samples under other ids",
                      copies, names, cfg),
    ]  # fmt: skip
    if cfg.near_duplicates:
        near = pairs.filter(~pl.col("identical"))
        checks.append(_window_check(
            near, "leakage/near_duplicate", 5,
            f"window-channel pairs with cosine >= {ccfg.threshold} after z-scoring", copies,
            names, cfg, tolerated=cfg.near_duplicate_max, threshold=ccfg.threshold,
            allowed=cfg.near_duplicate_max,
            min_cosine=float(near["cosine"].min()) if near.height else None,
        ))  # fmt: skip
    _note_other_lengths(checks, copies, info)
    return checks, {n: {k: v for k, v in i.items() if k != "lengths"} for n, i in info.items()}


def _note_other_lengths(content: list[Check], copies: Copies, info: dict[str, dict]) -> None:
    """Levels 2, 4, 5 compare vectors of one length only: when any were skipped for another
    length, a copy among them would go unseen, so those levels warn (or still fail) and
    name what was not compared."""
    skipped = {name: i["lengths"] for name, i in info.items() if i["lengths"]}
    if not skipped:
        return
    compared = sorted({rc.window_samples for rc in copies.roots if len(rc.row)})
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
