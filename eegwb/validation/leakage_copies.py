"""The content search of the leakage audit: every selected window against every other,
once, whatever split it is in (`find_copies`).

A window or a whole recording copied under another participant id is a defect of the
dataset whatever today's split is, so the search does not compare split against split:
it builds one content index per dataset root over the union of the splits' windows (each
window once; near_duplicates.py) and keeps every pair with cosine >= the threshold, exact
copies (equal hashes) included, as `Copies`: ids per vector, no samples. Judging them
against a split is leakage_content.py's. `ContentCache` keeps the copies of one set of
windows, so fine-tuning's gate, which judges every fold of a k-fold over the same
recordings, searches once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from eegwb.data.layout import channel_array, channel_columns
from eegwb.data.splits import SplitData
from eegwb.validation.near_duplicates import (
    ContentConfig,
    ContentIndex,
    IndexBuilder,
    Projector,
    hash_pairs,
    similar_pairs,
)


@dataclass
class RootContent:
    """What the search keeps of one dataset root's index: ids per vector, no samples."""

    root: str
    files: list[str]
    participants: list[str]  # per file
    runs: list[str]
    source_hashes: list[str]
    channels: list[str]
    window_samples: int
    file_idx: np.ndarray  # (n,) into files
    row: np.ndarray  # (n,) window row in its file
    chan_idx: np.ndarray  # (n,) into channels
    file_rows: dict[str, int]  # windows offered per file
    skipped_rows: list[tuple[str, np.ndarray, str, int]]  # (file, rows, reason, samples)

    @classmethod
    def keep(cls, idx: ContentIndex, ids: dict[str, tuple[str, str]], hashes: dict[str, str]):
        return cls(
            idx.root, list(idx.files), [ids[f][0] for f in idx.files],
            [ids[f][1] for f in idx.files], [hashes.get(f, "") for f in idx.files],
            list(idx.channels), idx.window_samples, idx.file_idx, idx.row, idx.chan_idx,
            dict(idx.file_rows), list(idx.skipped_rows),
        )  # fmt: skip


@dataclass
class Copies:
    """Every pair of selected window-channel vectors with cosine >= the threshold."""

    roots: list[RootContent]
    pairs: pl.DataFrame  # a, b (root), ia, ib (vector), cosine, identical (bool)


@dataclass
class ContentCache:
    """The copies of the last set of windows searched (fine-tuning: every fold's)."""

    key: tuple | None = None
    copies: Copies | None = None


def _key(splits: Mapping[str, SplitData], ccfg: ContentConfig, near: bool) -> tuple:
    spans = frozenset(
        (str(s.root.resolve()), *row)
        for s in splits.values()
        for row in s.resolved().select("file", "row_start", "row_end").iter_rows()
    )
    return (repr(ccfg), near, spans)


def find_copies(
    splits: Mapping[str, SplitData],
    ccfg: ContentConfig,
    near: bool,
    *,
    progress: bool = False,
    cache: ContentCache | None = None,
) -> Copies:
    """Search every selected window of every split against every other (see the module
    docstring); `near` False finds exact copies only (equal hashes)."""
    key = _key(splits, ccfg, near) if cache is not None else None
    if cache is not None and cache.key == key and cache.copies is not None:
        return cache.copies
    groups: dict[str, list[SplitData]] = {}
    for split in splits.values():
        groups.setdefault(str(split.root.resolve()), []).append(split)
    projector = Projector(ccfg.prefilter_dims)
    with tempfile.TemporaryDirectory(prefix="eegwb-audit-") as workdir:
        indexes, roots = [], []
        for root, group in groups.items():
            idx, ids, hashes = _index_root(root, group, projector, ccfg, workdir, progress)
            indexes.append(idx)
            roots.append(RootContent.keep(idx, ids, hashes))
        frames = [
            _pairs(indexes[a], indexes[b], a, b, ccfg, near)
            for a in range(len(indexes))
            for b in range(a, len(indexes))
        ]
    copies = Copies(roots, pl.concat(frames))
    if cache is not None:
        cache.key, cache.copies = key, copies
    return copies


def _index_root(root, group, projector, ccfg, workdir, progress):
    """One root's index over the union of its splits' windows (each window once)."""
    from tqdm.auto import tqdm

    union = SplitData(group[0].root, pl.concat([s.resolved() for s in group]))
    selection = union.resolved()
    ids = {f: (p, r) for f, p, r in selection.select("file", "participant", "run").iter_rows()}
    builder = IndexBuilder("root", root, workdir, projector, ccfg)
    hashes = {}
    recordings = union.iter_recordings()
    bar = tqdm(recordings, total=len(ids), desc=f"index {root}", disable=not progress)
    for file, meta, table, rows in bar:
        hashes[file] = meta.source_hash
        starts = table.column("window_start").to_numpy()
        for ch in channel_columns(table.schema):
            builder.add(channel_array(table, ch), file, rows, ch, starts)
    return builder.finish(), ids, hashes


def _pairs(xa: ContentIndex, xb: ContentIndex, a: int, b: int, ccfg, near: bool) -> pl.DataFrame:
    """The pairs of index a with index b (b == a: within a, each once)."""
    other = xa if a == b else xb
    ha, hb = hash_pairs(xa, other)
    parts = [(ha, hb, np.ones(len(ha)), np.ones(len(ha), bool))]
    if near:
        seen = set(zip(ha.tolist(), hb.tolist(), strict=True))
        for ia, ib, cos in similar_pairs(xa, other, ccfg):
            new = np.fromiter(
                ((i, j) not in seen for i, j in zip(ia.tolist(), ib.tolist(), strict=True)),
                bool,
                len(ia),
            )
            parts.append((ia[new], ib[new], cos[new], 1.0 - cos[new] <= ccfg.identical_tol))
    ia, ib, cos, same = (np.concatenate(p) for p in zip(*parts, strict=True))
    return pl.DataFrame(
        {"a": np.full(len(ia), a, np.int32), "b": np.full(len(ia), b, np.int32),
         "ia": ia.astype(np.int64), "ib": ib.astype(np.int64), "cosine": cos.astype(np.float64),
         "identical": same.astype(bool)}
    )  # fmt: skip
