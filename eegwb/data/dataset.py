"""EEGDataset: a Polars index of sequences over the decode-once memory-mapped cache.

A *sequence* is one channel of one selected window range of one recording, cut into
chunks of at most `max_windows` windows when asked. `index` (Polars) has one row per
sequence; `__getitem__` slices the cache (see eegwb/data/cache.py) and normalises with
per-recording, per-channel statistics (eegwb/data/normalise.py), so random access runs
at memory speed. `collate` pads a list of sequences into a `Batch`.

Each sequence carries its electrode's unit-sphere position, so a model pretrained on a
19-channel cap can be fine-tuned on a 4-channel Muse dataset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import torch
import xxhash
from tqdm.auto import tqdm

from eegwb.data.batch import Batch
from eegwb.data.cache import CacheEntry, cached_recording, resolve_cache_dir
from eegwb.data.layout import DatasetError, list_recordings
from eegwb.data.normalise import NORMALISATIONS, Normalisation, center_scale, is_flat

log = logging.getLogger(__name__)

OnBad = Literal["raise", "skip"]
SELECTION_COLUMNS = ("file", "participant", "run", "row_start", "row_end")
INDEX_COLUMNS = (
    "seq_index", "file", "participant", "run", "channel", "row_start", "row_end", "n_windows",
    "x", "y", "z", "window_start_first", "window_start_last",
)  # fmt: skip


@dataclass(frozen=True)
class DatasetOptions:
    """How sequences are cut and normalised (everything but the data and the selection)."""

    normalisation: Normalisation = "robust_z"  # robust to blinks and pops (see normalise.py)
    max_windows: int | None = None  # None: one sequence per channel per selected range
    on_bad: OnBad = "raise"  # "skip": drop bad sequences/files and list them in `skipped`

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation {self.normalisation!r} is not one of {NORMALISATIONS}")
        if self.max_windows is not None and (int(self.max_windows) != self.max_windows or self.max_windows < 1):
            raise ValueError(f"max_windows must be a positive integer or None, got {self.max_windows!r}")
        if self.on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip', got {self.on_bad!r}")


class EEGDataset(torch.utils.data.Dataset):
    """Sequences of normalised windows; build with `EEGDataset.open(root, ...)`.

    Positions `i` (0..len-1) address sequences in `__getitem__`; the `seq_index` column is
    a sequence's identity and survives `subset`, so results join back to the parent index.
    """

    def __init__(
        self,
        root: Path,
        cache_dir: Path,
        entries: list[CacheEntry],
        seq: dict[str, np.ndarray],
        index: pl.DataFrame,
        channels: list[str],
        selection: pl.DataFrame | None,
        options: DatasetOptions,
        skipped: list[str],
        label: str | None = None,
    ) -> None:
        self.root, self._cache_dir, self._entries = root, cache_dir, entries
        self._seq, self.index, self.channels = seq, index, channels
        self._selection, self.options, self.skipped, self.label = selection, options, skipped, label
        self.sfreq = entries[0].sfreq
        self.window_samples = entries[0].window_samples

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        selection: pl.DataFrame | None = None,
        channels: Sequence[str] | None = None,
        normalisation: Normalisation = "robust_z",
        max_windows: int | None = None,
        cache_dir: str | Path | None = None,
        on_bad: OnBad = "raise",
        progress: bool = False,
    ) -> EEGDataset:
        """Open a dataset directory (decoding into the cache on first use).

        selection: window rows per file (docs/architecture.md); None = everything.
        channels: subset to use (upper-case names); None = the channels every file has.
        Errors (DatasetError) name the file and the problem; with on_bad="skip", bad files
        and bad sequences (NaN/Inf, flat) are left out and listed in `skipped` instead.
        """
        options = DatasetOptions(normalisation, max_windows, on_bad)
        root = Path(root)
        files = list_recordings(root)
        selection = _check_selection(selection, root, {f.name for f in files})
        if selection is not None:
            chosen = set(selection["file"].to_list())
            files = [f for f in files if f.name in chosen]
        cache = resolve_cache_dir(root, cache_dir)
        entries, skipped = [], []
        for path in tqdm(files, desc="dataset cache", unit="file", disable=not progress):
            try:
                entries.append(cached_recording(path, cache))
            except DatasetError as err:
                if on_bad == "raise":
                    raise
                skipped.append(str(err))
                log.warning("skipped: %s", err)
        if not entries:
            raise DatasetError(f"{root}: no usable recording files ({len(skipped)} skipped: {skipped[:3]})")
        n_new = sum(e.decoded for e in entries)
        if n_new:
            log.info("%s: decoded %d of %d files into the cache %s", root, n_new, len(entries), cache)
        _check_consistent(root, entries)
        channels = _choose_channels(root, entries, channels)
        return _build(root, cache, entries, selection, channels, options, skipped)

    def _view(self, positions: np.ndarray | None = None, label: str | None = None) -> EEGDataset:
        seq, index = self._seq, self.index
        if positions is not None:
            seq = {k: v[positions] for k, v in seq.items()}
            index = index[positions.tolist()]
        return EEGDataset(
            self.root, self._cache_dir, self._entries, seq, index, self.channels,
            self._selection, self.options, self.skipped, self.label if label is None else label,
        )  # fmt: skip

    def subset(self, seq_indices: Sequence[int] | np.ndarray) -> EEGDataset:
        """The sequences with these `seq_index` values, in the order given; shares the cache."""
        wanted = np.asarray(seq_indices, dtype=np.int64).reshape(-1)
        if np.unique(wanted).size != wanted.size:
            raise ValueError("subset: seq_indices holds duplicates")
        have = self._seq["seq_index"]
        order = np.argsort(have, kind="stable")
        pos = np.searchsorted(have[order], wanted).clip(0, len(have) - 1)
        missing = wanted[have[order][pos] != wanted]
        if missing.size:
            raise IndexError(f"subset: seq_index {missing[:5].tolist()} not in this dataset ({self.root})")
        return self._view(order[pos])

    def select(self, selection: pl.DataFrame) -> EEGDataset:
        """The same files' cache, channels and options with another selection."""
        opened = EEGDataset.open(
            self.root, selection=selection, channels=self.channels,
            normalisation=self.options.normalisation, max_windows=self.options.max_windows,
            cache_dir=self._cache_dir, on_bad=self.options.on_bad,
        )  # fmt: skip
        return opened.with_label(self.label) if self.label is not None else opened

    def with_label(self, name: str) -> EEGDataset:
        """A view whose samples carry `label` from the files' metadata label `name`."""
        labels = [c for c in self.index.columns if c not in INDEX_COLUMNS]
        if name not in labels:
            raise KeyError(f"{self.root}: no label {name!r} in the files' metadata (labels: {labels})")
        if not self.index.schema[name].is_numeric():
            raise DatasetError(f"{self.root}: label {name!r} is not numeric ({self.index.schema[name]})")
        view = self._view(label=name)
        view._seq = {**self._seq, "label": self.index[name].cast(pl.Float64).fill_null(np.nan).to_numpy()}
        return view

    # ---- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._seq["seq_index"])

    def windows(self, i: int, normalised: bool = True) -> np.ndarray:
        """Sequence at position `i` as (l, t) float32: a read-only view into the cache when
        `normalised` is False, else a new normalised array."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sequence position {i} out of range for {n} sequences")
        s = self._seq
        view = self._entries[s["entry"][i]].array()[s["chan"][i], s["row_start"][i] : s["row_end"][i]]
        if not normalised:
            return view
        out = np.subtract(view, s["center"][i], dtype=np.float32)  # (l, t)
        out *= s["inv_scale"][i]
        return out

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        label = None
        if self.label is not None:
            value = float(self._seq["label"][i])
            label = None if np.isnan(value) else value
        return {
            "x": torch.from_numpy(self.windows(i)),  # (l, t)
            "coords": torch.tensor(self._seq["coords"][i]),  # (3,)
            "seq_index": int(self._seq["seq_index"][i]),
            "label": label,
        }

    def participants(self) -> list[str]:
        return sorted(self.index["participant"].unique().to_list())

    def fingerprint(self) -> str:
        """Hex digest of the files' contents, selection, channels, normalisation, max_windows
        and the exact sequences; equal across re-opens of unchanged data (not the label)."""
        used = sorted({(self._entries[e].file, self._entries[e].content_hash) for e in set(self._seq["entry"].tolist())})
        seqs = self.index.select("file", "channel", "row_start", "row_end").rows()
        payload = {
            "files": used,
            "selection": None if self._selection is None else self._selection.rows(),
            "channels": self.channels,
            "normalisation": self.options.normalisation,
            "max_windows": self.options.max_windows,
            "sequences": seqs,
        }
        return xxhash.xxh3_128_hexdigest(json.dumps(payload, sort_keys=True).encode())

    def __repr__(self) -> str:
        return (
            f"EEGDataset({str(self.root)!r}, {len(self)} sequences, {len(self.channels)} channels, "
            f"{self.options.normalisation}, label={self.label!r})"
        )


def collate(samples: list[dict]) -> Batch:
    """Pad samples to the longest sequence: x zero at pads, pad_mask True at pads.

    Labels: all None -> Batch.label None; all numbers -> (b,) float32; a mix is an error.
    """
    if not samples:
        raise ValueError("collate: no samples")
    lengths = torch.tensor([s["x"].shape[0] for s in samples], dtype=torch.int64)  # (b,)
    t = samples[0]["x"].shape[1]
    if any(s["x"].shape[1] != t for s in samples):
        raise ValueError(f"collate: windows of different lengths {sorted({s['x'].shape[1] for s in samples})}")
    b, l = len(samples), int(lengths.max())
    x = torch.empty((b, l, t), dtype=torch.float32)  # (b, l, t)
    for k, s in enumerate(samples):
        n = s["x"].shape[0]
        x[k, :n] = s["x"]
        x[k, n:] = 0.0
    labels = [s.get("label") for s in samples]
    if all(v is None for v in labels):
        label = None
    elif any(v is None for v in labels):
        missing = [s["seq_index"] for s, v in zip(samples, labels) if v is None]
        raise ValueError(f"collate: sequences {missing[:5]} have no label but others do")
    else:
        label = torch.tensor(labels, dtype=torch.float32)
    return Batch(
        x=x,
        coords=torch.stack([s["coords"] for s in samples]).to(torch.float32),  # (b, 3)
        pad_mask=torch.arange(l)[None, :] >= lengths[:, None],  # (b, l)
        lengths=lengths,
        seq_index=torch.tensor([s["seq_index"] for s in samples], dtype=torch.int64),
        label=label,
    )


# ---- helpers of open() ----------------------------------------------------------------------
def _check_selection(selection: pl.DataFrame | None, root: Path, names: set[str]) -> pl.DataFrame | None:
    if selection is None:
        return None
    if not isinstance(selection, pl.DataFrame):
        raise TypeError(f"selection must be a polars DataFrame, got {type(selection).__name__}")
    missing = [c for c in SELECTION_COLUMNS if c not in selection.columns]
    if missing:
        raise DatasetError(f"selection: missing columns {missing} (needs {list(SELECTION_COLUMNS)})")
    sel = selection.select(
        pl.col("file", "participant", "run").cast(pl.String), pl.col("row_start", "row_end").cast(pl.Int64)
    ).sort("file", "row_start")
    if sel.height == 0:
        raise DatasetError(f"{root}: the selection is empty")
    prev: tuple[str, int] | None = None
    for file, participant, run, start, end in sel.iter_rows():
        where = root / file
        if file not in names:
            raise DatasetError(f"{where}: in the selection but not a recording of the dataset")
        if file != f"sub-{participant}_run-{run}.parquet":
            raise DatasetError(f"{where}: selection row says participant {participant!r} run {run!r}")
        if not 0 <= start < end:
            raise DatasetError(f"{where}: selection has an empty or negative row range [{start}, {end})")
        if prev is not None and prev[0] == file and start < prev[1]:
            raise DatasetError(f"{where}: selection ranges overlap at window row {start}")
        prev = (file, end)
    return sel


def _check_consistent(root: Path, entries: list[CacheEntry]) -> None:
    first = entries[0]
    for e in entries[1:]:
        for attr in ("window_samples", "sfreq"):
            if getattr(e, attr) != getattr(first, attr):
                raise DatasetError(
                    f"{root / e.file}: {attr} {getattr(e, attr)} differs from {getattr(first, attr)} "
                    f"in {first.file} (one dataset, one {attr})"
                )


def _choose_channels(root: Path, entries: list[CacheEntry], channels: Sequence[str] | None) -> list[str]:
    if channels is None:
        common = [ch for ch in entries[0].channels if all(ch in e.channels for e in entries)]
        left_out = sorted({ch for e in entries for ch in e.channels} - set(common))
        if not common:
            raise DatasetError(f"{root}: the recording files share no channel")
        if left_out:
            log.info("%s: using the %d channels every file has; left out %s", root, len(common), left_out)
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


def _chunks(spans: list[tuple[int, int]], max_windows: int | None) -> np.ndarray:
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
            raise DatasetError(f"{root / e.file}: channel {ch!r} has a bad electrode position {pos.tolist()}")
        out[j] = pos
    return out


def _entry_sequences(root, e: CacheEntry, spans, channels, options, skipped) -> dict[str, np.ndarray]:
    """Sequences of one recording (chunk-major, then channel), bad ones raised or skipped."""
    if spans[-1][1] > e.n_windows:
        raise DatasetError(f"{root / e.file}: selection reaches window row {spans[-1][1]}, file has {e.n_windows}")
    chunks = _chunks(spans, options.max_windows)  # (m, 2)
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
            problem = f"flat channel ({options.normalisation} scale {scale[k[j]]:.3g} µV; nothing to divide by)"
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


def _build(root, cache, entries, selection, channels, options, skipped) -> EEGDataset:
    spans_of: dict[str, list[tuple[int, int]]] = {}
    if selection is not None:
        for file, _, _, a, b in selection.iter_rows():
            spans_of.setdefault(file, []).append((a, b))
    parts, rows = [], []
    for j, e in enumerate(entries):
        part = _entry_sequences(root, e, spans_of.get(e.file, [(0, e.n_windows)]), channels, options, skipped)
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
    return EEGDataset(root, cache, entries, seq, index, channels, selection, options, skipped)


def _label_columns(root: Path, entries: list[CacheEntry], entry_of_seq: np.ndarray) -> list[pl.Series]:
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
