"""Splits file parsing, selector resolution and participant-grouped splitting."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from eegwb.data.layout import DatasetError, RecordingMeta, build_table, write_recording
from eegwb.data.splits import (
    SplitData,
    SplitEntry,
    SplitSpec,
    grouped_kfold,
    load_splits,
    participant_labels,
    participant_selection,
    resolve_selectors,
    save_splits,
    split_by_participant,
)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """3 participants x 2 runs, 6 windows of 8 samples, 2 channels."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for p, group in (("01", "a"), ("02", "b"), ("03", "a")):
        for r in ("1", "2"):
            meta = RecordingMeta(
                sfreq=8.0,
                window_samples=8,
                hop_samples=8,
                channel_positions={"CZ": [0, 0, 1], "FZ": [0, 0.7, 0.7]},
                labels={"group": group, "task": r},
            )
            signals = {ch: rng.normal(size=(6, 8)).astype(np.float32) for ch in ("CZ", "FZ")}
            write_recording(root, build_table(p, r, signals, np.arange(6) * 8, meta))
    return root


def test_resolve_selectors_levels_and_merging(tiny_root):
    sel = resolve_selectors(tiny_root, ["01", "02/2", "03/1/1:3", "03/1/2:5", "03/2/4:"])
    assert sel.columns == ["file", "participant", "run", "row_start", "row_end"]
    rows = {(r[1], r[2]): (r[3], r[4]) for r in sel.iter_rows()}
    assert rows[("01", "1")] == (0, 6) and rows[("01", "2")] == (0, 6)
    assert rows[("02", "2")] == (0, 6) and ("02", "1") not in rows
    assert rows[("03", "1")] == (1, 5)  # 1:3 and 2:5 merged
    assert rows[("03", "2")] == (4, 6)
    assert set(sel["file"]) >= {"sub-03_run-1.parquet"}


@pytest.mark.parametrize(
    ("selector", "needle"),
    [
        ("09", "'09'"),
        ("01/7", "'7'"),
        ("01/1/3:99", "3:99"),
        ("01/1/4:2", "empty"),
        ("a b", "bad selector"),
    ],
)
def test_resolve_selectors_errors_name_the_problem(tiny_root, selector, needle):
    with pytest.raises(DatasetError, match=needle):
        resolve_selectors(tiny_root, [selector])


def test_splits_file_round_trip_and_other_dataset(tiny_root, tmp_path):
    spec = SplitSpec(
        splits={
            "train": SplitEntry(["01", "02/1"]),
            "eval": SplitEntry(["03"], dataset=str(tiny_root)),
        },
        dataset=str(tiny_root),
    )
    path = save_splits(spec, tmp_path / "splits.json")
    with pytest.raises(FileExistsError):
        save_splits(spec, path)
    back = load_splits(path)
    assert back.to_json() == spec.to_json()
    assert back.resolve("eval")["participant"].unique().to_list() == ["03"]
    assert back.resolve("train").height == 3


def test_relative_dataset_resolves_beside_the_splits_file(tiny_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tiny_root / "s.json").write_text(json.dumps({"dataset": ".", "splits": {"a": ["01"]}}))
    spec = load_splits(tiny_root / "s.json")
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"dataset": tiny_root.name, "splits": {"a": ["01"]}}))
    assert spec.resolve("a").height == 2
    with pytest.raises(DatasetError, match="does not exist"):
        load_splits(other).resolve("a")


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"splits": {"train": ["01/x/1"]}, "dataset": "d"}, "train.*bad selector"),
        ({"splits": {"train": "01"}, "dataset": "d"}, "list of strings"),
        ({"splits": {"train": ["01"]}, "dataset": "d", "extra": 1}, "unknown keys"),
        ({"splits": {"t": {"dataset": "d"}}}, "select"),
    ],
)
def test_load_splits_rejects_bad_files_naming_them(tmp_path, payload, needle):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DatasetError, match=needle) as err:
        load_splits(path)
    assert str(path) in str(err.value)


def test_dataset_may_come_from_the_caller(tiny_root, tmp_path):
    path = tmp_path / "nodefault.json"
    path.write_text(json.dumps({"splits": {"a": ["01"], "b": ["02"]}}))
    spec = load_splits(path)
    with pytest.raises(DatasetError, match="split 'a' has no dataset"):
        spec.resolve("a")
    data = spec.split_data(tiny_root)
    assert data["b"].resolved()["participant"].unique().to_list() == ["02"]
    # A caller's relative path means the current directory, never the file's directory.
    (tmp_path / tiny_root.name).mkdir()
    assert spec.root("a", tiny_root.name) == Path(tiny_root.name)
    assert data["b"].n_windows() == 12


def test_iter_recordings_reads_selected_rows(tiny_root):
    split = SplitData(tiny_root, resolve_selectors(tiny_root, ["02/1/2:4", "03/2"]))
    got = {file: rows.tolist() for file, _, _, rows in split.iter_recordings()}
    assert got == {"sub-02_run-1.parquet": [2, 3], "sub-03_run-2.parquet": list(range(6))}
    for _, meta, table, rows in split.iter_recordings(["CZ"]):
        assert table.num_rows == len(rows) and meta.window_samples == 8
        assert table.column("window_start").to_pylist() == [int(r) * 8 for r in rows]
    assert SplitData(tiny_root).n_windows() == 36


def test_participant_selection_and_labels(tiny_root):
    sel = participant_selection(tiny_root, ["01", "03"])
    assert sorted(set(sel["participant"])) == ["01", "03"] and sel.height == 4
    assert participant_labels(tiny_root, "group") == {"01": "a", "02": "b", "03": "a"}
    with pytest.raises(DatasetError, match="differs between runs"):
        participant_labels(tiny_root, "task")


def test_split_by_participant_partitions_and_stratifies():
    ps = [f"{i:03d}" for i in range(100)]
    labels = {p: ("case" if i % 4 == 0 else "control") for i, p in enumerate(ps)}
    out = split_by_participant(ps, labels, fractions=(0.6, 0.2, 0.2), seed=3)
    assert set(out) == {"train", "val", "test"}
    flat = [p for v in out.values() for p in v]
    assert sorted(flat) == ps  # every participant exactly once
    assert [len(out[k]) for k in ("train", "val", "test")] == [60, 20, 20]
    for name, members in out.items():
        frac_case = Counter(labels[p] for p in members)["case"] / len(members)
        assert abs(frac_case - 0.25) <= 0.05, (name, frac_case)
    assert out == split_by_participant(list(reversed(ps)), labels, (0.6, 0.2, 0.2), seed=3)
    assert out != split_by_participant(ps, labels, (0.6, 0.2, 0.2), seed=4)


def test_split_by_participant_small_and_continuous():
    out = split_by_participant(["a", "b", "c"], fractions=(0.8, 0.1, 0.1))
    assert all(len(v) == 1 for v in out.values())
    ps = [str(i) for i in range(40)]
    ages = {p: 20.0 + i * 1.37 for i, p in enumerate(ps)}
    out = split_by_participant(ps, ages, fractions=(0.5, 0.5))
    means = [np.mean([ages[p] for p in out[k]]) for k in ("train", "test")]
    assert abs(means[0] - means[1]) < 5  # quartile-stratified: similar age ranges
    with pytest.raises(DatasetError, match="cannot fill"):
        split_by_participant(["a", "b"], fractions=(0.5, 0.25, 0.25))
    with pytest.raises(DatasetError, match="listed twice"):
        split_by_participant(["a", "a", "b"])


def test_grouped_kfold_each_participant_validated_once():
    ps = [f"p{i}" for i in range(23)]
    labels = {p: i % 2 for i, p in enumerate(ps)}
    folds = grouped_kfold(ps, labels, k=5, seed=1)
    assert len(folds) == 5
    vals = [p for f in folds for p in f["val"]]
    assert sorted(vals) == sorted(ps)
    for f in folds:
        assert not set(f["train"]) & set(f["val"])
        assert sorted(f["train"] + f["val"]) == sorted(ps)
        assert len(f["val"]) in (4, 5)
        ones = sum(labels[p] for p in f["val"])
        assert abs(ones - len(f["val"]) / 2) <= 1
    with pytest.raises(DatasetError, match="k=30"):
        grouped_kfold(ps, k=30)


def test_empty_selector_list_gives_typed_empty_frame(tiny_root):
    sel = resolve_selectors(tiny_root, [])
    assert sel.height == 0 and sel.schema["row_start"] == pl.Int64
