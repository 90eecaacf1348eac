"""A dataset's ingest record (eegwb/data/dataset_record.py), on real EEG from
../shared/data/eegmat: a failed re-run leaves the last good dataset.json as it was; an
unfinished ingest, an unlisted recording and a Parquet file of another name are each
noticed by every reader (pretraining and fine-tuning refuse, validate fails or warns,
EEGDataset.open warns), named."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from eegwb.cli import main as cli_main
from eegwb.config import load_config
from eegwb.data.dataset import EEGDataset
from eegwb.data.dataset_record import check_dataset
from eegwb.data.ingest import ingest
from eegwb.data.layout import DatasetError, list_recordings

REPO = Path(__file__).resolve().parents[2]
OPTIONS = {"window_samples": 512, "sfreq": 128.0, "progress": False}


@pytest.fixture
def good(eegmat_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(sources, dataset) after a good ingest of 4 real recordings (60 s each)."""
    src = tmp_path / "src"
    src.mkdir()
    for p in ("00", "01", "02", "03"):
        shutil.copy(eegmat_dir / f"Subject{p}_2.edf", src / f"Subject{p}_2.edf")
    out = tmp_path / "data"
    ingest([src], out, **OPTIONS)
    return src, out


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_failed_rerun_keeps_the_last_good_record(good, eegmat_dir) -> None:
    src, out = good
    before = (out / "dataset.json").read_bytes()
    _truncate(src / "Subject02_2.edf")
    with pytest.raises(DatasetError, match=r"Subject02_2\.edf.*truncated"):
        ingest([src], out, **OPTIONS)
    assert (out / "dataset.json").read_bytes() == before  # was: complete false, files {}
    assert json.loads(before)["complete"] is True and len(json.loads(before)["files"]) == 4
    assert not (out / "dataset.incomplete.json").exists()  # the folder did not change
    assert check_dataset(out).problems == []
    # A failed re-run that did change the folder (one source replaced, so rewritten) says so
    # in its own record and leaves dataset.json as it was.
    shutil.copy(eegmat_dir / "Subject04_2.edf", src / "Subject00_2.edf")
    with pytest.raises(DatasetError, match=r"Subject02_2\.edf.*truncated"):
        ingest([src], out, **OPTIONS)
    assert (out / "dataset.json").read_bytes() == before
    unfinished = json.loads((out / "dataset.incomplete.json").read_text())
    assert unfinished["complete"] is False
    assert unfinished["files"]["sub-00_run-2.parquet"]["status"] == "written"
    (incomplete,) = check_dataset(out).incomplete
    assert "dataset.incomplete.json: an ingest started" in incomplete


def test_readers_notice_an_unfinished_ingest(good, eegmat_dir, tmp_path, caplog) -> None:
    src, out = good
    shutil.copy(eegmat_dir / "Subject04_2.edf", src / "Subject00_2.edf")
    _truncate(src / "Subject02_2.edf")
    with pytest.raises(DatasetError):
        ingest([src], out, **OPTIONS)
    why = re.escape(str(out / "dataset.incomplete.json")) + ": an ingest started .* did not finish"
    _readers_refuse(out, tmp_path, why, caplog)


def test_readers_notice_an_unlisted_recording(good, eegmat_dir, tmp_path, caplog) -> None:
    _, out = good
    # A recording another ingest wrote, copied into the folder.
    ingest([eegmat_dir / "Subject05_2.edf"], tmp_path / "other", **OPTIONS)
    shutil.copy(tmp_path / "other" / "sub-05_run-2.parquet", out)
    why = (
        re.escape(f"{out}: 1 recording(s) that dataset.json does not list")
        + r".*: sub-05_run-2\.parquet"
    )
    _readers_refuse(out, tmp_path, why, caplog)


def _readers_refuse(out: Path, tmp_path: Path, why: str, caplog) -> None:
    from eegwb.train.config import PretrainConfig
    from eegwb.train.finetune import finetune
    from eegwb.train.finetune_config import FinetuneConfig
    from eegwb.train.pretrain import pretrain

    pre = load_config(
        PretrainConfig,
        REPO / "configs" / "tiny.yaml",
        [
            f"data.root={out}",
            "data.channels=null",
            "model.window_samples=512",
            f"train.checkpoint_dir={tmp_path / 'ckpt'}",
            "tracking.enabled=false",
        ],
    )
    with pytest.raises(DatasetError, match="pretraining refuses an incomplete dataset: " + why):
        pretrain(pre, bar=False)
    fine = load_config(
        FinetuneConfig,
        REPO / "configs" / "finetune_tiny.yaml",
        [
            f"data.root={out}",
            f"pretrained.checkpoint_dir={tmp_path / 'ckpt'}",
            "tracking.enabled=false",
        ],
    )
    with pytest.raises(DatasetError, match="fine-tuning refuses an incomplete dataset: " + why):
        finetune(fine)
    with caplog.at_level(logging.WARNING, logger="eegwb.data.dataset_record"):
        EEGDataset.open(out, cache_dir=tmp_path / "cache")
    assert re.search(why, caplog.text)
    assert cli_main(["validate", str(out), "--ids-only", "--fractions", "0.5", "0.5"]) == 1


def test_parquet_files_of_other_names_are_named_not_read(good, tmp_path, caplog, capsys) -> None:
    _, out = good
    shutil.copy(out / "sub-01_run-2.parquet", out / "sub-01_run-2 copy.parquet")
    shutil.copy(out / "sub-01_run-2.parquet", out / "extra.parquet")
    assert len(list_recordings(out)) == 4  # "sub-01_run-2 copy" is not read as run "2 copy"
    (ignored,) = check_dataset(out).ignored
    assert "2 Parquet file(s) whose names are not recordings" in ignored
    assert "extra.parquet, sub-01_run-2 copy.parquet" in ignored
    with caplog.at_level(logging.WARNING, logger="eegwb.data.dataset_record"):
        EEGDataset.open(out, cache_dir=tmp_path / "cache")
    assert "extra.parquet, sub-01_run-2 copy.parquet" in caplog.text
    assert cli_main(["validate", str(out), "--ids-only", "--fractions", "0.5", "0.5"]) == 0
    assert "WARN  dataset/record: " in capsys.readouterr().out
