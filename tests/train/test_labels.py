"""Label tables joined to a dataset: per participant, per recording, from metadata, and the
errors a wrong table must produce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from eegwb.data.layout import RecordingMeta, build_table, write_recording
from eegwb.train.labels import (
    LabelError,
    LabelSource,
    label_lookup,
    participant_classes,
    recording_labels,
)


def write_tiny(
    root: Path, runs: dict[str, list[str]], meta_labels: dict[tuple[str, str], dict]
) -> None:
    """One 1-window, 1-channel file per (participant, run)."""
    for p, rs in runs.items():
        for r in rs:
            meta = RecordingMeta(
                sfreq=16.0,
                window_samples=4,
                hop_samples=4,
                channel_positions={"CZ": [0.0, 0.0, 1.0]},
                labels=meta_labels.get((p, r), {}),
            )
            write_recording(
                root, build_table(p, r, {"CZ": np.zeros((1, 4), np.float32)}, [0], meta)
            )


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "ds"
    write_tiny(
        root,
        {"01": ["1", "2"], "02": ["1", "2"], "03": ["1"]},
        {
            ("01", "1"): {"task": 0, "group": "MDD"},
            ("01", "2"): {"task": 1, "group": "MDD"},
            ("02", "1"): {"task": 0, "group": "HC"},
            ("02", "2"): {"task": 1, "group": "HC"},
            ("03", "1"): {"task": 0},
        },
    )
    return root


def test_participant_csv_labels_every_run_and_strips_sub_prefix(dataset, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("participant_id,remission\nsub-01,1\nsub-02,0\nsub-03,true\nsub-99,0\n")
    table = recording_labels(dataset, LabelSource(name="remission", path=str(csv)))
    assert table.select("participant", "run", "label").rows() == [
        ("01", "1", 1),
        ("01", "2", 1),
        ("02", "1", 0),
        ("02", "2", 0),
        ("03", "1", 1),
    ]
    assert participant_classes(table) == {"01": 1, "02": 0, "03": 1}
    assert label_lookup(table)[("02", "2")] == 0


def test_recording_parquet_labels_are_per_run(dataset, tmp_path):
    pq = tmp_path / "runs.parquet"
    pl.DataFrame(
        {
            "subject": ["01", "01", "02", "02", "03"],
            "run": ["1", "2", "1", "2", "1"],
            "state": ["rest", "math", "rest", "math", "rest"],
        }
    ).write_parquet(pq)
    table = recording_labels(dataset, LabelSource(name="state", path=str(pq), positive="math"))
    assert table["label"].to_list() == [0, 1, 0, 1, 0]
    assert participant_classes(table) is None  # label varies within a participant


def test_metadata_labels_and_missing_ones(dataset):
    table = recording_labels(dataset, LabelSource(name="task"))
    assert table["label"].to_list() == [0, 1, 0, 1, 0]
    with pytest.raises(LabelError, match=r"sub-03_run-1\.parquet"):
        recording_labels(dataset, LabelSource(name="group", positive="MDD"))
    kept = recording_labels(dataset, LabelSource(name="group", positive="MDD", drop_missing=True))
    assert kept["participant"].unique().sort().to_list() == ["01", "02"]


def test_bad_tables_are_refused_with_the_file_named(dataset, tmp_path):
    strings = tmp_path / "s.csv"
    strings.write_text("participant,group\n01,MDD\n02,HC\n03,HC\n")
    with pytest.raises(LabelError, match="set labels.positive"):
        recording_labels(dataset, LabelSource(name="group", path=str(strings)))
    with pytest.raises(LabelError, match="never occurs"):
        recording_labels(dataset, LabelSource(name="group", path=str(strings), positive="mdd"))
    conflict = tmp_path / "c.csv"
    conflict.write_text("participant,y\n01,1\n01,0\n02,0\n03,1\n")
    with pytest.raises(LabelError, match=r"c\.csv: conflicting"):
        recording_labels(dataset, LabelSource(name="y", path=str(conflict)))
    other = tmp_path / "o.csv"
    other.write_text("participant,y\n1,1\n2,0\n")  # '1' is not '01'
    with pytest.raises(LabelError, match=r"o\.csv: none of its participants"):
        recording_labels(dataset, LabelSource(name="y", path=str(other)))
    no_col = tmp_path / "n.csv"
    no_col.write_text("id,y\n01,1\n")
    with pytest.raises(LabelError, match="no participant column"):
        recording_labels(dataset, LabelSource(name="y", path=str(no_col)))
    one_class = tmp_path / "one.csv"
    one_class.write_text("participant,y\n01,1\n02,1\n03,1\n")
    with pytest.raises(LabelError, match="need two classes"):
        recording_labels(dataset, LabelSource(name="y", path=str(one_class)))
    with pytest.raises(LabelError, match="expected a .csv"):
        LabelSource(name="y", path="labels.xlsx")
