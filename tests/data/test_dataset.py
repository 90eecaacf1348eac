"""EEGDataset and collate: padding, normalisation against numpy, selection, chunking,
channel subsets, fingerprints, DataLoader workers, and every bad input naming its file."""

from __future__ import annotations

import logging
import pickle
import shutil

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from eegwb.data.dataset import EEGDataset, collate
from eegwb.data.layout import DatasetError, write_recording
from eegwb.data.normalise import IQR_TO_SIGMA


def file_channel(path, channel) -> np.ndarray:
    """(n_windows, t) samples straight from Parquet, independent of eegwb's reader."""
    cells = pq.read_table(path, columns=[channel]).column(channel).to_pylist()
    return np.asarray(cells, dtype=np.float32)


def sel(rows) -> pl.DataFrame:
    return pl.DataFrame(
        [(f"sub-{p}_run-{r}.parquet", p, r, a, b) for p, r, a, b in rows],
        schema=["file", "participant", "run", "row_start", "row_end"],
        orient="row",
    )


# ---- collate --------------------------------------------------------------------------------
def test_collate_pads_with_zeros_and_keeps_order(tiny_dataset):
    ds = EEGDataset.open(tiny_dataset)
    lengths = ds.index["n_windows"].to_numpy()
    picks = [int(np.argmax(lengths)), int(np.argmin(lengths)), 5, 2]
    samples = [ds[i] for i in picks]
    batch = collate(samples)
    b, l, t = batch.x.shape
    assert (b, l, t) == (4, lengths.max(), ds.window_samples)
    assert batch.lengths.tolist() == [lengths[i] for i in picks]
    assert batch.seq_index.tolist() == [ds.index["seq_index"][i] for i in picks]
    for k, s in enumerate(samples):
        n = s["x"].shape[0]
        assert torch.equal(batch.x[k, :n], s["x"])
        assert torch.count_nonzero(batch.x[k, n:]) == 0
        assert batch.pad_mask[k].tolist() == [j >= n for j in range(l)]
        assert torch.equal(batch.coords[k], s["coords"])
    assert batch.label is None


def test_batched_fetch_matches_per_sample(tiny_dataset):
    ds = EEGDataset.open(tiny_dataset, max_windows=5).with_label("age")
    picks = [3, 0, len(ds) - 1, 10]
    fused = collate(ds.__getitems__(picks))
    plain = collate([ds[i] for i in picks])
    for name in ("x", "coords", "pad_mask", "lengths", "seq_index", "label"):
        assert torch.equal(getattr(fused, name), getattr(plain, name)), name
    samples = ds.__getitems__(picks)
    assert collate(samples).x.data_ptr() == samples[0]["x"].data_ptr()  # built once, no copy
    reordered = collate(samples[::-1])  # not as handed out: collated again, still right
    assert torch.equal(reordered.x, collate([ds[i] for i in picks[::-1]]).x)
    assert torch.equal(collate(samples[1:]).x, collate([ds[i] for i in picks[1:]]).x)
    samples[2] = {**samples[2], "label": 99.0}  # a replaced value is honoured
    assert collate(samples).label.tolist() == [*plain.label[:2].tolist(), 99.0, plain.label[3]]
    samples[1]["label"] = None
    with pytest.raises(ValueError, match="no label"):
        collate(samples)


def test_collate_refuses_partly_labelled_batches(tmp_path, write_cohort):
    root = write_cohort(
        tmp_path / "d",
        participants=("01", "02"),
        runs=("1",),
        labels=lambda p, r: {"score": 2.0} if p == 0 else {},
    )
    ds = EEGDataset.open(root).with_label("score")
    assert ds[0]["label"] == 2.0 and ds[len(ds) - 1]["label"] is None
    with pytest.raises(ValueError, match="no label but others do"):
        collate(ds.__getitems__(list(range(len(ds)))))


def test_collate_labels(tiny_dataset):
    ds = EEGDataset.open(tiny_dataset).with_label("remission")
    batch = collate([ds[i] for i in range(6)])
    expected = ds.index["remission"][:6].to_numpy().astype(np.float32)
    assert batch.label.dtype == torch.float32
    assert np.array_equal(batch.label.numpy(), expected)
    mixed = [ds[0], {**ds[1], "label": None}]
    with pytest.raises(ValueError, match="no label"):
        collate(mixed)
    with pytest.raises(ValueError, match="no samples"):
        collate([])


# ---- content and normalisation ------------------------------------------------------------------
@pytest.mark.parametrize("normalisation", ["robust_z", "zscore", "none"])
def test_sequence_equals_file_after_normalisation(tiny_dataset, normalisation):
    ds = EEGDataset.open(tiny_dataset, normalisation=normalisation)
    for i in (0, 7, len(ds) - 1):
        row = ds.index.row(i, named=True)
        raw = file_channel(tiny_dataset / row["file"], row["channel"]).astype(np.float64)
        if normalisation == "robust_z":
            q25, med, q75 = np.percentile(raw, [25, 50, 75])
            expected = (raw - med) / ((q75 - q25) / IQR_TO_SIGMA)
        elif normalisation == "zscore":
            expected = (raw - raw.mean()) / raw.std()
        else:
            expected = raw
        got = ds[i]["x"]
        assert got.dtype == torch.float32 and got.shape == (row["n_windows"], ds.window_samples)
        np.testing.assert_allclose(
            got.numpy(), expected[row["row_start"] : row["row_end"]], rtol=1e-5, atol=1e-5
        )
        assert np.array_equal(
            ds.windows(i, normalised=False), raw[row["row_start"] : row["row_end"]]
        )


def test_index_columns_coords_and_labels(tiny_dataset):
    ds = EEGDataset.open(tiny_dataset)
    assert ds.sfreq == 64.0 and ds.window_samples == 32
    assert ds.channels == ["FZ", "CZ", "PZ", "OZ"]
    assert len(ds) == 6 * 4 and ds.participants() == ["01", "02", "03"]
    for col in (
        "seq_index",
        "file",
        "participant",
        "run",
        "channel",
        "row_start",
        "n_windows",
        "x",
        "y",
        "z",
        "window_start_first",
        "window_start_last",
        "remission",
        "age",
    ):
        assert col in ds.index.columns
    meta = pq.read_schema(tiny_dataset / "sub-02_run-1.parquet").metadata
    positions = __import__("json").loads(meta[b"eegwb.channel_positions"])
    row = ds.index.filter(pl.col("file") == "sub-02_run-1.parquet", pl.col("channel") == "OZ").row(
        0, named=True
    )
    assert [row["x"], row["y"], row["z"]] == pytest.approx(positions["OZ"])
    assert ds[row["seq_index"]]["coords"].tolist() == pytest.approx(positions["OZ"])
    assert row["remission"] == 1.0 and row["age"] == 31.0  # participant index 1
    assert row["window_start_last"] == (row["n_windows"] - 1) * 32


# ---- selection, chunking, channels ------------------------------------------------------------
def test_selection_and_max_windows_chunking(tiny_dataset):
    selection = sel([("01", "2", 0, 2), ("01", "2", 3, 5), ("03", "1", 1, 8)])
    ds = EEGDataset.open(tiny_dataset, selection=selection, max_windows=3, channels=["CZ"])
    got = ds.index.select("file", "row_start", "row_end").rows()
    assert got == [
        ("sub-01_run-2.parquet", 0, 2),
        ("sub-01_run-2.parquet", 3, 5),
        ("sub-03_run-1.parquet", 1, 4),
        ("sub-03_run-1.parquet", 4, 7),
        ("sub-03_run-1.parquet", 7, 8),
    ]
    raw = file_channel(tiny_dataset / "sub-03_run-1.parquet", "CZ")
    joined = np.concatenate([ds.windows(i, normalised=False) for i in (2, 3, 4)])
    assert np.array_equal(joined, raw[1:8])  # every window once, in order
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_windows"):
            EEGDataset.open(tiny_dataset, max_windows=bad)


def test_channel_subset_and_common_channels(tmp_path, write_cohort, caplog):
    root = write_cohort(tmp_path / "a", participants=("01",), channels=("FZ", "CZ", "PZ"))
    write_cohort(tmp_path / "a", participants=("02",), channels=("CZ", "PZ", "OZ"), seed=1)
    with caplog.at_level(logging.WARNING, logger="eegwb.data"):
        ds = EEGDataset.open(root)
    assert ds.channels == ["CZ", "PZ"]
    assert "leaving out ['FZ', 'OZ']" in caplog.text
    assert "sub-01_run-1.parquet lacks ['OZ']" in caplog.text
    assert "sub-02_run-1.parquet lacks ['FZ']" in caplog.text
    sub = EEGDataset.open(root, channels=["pz"])
    assert sub.channels == ["PZ"] and set(sub.index["channel"]) == {"PZ"} and len(sub) == 4
    with pytest.raises(DatasetError, match=r"sub-02_run-1\.parquet: no channel \['FZ'\]"):
        EEGDataset.open(root, channels=["FZ", "CZ"])


def test_subset_select_with_label(tiny_dataset):
    ds = EEGDataset.open(tiny_dataset)
    sub = ds.subset([9, 2, 17])
    assert sub.index["seq_index"].to_list() == [9, 2, 17] and len(sub) == 3
    assert torch.equal(sub[1]["x"], ds[2]["x"]) and sub[0]["seq_index"] == 9
    assert np.shares_memory(sub.windows(0, normalised=False), ds.windows(9, normalised=False))
    with pytest.raises(IndexError, match="not in this dataset"):
        ds.subset([999])
    picked = ds.select(sel([("02", "1", 1, 3)]))
    assert picked.channels == ds.channels and picked.index["n_windows"].to_list() == [2] * 4
    labelled = ds.with_label("age")
    assert [labelled[i]["label"] for i in (0, len(ds) - 1)] == [30.0, 32.0]
    assert labelled.subset([4])[0]["label"] == ds.index["age"][4]
    with pytest.raises(KeyError, match="no label 'nope'"):
        ds.with_label("nope")


def test_fingerprint(tiny_dataset):
    base = EEGDataset.open(tiny_dataset).fingerprint()
    assert EEGDataset.open(tiny_dataset).fingerprint() == base
    assert EEGDataset.open(tiny_dataset).with_label("age").fingerprint() == base
    others = {
        EEGDataset.open(tiny_dataset, normalisation="zscore").fingerprint(),
        EEGDataset.open(tiny_dataset, max_windows=2).fingerprint(),
        EEGDataset.open(tiny_dataset, channels=["CZ"]).fingerprint(),
        EEGDataset.open(tiny_dataset, selection=sel([("01", "1", 0, 3)])).fingerprint(),
        EEGDataset.open(tiny_dataset, selection=sel([("01", "1", 0, 2)])).fingerprint(),
        EEGDataset.open(tiny_dataset).subset([0, 1]).fingerprint(),
    }
    assert len(others) == 6 and base not in others


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_workers(tiny_dataset, num_workers):
    ds = EEGDataset.open(tiny_dataset, max_windows=3).with_label("remission")
    loader = torch.utils.data.DataLoader(
        ds, batch_size=5, shuffle=True, collate_fn=collate, num_workers=num_workers
    )
    seen = []
    for batch in loader:
        for k, s in enumerate(batch.seq_index.tolist()):
            n = int(batch.lengths[k])
            assert torch.equal(batch.x[k, :n], ds[s]["x"]) and batch.label[k] == ds[s]["label"]
            seen.append(s)
    assert sorted(seen) == list(range(len(ds)))


def test_pickle_sends_paths_not_samples(tiny_dataset):
    ds = EEGDataset.open(tiny_dataset)
    ds[0]  # map the arrays
    clone = pickle.loads(pickle.dumps(ds))
    cache_bytes = sum(e.data_path.stat().st_size for e in ds._entries)
    assert len(pickle.dumps(ds)) < cache_bytes
    assert torch.equal(clone[3]["x"], ds[3]["x"])


# ---- bad input -----------------------------------------------------------------------------------
def signals(n=6, t=16, channels=("FZ", "CZ"), seed=0):
    rng = np.random.default_rng(seed)
    return {ch: rng.normal(0, 10, (n, t)).astype(np.float32) for ch in channels}


def test_corrupt_parquet_names_file_and_skip_reports(tmp_path, write_cohort):
    root = write_cohort(tmp_path / "d", participants=("01", "02"), runs=("1",))
    bad = root / "sub-02_run-1.parquet"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"sub-02_run-1\.parquet: cannot read Parquet"):
        EEGDataset.open(root)
    ds = EEGDataset.open(root, on_bad="skip")
    assert set(ds.index["file"]) == {"sub-01_run-1.parquet"}
    assert len(ds.skipped) == 1 and "sub-02_run-1.parquet" in ds.skipped[0]


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_samples(tmp_path, recording_table, value):
    sig = signals()
    sig["CZ"][4, 3] = value
    root = tmp_path / "d"
    write_recording(root, recording_table("01", "1", sig))
    with pytest.raises(
        DatasetError, match=r"sub-01_run-1\.parquet: channel 'CZ' .*first in window row 4"
    ):
        EEGDataset.open(root)
    ds = EEGDataset.open(root, on_bad="skip", max_windows=3)
    assert ds.index.select("channel", "row_start").rows() == [("FZ", 0), ("CZ", 0), ("FZ", 3)]
    assert len(ds.skipped) == 1 and "'CZ' rows [3, 6)" in ds.skipped[0]
    assert np.isfinite(ds[1]["x"].numpy()).all()
    clean = EEGDataset.open(root, selection=sel([("01", "1", 0, 4)]))  # bad row not selected
    assert len(clean) == 2 and all(np.isfinite(clean[i]["x"].numpy()).all() for i in range(2))


def test_flat_channel_never_divides_by_zero(tmp_path, recording_table):
    sig = signals()
    sig["FZ"][:] = 3.0
    root = tmp_path / "d"
    write_recording(root, recording_table("01", "1", sig))
    for norm in ("robust_z", "zscore"):
        with pytest.raises(DatasetError, match=r"sub-01_run-1\.parquet: channel 'FZ' .*flat"):
            EEGDataset.open(root, normalisation=norm)
    ds = EEGDataset.open(root, on_bad="skip")
    assert ds.index["channel"].to_list() == ["CZ"] and "flat" in ds.skipped[0]
    raw = EEGDataset.open(root, normalisation="none")  # nothing divided: allowed
    assert np.all(raw[0]["x"].numpy() == 3.0)


def test_wrong_window_length(tmp_path, recording_table):
    root = tmp_path / "d"
    write_recording(root, recording_table("01", "1", signals(t=16)))
    write_recording(root, recording_table("02", "1", signals(t=8)))
    with pytest.raises(DatasetError, match=r"sub-02_run-1\.parquet: window_samples 8 differs"):
        EEGDataset.open(root)
    # metadata says 16 samples, a column holds 8
    table = recording_table("03", "1", signals(t=16))
    short = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(6 * 8, np.float32)), 8)
    table = table.set_column(table.schema.get_field_index("CZ"), "CZ", short)
    root2 = tmp_path / "e"
    root2.mkdir()
    pq.write_table(table, root2 / "sub-03_run-1.parquet")
    with pytest.raises(
        DatasetError, match=r"sub-03_run-1\.parquet: channel 'CZ' has windows of 8 samples"
    ):
        EEGDataset.open(root2)


def test_duplicated_and_missing_channels(tmp_path, recording_table):
    table = recording_table("01", "1", signals())
    dup = pa.Table.from_arrays(
        table.columns + [table.column("CZ")], names=table.column_names + ["CZ"]
    ).replace_schema_metadata(table.schema.metadata)
    root = tmp_path / "d"
    root.mkdir()
    pq.write_table(dup, root / "sub-01_run-1.parquet")
    with pytest.raises(
        DatasetError, match=r"sub-01_run-1\.parquet: duplicated channel columns \['CZ'\]"
    ):
        EEGDataset.open(root)
    root2 = tmp_path / "e"
    write_recording(root2, recording_table("01", "1", signals(channels=("FZ",))))
    write_recording(root2, recording_table("02", "1", signals(channels=("CZ",))))
    with pytest.raises(DatasetError, match="share no channel"):
        EEGDataset.open(root2)


def test_duplicated_participant_run(tmp_path, write_cohort):
    root = write_cohort(tmp_path / "d", participants=("01", "02"), runs=("1",))
    shutil.copy(root / "sub-01_run-1.parquet", root / "sub-03_run-1.parquet")
    with pytest.raises(
        DatasetError, match=r"sub-03_run-1\.parquet: column 'participant' holds \['01'\]"
    ):
        EEGDataset.open(root)


def test_bad_selection(tiny_dataset):
    cases = {
        "not a recording": [("09", "1", 0, 2)],
        "reaches window row 99": [("01", "1", 0, 99)],
        "overlap": [("01", "1", 0, 3), ("01", "1", 2, 4)],
        "empty or negative": [("01", "1", 3, 3)],
    }
    for message, rows in cases.items():
        with pytest.raises(DatasetError, match=message):
            EEGDataset.open(tiny_dataset, selection=sel(rows))
    with pytest.raises(DatasetError, match="missing columns"):
        EEGDataset.open(tiny_dataset, selection=pl.DataFrame({"file": ["sub-01_run-1.parquet"]}))


def test_synthetic_defects_match_manifest(tmp_path):
    """Known answer: the generator's planted NaN/Inf windows are exactly what gets skipped."""
    synthetic = pytest.importorskip("eegwb.data.synthetic")
    cfg = synthetic.SynthConfig(
        n_participants=2,
        runs_per_participant=2,
        montage="muse",
        sfreq=128.0,
        window_samples=64,
        n_windows=6,
        defects=("nan_stretch", "inf_stretch", "flat_channel"),
    )
    manifest = synthetic.generate_cohort(tmp_path / "syn", cfg, progress=False)
    planted = {
        (d["file"], d["channel"], d["rows"][0])
        for d in manifest["defects"]
        if d["kind"] in ("nan_stretch", "inf_stretch")
    }
    with pytest.raises(DatasetError, match="NaN/Inf samples"):
        EEGDataset.open(tmp_path / "syn")
    ds = EEGDataset.open(tmp_path / "syn", on_bad="skip", max_windows=2)
    found = set()
    for message in ds.skipped:
        file = message.split(":")[0].rsplit("/", 1)[-1]
        channel = message.split("channel '")[1].split("'")[0]
        found.add((file, channel, int(message.rsplit("window row ", 1)[1])))
    assert found == planted
    assert len(ds) == 4 * 4 * 3 - len(planted)
    batch = collate(ds.__getitems__(list(range(len(ds)))))
    assert torch.isfinite(batch.x).all()


def test_real_eeg_through_ingest(tmp_path, eegmat_dir):
    """EEGMAT (Zyma et al. 2019, PhysioNet): one subject's task recording, ingested and loaded."""
    ingest = pytest.importorskip("eegwb.data.ingest")
    ingest.ingest(
        [eegmat_dir / "Subject00_2.edf"], tmp_path / "eegmat", window_samples=1000, progress=False
    )
    ds = EEGDataset.open(tmp_path / "eegmat", max_windows=4)
    assert len(ds.channels) == 19 and "T7" in ds.channels and ds.sfreq == 500.0
    norms = np.linalg.norm(ds.index.select("x", "y", "z").to_numpy(), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-3)
    batch = collate(ds.__getitems__(list(range(len(ds)))))
    real = batch.x[batch.valid]  # (n real windows, t)
    assert torch.isfinite(real).all()
    assert abs(float(real.median())) < 0.2 and 0.5 < float(real.std()) < 3.0  # robust z scale


def test_label_columns_types_and_clashes(tmp_path, write_cohort):
    root = write_cohort(
        tmp_path / "d",
        participants=("01", "02"),
        runs=("1",),
        labels=lambda p, r: {"group": ["ctrl", "case"][p], "responder": bool(p)},
    )
    ds = EEGDataset.open(root)
    assert ds.index.schema["group"] == pl.String and ds.index.schema["responder"] == pl.Float64
    assert ds.with_label("responder")[len(ds) - 1]["label"] == 1.0
    with pytest.raises(DatasetError, match="label 'group' is not numeric"):
        ds.with_label("group")
    clash = write_cohort(
        tmp_path / "e", participants=("01",), runs=("1",), labels=lambda p, r: {"run": 1}
    )
    with pytest.raises(DatasetError, match=r"sub-01_run-1\.parquet: label 'run' clashes"):
        EEGDataset.open(clash)
