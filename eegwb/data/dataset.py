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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
import xxhash
from tqdm.auto import tqdm

from eegwb.data.batch import Batch
from eegwb.data.cache import CacheEntry, cached_recording, resolve_cache_dir
from eegwb.data.dataset_record import check_dataset
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
        check_dataset(root).warn()  # an unfinished ingest, stray files: said, not refused
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
            self.root,
            self._cache_dir,
            self._entries,
            seq,
            index,
            self.channels,
            self._selection,
            self.options,
            self.skipped,
            self.label if label is None else label,
        )

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
            self.root,
            selection=selection,
            channels=self.channels,
            normalisation=self.options.normalisation,
            max_windows=self.options.max_windows,
            cache_dir=self._cache_dir,
            on_bad=self.options.on_bad,
        )
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
        (p,) = self._positions([i])
        return {
            "x": torch.from_numpy(self.windows(p)),  # (l, t)
            "coords": torch.from_numpy(self._seq["coords"][p].copy()),  # (3,)
            "seq_index": int(self._seq["seq_index"][p]),
            "label": self._labels([p])[0],
        }

    def __getitems__(self, positions: Sequence[int]) -> list[dict]:
        """Batched fetch (DataLoader calls it instead of `__getitem__` per sample).

        Same samples as `[self[i] for i in positions]`, but normalised straight into one
        zero-padded (b, l, t) buffer, with the whole Batch built alongside (`_prepared`);
        `collate` returns that Batch when the samples are still these, unchanged. One pass
        over the bytes instead of three, and no per-sample Python work in collate.
        """
        pos = self._positions(positions)
        s, arrays = self._seq, self._arrays()
        entry, chan, start, end = (
            s[k][pos].tolist() for k in ("entry", "chan", "row_start", "row_end")
        )
        lengths = s["row_end"][pos] - s["row_start"][pos]  # (b,)
        n_of = lengths.tolist()
        b, l = len(pos), max(n_of)
        buf = _batch_buffer((b, l, self.window_samples))  # (b, l, t)
        arr = buf.numpy()
        center, inv = s["center"][pos], s["inv_scale"][pos]
        for k, n in enumerate(n_of):
            view = arrays[entry[k]][chan[k], start[k] : end[k]]  # (n, t) in the cache
            self._normalise_into(view, center[k], inv[k], arr[k, :n])
            if n < l:
                arr[k, n:] = 0.0
        labels = self._labels(pos)
        lengths_t = torch.from_numpy(lengths)
        batch = Batch(
            x=buf,
            coords=torch.from_numpy(s["coords"][pos]),  # (b, 3), a gathered copy
            pad_mask=torch.arange(l)[None, :] >= lengths_t[:, None],  # (b, l)
            lengths=lengths_t,
            seq_index=torch.from_numpy(s["seq_index"][pos]),
            label=_label_tensor(labels, s["seq_index"][pos].tolist(), strict=False),
        )
        xs = [row if n == l else row[:n] for row, n in zip(buf.unbind(0), n_of)]  # b x (n, t)
        prepared = _Prepared(batch, xs, batch.coords.unbind(0), batch.seq_index.tolist(), labels)
        return [
            {"x": x, "coords": c, "seq_index": q, "label": y, "_prepared": prepared}
            for x, c, q, y in zip(prepared.xs, prepared.coords, prepared.seq_index, labels)
        ]

    def _labels(self, pos: np.ndarray | list[int]) -> list[float | None]:
        if self.label is None:
            return [None] * len(pos)
        return [None if np.isnan(v) else v for v in self._seq["label"][pos].tolist()]

    def _arrays(self) -> list[np.ndarray]:
        """Every entry's mapped array (n_channels, n_windows, t), mapped on first use."""
        if getattr(self, "_mapped", None) is None:
            self._mapped = [e.array() for e in self._entries]
        return self._mapped

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_mapped": None}  # entries map again on the other side

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
        np.multiply(out, inv_scale, out=out)

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
    Samples straight from `EEGDataset.__getitems__` come with their Batch already built.
    """
    if not samples:
        raise ValueError("collate: no samples")
    prepared = samples[0].get("_prepared")
    if prepared is not None and prepared.matches(samples):
        return prepared.batch
    t = samples[0]["x"].shape[1]
    if any(s["x"].shape[1] != t for s in samples):
        widths = sorted({s["x"].shape[1] for s in samples})
        raise ValueError(f"collate: windows of different lengths {widths}")
    lengths = torch.tensor([len(s["x"]) for s in samples], dtype=torch.int64)  # (b,)
    b, l = len(samples), int(lengths.max())
    x = _batch_buffer((b, l, t))  # (b, l, t)
    for k, s in enumerate(samples):
        n = s["x"].shape[0]
        x[k, :n] = s["x"]
        x[k, n:] = 0.0
    seq_index = [s["seq_index"] for s in samples]
    return Batch(
        x=x,
        coords=torch.stack([s["coords"] for s in samples]).to(torch.float32),  # (b, 3)
        pad_mask=torch.arange(l)[None, :] >= lengths[:, None],  # (b, l)
        lengths=lengths,
        seq_index=torch.tensor(seq_index, dtype=torch.int64),
        label=_label_tensor([s.get("label") for s in samples], seq_index, strict=True),
    )


@dataclass
class _Prepared:
    """A Batch built by __getitems__ and the sample values it was built from."""

    batch: Batch
    xs: list[torch.Tensor]
    coords: tuple[torch.Tensor, ...]
    seq_index: list[int]
    labels: list[float | None]

    def matches(self, samples: list[dict]) -> bool:
        """True when `samples` are exactly the samples handed out, in order, not replaced
        (in-place edits of x or coords land in the batch too: they are views of it)."""
        mixed = self.batch.label is None and any(y is not None for y in self.labels)
        if mixed or len(samples) != len(self.xs):
            return False  # collate's own path raises for mixed labels
        return all(
            s["x"] is x and s["coords"] is c and s["seq_index"] == q and s.get("label") == y
            for s, x, c, q, y in zip(samples, self.xs, self.coords, self.seq_index, self.labels)
        )


def _label_tensor(labels: list, seq_index: list[int], strict: bool) -> torch.Tensor | None:
    """(b,) float32 labels, None when no sample has one; a mix raises (strict) or gives None."""
    if all(v is None for v in labels):
        return None
    if any(v is None for v in labels):
        if not strict:
            return None
        missing = [q for q, v in zip(seq_index, labels) if v is None]
        raise ValueError(f"collate: sequences {missing[:5]} have no label but others do")
    return torch.tensor(labels, dtype=torch.float32)


def _batch_buffer(shape: tuple[int, int, int]) -> torch.Tensor:
    """Uninitialised float32 batch; in a DataLoader worker, allocated in shared memory so that
    sending it to the main process costs no copy (what torch's default_collate does)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    proto = torch.empty(0, dtype=torch.float32)
    storage = proto._typed_storage()._new_shared(math.prod(shape), device=proto.device)
    return proto.new(storage).view(shape)
