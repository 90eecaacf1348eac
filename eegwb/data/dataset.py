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
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import torch
import xxhash
from tqdm.auto import tqdm

from eegwb.data.batch import Batch
from eegwb.data.cache import CacheEntry, cached_recording, resolve_cache_dir
from eegwb.data.layout import DatasetError, list_recordings
from eegwb.data.normalise import Normalisation
from eegwb.data.sequences import (
    INDEX_COLUMNS,
    DatasetOptions,
    OnBad,
    build_sequences,
    check_consistent,
    check_selection,
    choose_channels,
)

log = logging.getLogger(__name__)


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
        selection = check_selection(selection, root, {f.name for f in files})
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
            raise DatasetError(
                f"{root}: no usable recording files ({len(skipped)} skipped: {skipped[:3]})"
            )
        n_new = sum(e.decoded for e in entries)
        if n_new:
            log.info(
                "%s: decoded %d of %d files into the cache %s", root, n_new, len(entries), cache
            )
        check_consistent(root, entries)
        channels = choose_channels(root, entries, channels)
        seq, index = build_sequences(root, entries, selection, channels, options, skipped)
        return cls(root, cache, entries, seq, index, channels, selection, options, skipped)

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
            raise IndexError(
                f"subset: seq_index {missing[:5].tolist()} not in this dataset ({self.root})"
            )
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
            raise KeyError(
                f"{self.root}: no label {name!r} in the files' metadata (labels: {labels})"
            )
        if not self.index.schema[name].is_numeric():
            raise DatasetError(
                f"{self.root}: label {name!r} is not numeric ({self.index.schema[name]})"
            )
        view = self._view(label=name)
        view._seq = {
            **self._seq,
            "label": self.index[name].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        }
        return view

    # ---- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._seq["seq_index"])

    def windows(self, i: int, normalised: bool = True) -> np.ndarray:
        """Sequence at position `i` as (l, t) float32: a read-only view into the cache when
        `normalised` is False, else a new normalised array."""
        (p,) = self._positions([i])
        s = self._seq
        view = self._entries[s["entry"][p]].array()[
            s["chan"][p], s["row_start"][p] : s["row_end"][p]
        ]
        if not normalised:
            return view
        out = np.empty(view.shape, np.float32)
        self._normalise_into(view, s["center"][p], s["inv_scale"][p], out)
        return out

    def __getitem__(self, i: int) -> dict:
        sample = self.__getitems__([i])[0]
        del sample["_padded"]
        return sample

    def __getitems__(self, positions: Sequence[int]) -> list[dict]:
        """Batched fetch (DataLoader calls it instead of `__getitem__` per sample).

        Same samples as `[self[i] for i in positions]`, but normalised straight into one
        zero-padded (b, l, t) buffer (`_padded`) that `collate` adopts without copying:
        one pass over the bytes instead of three.
        """
        pos = self._positions(positions)
        s = self._seq
        entry, chan, start, end = (
            s[k][pos].tolist() for k in ("entry", "chan", "row_start", "row_end")
        )
        center, inv = s["center"][pos], s["inv_scale"][pos]
        lengths = [b - a for a, b in zip(start, end)]
        b, l = len(pos), max(lengths)
        buf = _batch_buffer((b, l, self.window_samples))  # (b, l, t)
        arr = buf.numpy()
        for k, n in enumerate(lengths):
            view = self._entries[entry[k]].array()[
                chan[k], start[k] : end[k]
            ]  # (n, t) in the cache
            self._normalise_into(view, center[k], inv[k], arr[k, :n])
            if n < l:
                arr[k, n:] = 0.0
        rows = buf.unbind(0)  # b x (l, t) views: one call instead of b indexing ops
        coords = torch.from_numpy(s["coords"][pos]).unbind(0)  # b x (3,), a gathered copy
        seq_index = s["seq_index"][pos].tolist()
        if self.label is None:
            labels = [None] * b
        else:
            labels = [None if np.isnan(v) else v for v in s["label"][pos].tolist()]
        return [
            {
                "x": rows[k] if lengths[k] == l else rows[k][: lengths[k]],  # (n, t)
                "coords": coords[k],  # (3,)
                "seq_index": seq_index[k],
                "label": labels[k],
                "_padded": buf,
            }
            for k in range(b)
        ]

    def _positions(self, positions: Sequence[int]) -> np.ndarray:
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        n = len(self)
        if pos.size == 0:
            raise IndexError("no sequence positions given")
        if pos.min() < -n or pos.max() >= n:
            raise IndexError(
                f"sequence position out of range for {n} sequences: {pos.tolist()[:5]}"
            )
        return pos % n

    def _normalise_into(
        self, view: np.ndarray, center: np.float32, inv_scale: np.float32, out: np.ndarray
    ) -> None:
        if self.options.normalisation == "none":
            np.copyto(out, view)
            return
        np.subtract(view, center, out=out)  # (n, t)
        out *= inv_scale

    def participants(self) -> list[str]:
        return sorted(self.index["participant"].unique().to_list())

    def fingerprint(self) -> str:
        """Hex digest of the files' contents, selection, channels, normalisation, max_windows
        and the exact sequences; equal across re-opens of unchanged data (not the label)."""
        used = sorted(
            {
                (self._entries[e].file, self._entries[e].content_hash)
                for e in set(self._seq["entry"].tolist())
            }
        )
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
    lengths = torch.tensor([len(s["x"]) for s in samples], dtype=torch.int64)  # (b,)
    t = samples[0]["x"].shape[1]
    if any(s["x"].shape[1] != t for s in samples):
        raise ValueError(
            f"collate: windows of different lengths {sorted({s['x'].shape[1] for s in samples})}"
        )
    b, l = len(samples), int(lengths.max())
    padded = samples[0].get("_padded")
    if _adoptable(padded, samples, b, l):
        x = padded  # filled and zero-padded by EEGDataset.__getitems__, rows in sample order
    else:
        x = _batch_buffer((b, l, t))  # (b, l, t)
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


def _batch_buffer(shape: tuple[int, int, int]) -> torch.Tensor:
    """Uninitialised float32 batch; in a DataLoader worker, allocated in shared memory so that
    sending it to the main process costs no copy (what torch's default_collate does)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    proto = torch.empty(0, dtype=torch.float32)
    storage = proto._typed_storage()._new_shared(math.prod(shape), device=proto.device)
    return proto.new(storage).view(shape)


def _adoptable(padded: torch.Tensor | None, samples: list[dict], b: int, l: int) -> bool:
    """True when sample k's x is row k of one (b, l, t) buffer from __getitems__."""
    if padded is None or tuple(padded.shape[:2]) != (b, l):
        return False
    base, row_bytes = padded.data_ptr(), padded.stride(0) * padded.element_size()
    return all(
        s.get("_padded") is padded and s["x"].data_ptr() == base + k * row_bytes
        for k, s in enumerate(samples)
    )
