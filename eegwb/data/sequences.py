"""How a dataset's files and a selection become sequences: the checks and the index.

`build_sequences` cuts each selected window range of each file into chunks of at most
`max_windows` windows (consecutive, each window once), one sequence per chunk and channel
(chunk-major, then channel), and refuses or skips sequences with NaN/Inf samples or a
flat channel (see eegwb/data/normalise.py). Errors name the file and the problem.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from eegwb.data.cache import CacheEntry
from eegwb.data.layout import DatasetError
from eegwb.data.normalise import NORMALISATIONS, Normalisation, center_scale, is_flat

log = logging.getLogger(__name__)

OnBad = Literal["raise", "skip"]
SELECTION_COLUMNS = ("file", "participant", "run", "row_start", "row_end")
INDEX_COLUMNS = (
    "seq_index",
    "file",
    "participant",
    "run",
    "channel",
    "row_start",
    "row_end",
    "n_windows",
    "x",
    "y",
    "z",
    "window_start_first",
    "window_start_last",
)


@dataclass(frozen=True)
class DatasetOptions:
    """How sequences are cut and normalised (everything but the data and the selection)."""

    normalisation: Normalisation = "robust_z"  # robust to blinks and pops (see normalise.py)
    max_windows: int | None = None  # None: one sequence per channel per selected range
    on_bad: OnBad = "raise"  # "skip": drop bad sequences/files and list them in `skipped`

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation {self.normalisation!r} is not one of {NORMALISATIONS}")
        m = self.max_windows
        if m is not None and (isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1):
            raise ValueError(f"max_windows must be a positive integer or None, got {m!r}")
        if self.on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip', got {self.on_bad!r}")


def check_selection(
    selection: pl.DataFrame | None, root: Path, names: set[str]
) -> pl.DataFrame | None:
    if selection is None:
        return None
    if not isinstance(selection, pl.DataFrame):
        raise TypeError(f"selection must be a polars DataFrame, got {type(selection).__name__}")
    missing = [c for c in SELECTION_COLUMNS if c not in selection.columns]
    if missing:
        raise DatasetError(
            f"selection: missing columns {missing} (needs {list(SELECTION_COLUMNS)})"
        )
    sel = selection.select(
        pl.col("file", "participant", "run").cast(pl.String),
        pl.col("row_start", "row_end").cast(pl.Int64),
    ).sort("file", "row_start")
    if sel.height == 0:
        raise DatasetError(f"{root}: the selection is empty")
    prev: tuple[str, int] | None = None
    for file, participant, run, start, end in sel.iter_rows():
        where = root / file
        if file not in names:
            raise DatasetError(f"{where}: in the selection but not a recording of the dataset")
        if file != f"sub-{participant}_run-{run}.parquet":
            raise DatasetError(
                f"{where}: selection row says participant {participant!r} run {run!r}"
            )
        if not 0 <= start < end:
            raise DatasetError(
                f"{where}: selection has an empty or negative row range [{start}, {end})"
            )
        if prev is not None and prev[0] == file and start < prev[1]:
            raise DatasetError(f"{where}: selection ranges overlap at window row {start}")
        prev = (file, end)
    return sel


def check_consistent(root: Path, entries: list[CacheEntry]) -> None:
    first = entries[0]
    for e in entries[1:]:
        for attr in ("window_samples", "sfreq"):
            if getattr(e, attr) != getattr(first, attr):
                raise DatasetError(
                    f"{root / e.file}: {attr} {getattr(e, attr)} differs from "
                    f"{getattr(first, attr)} "
                    f"in {first.file} (one dataset, one {attr})"
                )


def choose_channels(
    root: Path, entries: list[CacheEntry], channels: Sequence[str] | None
) -> list[str]:
    if channels is None:
        common = [ch for ch in entries[0].channels if all(ch in e.channels for e in entries)]
        left_out = sorted({ch for e in entries for ch in e.channels} - set(common))
        if not common:
            raise DatasetError(f"{root}: the recording files share no channel")
        if left_out:  # one file without FZ drops FZ for every file: say which files did it
            lacking = {e.file: sorted(set(left_out) - set(e.channels)) for e in entries}
            lacking = {f: chs for f, chs in lacking.items() if chs}
            shown = "; ".join(f"{f} lacks {chs}" for f, chs in list(lacking.items())[:5])
            more = f" (and {len(lacking) - 5} more files)" if len(lacking) > 5 else ""
            log.warning(
                "%s: using the %d channels every selected file has, leaving out %s: %s%s; "
                "pass channels=[...] to choose them",
                root,
                len(common),
                left_out,
                shown,
                more,
            )
        return common
    chosen = [str(ch).upper() for ch in channels]
    if not chosen:
        raise DatasetError(f"{root}: channels=[] selects nothing")
    dupes = sorted({ch for ch in chosen if chosen.count(ch) > 1})
    if dupes:
        raise DatasetError(f"{root}: channels {dupes} requested twice")
    for e in entries:
        missing = [ch for ch in chosen if ch not in e.channels]
        if missing:
            raise DatasetError(f"{root / e.file}: no channel {missing} (it has {e.channels})")
    return chosen


def chunk_rows(spans: list[tuple[int, int]], max_windows: int | None) -> np.ndarray:
    """(m, 2) [start, end) row chunks; consecutive, covering each span exactly once."""
    out = []
    for a, b in spans:
        step = (b - a) if max_windows is None else max_windows
        out.extend((s, min(s + step, b)) for s in range(a, b, step))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def _coords(root: Path, e: CacheEntry, channels: list[str]) -> np.ndarray:
    out = np.empty((len(channels), 3), np.float32)
    for j, ch in enumerate(channels):
        pos = np.asarray(e.positions.get(ch, ()), dtype=np.float64).reshape(-1)
        if pos.shape != (3,) or not np.isfinite(pos).all() or np.linalg.norm(pos) == 0:
            raise DatasetError(
                f"{root / e.file}: channel {ch!r} has a bad electrode position {pos.tolist()}"
            )
        out[j] = pos
    return out


def _entry_sequences(
    root: Path,
    e: CacheEntry,
    spans: list[tuple[int, int]],
    channels: list[str],
    options: DatasetOptions,
    skipped: list[str],
) -> dict[str, np.ndarray]:
    """Sequences of one recording (chunk-major, then channel), bad ones raised or skipped."""
    if spans[-1][1] > e.n_windows:
        raise DatasetError(
            f"{root / e.file}: selection reaches window row {spans[-1][1]}, file has {e.n_windows}"
        )
    chunks = chunk_rows(spans, options.max_windows)  # (m, 2)
    kidx = np.array([e.channel_index(ch) for ch in channels], np.int64)  # (c,)
    m, c = len(chunks), len(kidx)
    r0, r1, k = np.repeat(chunks[:, 0], c), np.repeat(chunks[:, 1], c), np.tile(kidx, m)  # (m*c,)
    center, scale = center_scale(e.stats, options.normalisation)  # (n_ch,)
    csum = np.zeros((len(e.channels), e.n_windows + 1), np.int64)
    csum[:, 1:] = np.cumsum(e.bad_rows, axis=1)
    n_bad = csum[k, r1] - csum[k, r0]
    flat = is_flat(scale)[k]
    ok = (n_bad == 0) & ~flat
    for j in np.flatnonzero(~ok):
        ch, a, b = e.channels[k[j]], int(r0[j]), int(r1[j])
        if n_bad[j]:
            first = a + int(np.argmax(e.bad_rows[k[j], a:b]))
            problem = f"NaN/Inf samples, first in window row {first}"
        else:
            scale_uv = f"{options.normalisation} scale {scale[k[j]]:.3g} µV"
            problem = f"flat channel ({scale_uv}; nothing to divide by)"
        message = f"{root / e.file}: channel {ch!r} rows [{a}, {b}): {problem}"
        if options.on_bad == "raise":
            raise DatasetError(message)
        skipped.append(message)
    if (~ok).any():
        log.warning("%s: skipped %d bad sequences (see .skipped)", root / e.file, int((~ok).sum()))
    coords = np.tile(_coords(root, e, channels), (m, 1))  # (m*c, 3)
    return {
        "chan": k[ok],
        "row_start": r0[ok],
        "row_end": r1[ok],
        "center": center[k[ok]].astype(np.float32),
        "inv_scale": (1.0 / scale[k[ok]]).astype(np.float32),
        "coords": coords[ok],
        "channel": np.array(channels, dtype=object)[np.tile(np.arange(c), m)][ok],
    }


def build_sequences(
    root: Path,
    entries: list[CacheEntry],
    selection: pl.DataFrame | None,
    channels: list[str],
    options: DatasetOptions,
    skipped: list[str],
) -> tuple[dict[str, np.ndarray], pl.DataFrame]:
    """Per-sequence arrays (entry, chan, row_start, row_end, center, inv_scale, coords,
    seq_index) and the Polars index; bad sequences raise or are appended to `skipped`."""
    spans_of: dict[str, list[tuple[int, int]]] = {}
    if selection is not None:
        for file, _, _, a, b in selection.iter_rows():
            spans_of.setdefault(file, []).append((a, b))
    parts, rows = [], []
    for j, e in enumerate(entries):
        part = _entry_sequences(
            root, e, spans_of.get(e.file, [(0, e.n_windows)]), channels, options, skipped
        )
        part["entry"] = np.full(len(part["chan"]), j, np.int32)
        parts.append(part)
        n = len(part["chan"])
        rows.append(
            {
                "file": [e.file] * n,
                "participant": [e.participant] * n,
                "run": [e.run] * n,
                "window_start_first": e.window_start[part["row_start"]],
                "window_start_last": e.window_start[part["row_end"] - 1],
            }
        )
    seq = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if len(seq["chan"]) == 0:
        raise DatasetError(f"{root}: no sequences left ({len(skipped)} skipped: {skipped[:3]})")
    seq["seq_index"] = np.arange(len(seq["chan"]), dtype=np.int64)
    index = pl.DataFrame(
        {
            "seq_index": seq["seq_index"],
            "file": [v for r in rows for v in r["file"]],
            "participant": [v for r in rows for v in r["participant"]],
            "run": [v for r in rows for v in r["run"]],
            "channel": seq["channel"].tolist(),
            "row_start": seq["row_start"],
            "row_end": seq["row_end"],
            "n_windows": seq["row_end"] - seq["row_start"],
            "x": seq["coords"][:, 0],
            "y": seq["coords"][:, 1],
            "z": seq["coords"][:, 2],
            "window_start_first": np.concatenate([r["window_start_first"] for r in rows]),
            "window_start_last": np.concatenate([r["window_start_last"] for r in rows]),
        }
    )
    index = index.with_columns(_label_columns(root, entries, seq["entry"]))
    del seq["channel"]
    return seq, index


def _label_columns(
    root: Path, entries: list[CacheEntry], entry_of_seq: np.ndarray
) -> list[pl.Series]:
    """One column per label name in any file (null where a file lacks it); numeric labels
    (bool/int/float) become Float64, anything else String."""
    names = sorted({name for e in entries for name in e.labels})
    out = []
    for name in names:
        if name in INDEX_COLUMNS:
            owner = next(e for e in entries if name in e.labels)
            raise DatasetError(f"{root / owner.file}: label {name!r} clashes with an index column")
        values = [e.labels.get(name) for e in entries]
        numeric = all(v is None or isinstance(v, int | float) for v in values)
        per_file = (
            pl.Series(name, [None if v is None else float(v) for v in values], pl.Float64)
            if numeric
            else pl.Series(name, [None if v is None else str(v) for v in values], pl.String)
        )
        out.append(per_file.gather(entry_of_seq))
    return out
