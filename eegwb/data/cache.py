"""Decode-once cache: each recording file as one memory-mapped float32 array.

Reading compressed Parquet per sample is slow (decompress, then copy list cells). So the
first open of a dataset decodes every file once into `<stem>.<key>.npy`, shaped
(n_channels, n_windows, window_samples) so that one sequence (a channel's run of
windows) is one contiguous block; later opens map it and slice at memory speed.

Beside each array: `<stem>.<key>.npz` (per-channel normalisation statistics, which
windows hold NaN/Inf, window_start) and `<stem>.<key>.json` (the file's metadata and
content hash). The JSON is written last, so its presence marks a complete entry. Every
file is written atomically (temp + rename).

`key` hashes the source file's size, mtime and inode plus the cache and layout versions:
any rewrite of the Parquet file (eegwb writes by rename, so even a same-size rewrite gets
a new inode) gives a new key and a fresh decode; the stale entry is then removed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import xxhash

from eegwb.atomic import atomic_path
from eegwb.data.layout import (
    ID_COLUMNS,
    LAYOUT_VERSION,
    DatasetError,
    channel_array,
    channel_columns,
    read_meta,
)
from eegwb.data.normalise import STAT_NAMES, channel_stats

log = logging.getLogger(__name__)

CACHE_FORMAT = "1"
DEFAULT_SUBDIR = Path(".cache") / "eegwb-dataset"
_HASH_CHUNK_BYTES = 8 << 20
_CACHE_MODE = 0o644  # mkstemp makes 0600; others sharing the dataset may read the cache


@dataclass
class CacheEntry:
    """One decoded recording: metadata, statistics and a lazily mapped sample array."""

    file: str  # recording file name (sub-P_run-R.parquet)
    data_path: Path  # the .npy array (n_channels, n_windows, window_samples) float32
    channels: list[str]  # order of the array's first axis
    participant: str
    run: str
    n_windows: int
    window_samples: int
    sfreq: float
    hop_samples: int
    montage: str
    positions: dict[str, list[float]]
    labels: dict[str, object]
    content_hash: str  # xxh3_128 of the Parquet file's bytes
    source_hash: str  # of the original recording (layout metadata)
    stats: dict[str, np.ndarray]  # STAT_NAMES -> (n_channels,) float64
    bad_rows: np.ndarray  # (n_channels, n_windows) bool: window holds NaN/Inf
    window_start: np.ndarray  # (n_windows,) int64
    decoded: bool = False  # True when this open decoded it (not reused)
    _array: np.ndarray | None = field(default=None, repr=False, compare=False)

    def array(self) -> np.ndarray:
        """(n_channels, n_windows, window_samples) float32, read-only, memory-mapped."""
        if self._array is None:
            mm = np.load(self.data_path, mmap_mode="r", allow_pickle=False)
            self._array = mm.view(np.ndarray)  # plain ndarray views slice faster than np.memmap
        return self._array

    def channel_index(self, channel: str) -> int:
        return self.channels.index(channel)

    def __getstate__(self) -> dict:
        # A pickled mapping would copy the whole array into the pickle (DataLoader workers
        # under spawn); send the path instead and map again on the other side.
        state = dict(self.__dict__)
        state["_array"] = None
        return state


def resolve_cache_dir(root: Path, cache_dir: str | Path | None) -> Path:
    """Where `root`'s cache lives: `root/.cache/eegwb-dataset`, or a folder per dataset under
    `cache_dir` (datasets share file names); a temp dir, with a log line, if unwritable."""
    resolved = Path(root).resolve()
    tag = f"{resolved.name}-{xxhash.xxh3_64_hexdigest(str(resolved).encode())[:12]}"
    target = Path(root) / DEFAULT_SUBDIR if cache_dir is None else Path(cache_dir) / tag
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):
            pass
        return target
    except OSError as err:
        fallback = Path(tempfile.gettempdir()) / "eegwb-cache" / tag
        log.warning(
            "cache dir %s is not writable (%s); caching in %s instead", target, err, fallback
        )
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def file_key(path: Path) -> str:
    st = path.stat()
    parts = f"{CACHE_FORMAT}|{LAYOUT_VERSION}|{path.name}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    return xxhash.xxh3_64_hexdigest(parts.encode())


def content_hash(path: Path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def cached_recording(path: str | Path, cache_dir: Path) -> CacheEntry:
    """The cache entry of one recording file, decoding it first if it is missing or stale.

    Raises DatasetError (naming the file) for anything wrong with the file itself.
    """
    path = Path(path)
    key = file_key(path)
    base = cache_dir / f"{path.stem}.{key}"
    entry = _load(path, base)
    if entry is None:
        entry = _decode(path, base)
        _remove_stale(cache_dir, path.stem, key)
    return entry


def _load(path: Path, base: Path) -> CacheEntry | None:
    sidecar = base.with_name(base.name + ".json")
    if not sidecar.exists():
        return None
    try:
        info = json.loads(sidecar.read_text())
        if info.get("format") != CACHE_FORMAT:
            return None
        with np.load(base.with_name(base.name + ".npz"), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        data_path = base.with_name(base.name + ".npy")
        if not data_path.exists():
            return None
    except (OSError, ValueError, KeyError) as err:
        log.warning("%s: unreadable cache entry (%s); decoding again", path, err)
        return None
    return _entry(info, arrays, data_path, decoded=False)


def _entry(info: dict, arrays: dict[str, np.ndarray], data_path: Path, decoded: bool) -> CacheEntry:
    return CacheEntry(
        file=info["file"],
        data_path=data_path,
        channels=list(info["channels"]),
        participant=info["participant"],
        run=info["run"],
        n_windows=int(info["n_windows"]),
        window_samples=int(info["window_samples"]),
        sfreq=float(info["sfreq"]),
        hop_samples=int(info["hop_samples"]),
        montage=info["montage"],
        positions=info["positions"],
        labels=info["labels"],
        content_hash=info["content_hash"],
        source_hash=info["source_hash"],
        stats={name: arrays[name] for name in STAT_NAMES},
        bad_rows=arrays["bad_rows"],
        window_start=arrays["window_start"],
        decoded=decoded,
    )


def _ids_from_name(path: Path) -> tuple[str, str]:
    stem = path.name.removesuffix(".parquet")
    participant, run = stem.removeprefix("sub-").split("_run-", 1)
    return participant, run


def _read(pf: pq.ParquetFile, columns: list[str], path: Path):
    try:
        return pf.read(columns=columns)
    except Exception as err:  # pyarrow raises several types for corrupt/truncated data pages
        raise DatasetError(f"{path}: cannot read Parquet ({err})") from err


def _check_ids(ids, path: Path, window_samples: int) -> np.ndarray:
    """Participant/run cells match the file name; window_end - window_start == window_samples."""
    want = dict(zip(("participant", "run"), _ids_from_name(path)))
    for name, expected in want.items():
        values = set(ids.column(name).to_pylist())
        if values != {expected}:
            raise DatasetError(
                f"{path}: column {name!r} holds {sorted(map(str, values))[:5]}, but the file "
                f"name says {expected!r} (copied or renamed file? each participant-run must "
                "appear once)"
            )
    start = ids.column("window_start").to_numpy().astype(np.int64)
    end = ids.column("window_end").to_numpy().astype(np.int64)
    wrong = np.flatnonzero(end - start != window_samples)
    if wrong.size:
        r = int(wrong[0])
        raise DatasetError(
            f"{path}: window row {r} spans {end[r] - start[r]} samples "
            f"(window_end - window_start), expected {window_samples}"
        )
    return start


def _decode(path: Path, base: Path) -> CacheEntry:
    meta, schema, n_rows = read_meta(path)  # corrupt footer, schema, window length
    if n_rows == 0:
        raise DatasetError(f"{path}: no windows (0 rows)")
    channels = channel_columns(schema)
    t = meta.window_samples
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:
        raise DatasetError(f"{path}: cannot read Parquet ({err})") from err
    window_start = _check_ids(_read(pf, list(ID_COLUMNS), path), path, t)
    stats = {name: np.empty(len(channels), np.float64) for name in STAT_NAMES}
    bad_rows = np.zeros((len(channels), n_rows), bool)
    data_path = base.with_name(base.name + ".npy")
    with atomic_path(data_path) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(len(channels), n_rows, t)
        )
        for c, ch in enumerate(channels):
            table = _read(pf, [ch], path)
            nulls = table.column(ch).is_null().to_numpy(zero_copy_only=False)
            if nulls.any():
                raise DatasetError(
                    f"{path}: channel {ch!r} has {int(nulls.sum())} missing (null) windows, "
                    f"first at window row {int(np.argmax(nulls))}"
                )
            values = channel_array(table, ch)  # (n_windows, t)
            out[c] = values
            channel, bad_rows[c] = channel_stats(values)
            for name in STAT_NAMES:
                stats[name][c] = channel[name]
        out.flush()
        del out
        os.chmod(tmp, _CACHE_MODE)
    info = {
        "format": CACHE_FORMAT,
        "file": path.name,
        "channels": channels,
        "participant": _ids_from_name(path)[0],
        "run": _ids_from_name(path)[1],
        "n_windows": n_rows,
        "window_samples": t,
        "sfreq": meta.sfreq,
        "hop_samples": meta.hop_samples,
        "montage": meta.montage,
        "positions": meta.channel_positions,
        "labels": meta.labels,
        "content_hash": content_hash(path),
        "source_hash": meta.source_hash,
    }
    arrays = {**stats, "bad_rows": bad_rows, "window_start": window_start}
    with atomic_path(base.with_name(base.name + ".npz")) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, _CACHE_MODE)
    with atomic_path(base.with_name(base.name + ".json")) as tmp:
        tmp.write_text(json.dumps(info))
        os.chmod(tmp, _CACHE_MODE)
    return _entry(info, arrays, data_path, decoded=True)


def _remove_stale(cache_dir: Path, stem: str, key: str) -> None:
    for old in cache_dir.glob(f"{stem}.*"):
        if old.name.split(".")[1] != key:
            old.unlink(missing_ok=True)
    for tmp in cache_dir.glob(f".{stem}.*.tmp"):
        # Left by a crashed decode (atomic_path cleans up on exceptions, not on kill -9).
        if _older_than(tmp, seconds=3600):
            tmp.unlink(missing_ok=True)


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False
