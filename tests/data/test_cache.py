"""The decode-once cache: contents, reuse without re-decoding, invalidation, fallback dir."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest

from eegwb.data.cache import CacheEntry, cached_recording, resolve_cache_dir
from eegwb.data.dataset import EEGDataset
from eegwb.data.layout import write_recording


def cache_files(root):
    return sorted(p for p in (root / ".cache" / "eegwb-dataset").iterdir())


def test_cache_holds_file_samples_and_stats(tmp_path, write_cohort):
    root = write_cohort(tmp_path / "d", participants=("01",), runs=("1",))
    entry = cached_recording(root / "sub-01_run-1.parquet", resolve_cache_dir(root, None))
    assert entry.decoded and entry.channels == ["FZ", "CZ", "PZ", "OZ"]
    table = pq.read_table(root / "sub-01_run-1.parquet")
    for c, ch in enumerate(entry.channels):
        raw = np.asarray(table.column(ch).to_pylist(), np.float32)
        assert np.array_equal(entry.array()[c], raw)
        q25, med, q75 = np.percentile(raw.astype(np.float64), [25, 50, 75])
        assert entry.stats["median"][c] == pytest.approx(med)
        assert entry.stats["iqr"][c] == pytest.approx(q75 - q25)
        assert entry.stats["std"][c] == pytest.approx(raw.std(dtype=np.float64))
    assert not entry.array().flags.writeable
    assert entry.window_start.tolist() == table.column("window_start").to_pylist()
    assert not [p for p in cache_files(root) if p.name.endswith(".tmp")]


def test_second_open_reuses_cache(tmp_path, write_cohort):
    root = write_cohort(tmp_path / "d", participants=("01", "02"), runs=("1",))
    first = EEGDataset.open(root)
    stamps = {p.name: p.stat().st_mtime_ns for p in cache_files(root)}
    assert len(stamps) == 2 * 3  # .npy, .npz, .json per file
    second = EEGDataset.open(root)
    assert not any(e.decoded for e in second._entries)
    assert {p.name: p.stat().st_mtime_ns for p in cache_files(root)} == stamps
    assert np.array_equal(first[5]["x"].numpy(), second[5]["x"].numpy())


def test_changed_file_is_decoded_again(tmp_path, write_cohort, recording_table):
    root = write_cohort(tmp_path / "d", participants=("01", "02"), runs=("1",), n_windows=4)
    before = EEGDataset.open(root, normalisation="none")
    old_fp = before.fingerprint()
    kept = {p.name: p.stat().st_mtime_ns for p in cache_files(root) if p.name.startswith("sub-01")}
    new = {
        ch: np.full((4, 32), 7.0, np.float32) + np.arange(32, dtype=np.float32)
        for ch in before.channels
    }
    write_recording(root, recording_table("02", "1", new), overwrite=True)
    after = EEGDataset.open(root, normalisation="none")
    assert [e.decoded for e in after._entries] == [False, True]
    row = after.index.filter(after.index["file"] == "sub-02_run-1.parquet").row(0, named=True)
    assert np.array_equal(after.windows(row["seq_index"], normalised=False), new[row["channel"]])
    names = [p.name for p in cache_files(root)]
    assert sum(n.startswith("sub-02") for n in names) == 3  # stale entry removed
    assert {
        n: t for n, t in ((p.name, p.stat().st_mtime_ns) for p in cache_files(root)) if n in kept
    } == kept
    assert after.fingerprint() != old_fp


def test_datasets_sharing_a_cache_dir_keep_their_entries(tmp_path, write_cohort):
    a = write_cohort(tmp_path / "a", participants=("01",), runs=("1",), seed=1)
    b = write_cohort(tmp_path / "b", participants=("01",), runs=("1",), seed=2)  # same file name
    shared = tmp_path / "shared_cache"
    first_a, _ = (EEGDataset.open(r, cache_dir=shared) for r in (a, b))
    again_a, again_b = (EEGDataset.open(r, cache_dir=shared) for r in (a, b))
    assert not again_a._entries[0].decoded and not again_b._entries[0].decoded
    assert not np.array_equal(again_a.windows(0, False), again_b.windows(0, False))
    assert np.array_equal(again_a.windows(0, False), first_a.windows(0, False))


def test_broken_cache_entry_is_rebuilt(tmp_path, write_cohort, caplog):
    root = write_cohort(tmp_path / "d", participants=("01",), runs=("1",))
    EEGDataset.open(root)
    (npz,) = [p for p in cache_files(root) if p.suffix == ".npz"]
    npz.write_bytes(b"not an npz")
    with caplog.at_level(logging.WARNING, logger="eegwb.data.cache"):
        ds = EEGDataset.open(root)
    assert ds._entries[0].decoded and "unreadable cache entry" in caplog.text
    assert len(ds) == 4


def test_unwritable_cache_dir_falls_back_to_temp(tmp_path, write_cohort, caplog):
    root = write_cohort(tmp_path / "d", participants=("01",), runs=("1",))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="eegwb.data.cache"):
        ds = EEGDataset.open(root, cache_dir=blocker / "cache")
    assert "not writable" in caplog.text
    assert not str(ds._entries[0].data_path).startswith(str(blocker))
    assert ds._entries[0].data_path.exists() and len(ds) == 4


def test_pickled_entry_maps_again(tmp_path, write_cohort):
    root = write_cohort(tmp_path / "d", participants=("01",), runs=("1",), n_windows=50)
    entry = cached_recording(root / "sub-01_run-1.parquet", resolve_cache_dir(root, None))
    data = entry.array()
    blob = pickle.dumps(entry)
    assert len(blob) < data.nbytes
    clone: CacheEntry = pickle.loads(blob)
    assert np.array_equal(clone.array(), data)
