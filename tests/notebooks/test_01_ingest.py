"""notebooks/01_ingest.py: `marimo check`, a headless run on two real recordings, and the HTML
export of a resumed run showing the summary table."""

from __future__ import annotations

import json

import pytest
from notebook_runs import MARIMO, ROOT, export_html, headless
from notebook_runs import run as _run

from eegwb.data.layout import recordings_index

NOTEBOOK = ROOT / "notebooks" / "01_ingest.py"
EEGMAT = ROOT / ".." / "shared" / "data" / "eegmat"


def test_marimo_check_passes():
    _run([str(MARIMO), "check", str(NOTEBOOK)])


@pytest.mark.skipif(
    not EEGMAT.is_dir(), reason=f"real EEG not found at {EEGMAT} (../shared/data/eegmat)"
)
def test_headless_ingest_then_export_html(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("Subject05_2.edf", "Subject06_2.edf"):  # the short (~60 s) arithmetic runs
        (src / name).symlink_to((EEGMAT / name).resolve())
    out = tmp_path / "out"
    args = [
        "--source",
        str(src),
        "--out",
        str(out),
        "--window-samples",
        "512",
        "--run-labels",
        "1:0,2:1",
        "--run-label-name",
        "task",
    ]
    done = headless(NOTEBOOK, *args)
    assert "2 written, 0 skipped" in done.stdout
    index = recordings_index(out)
    assert index.select("participant", "run").rows() == [("05", "2"), ("06", "2")]
    assert [json.loads(labels)["task"] for labels in index["labels"]] == [1, 1]
    assert all(n == 60 for n in index["n_windows"])  # 31000 samples // 512 (62 s at 500 Hz)

    html = tmp_path / "01_ingest.html"
    export_html(NOTEBOOK, html, *args)
    text = html.read_text()
    assert "0 written, 2 skipped (unchanged)" in text  # the export ran it again: resumed
    assert "sub-05_run-2.parquet" in text and "sub-06_run-2.parquet" in text
    assert "Windows per participant and run" in text and "image/png" in text  # chart + layout


def test_synthetic_source_takes_sfreq_and_hides_what_does_not_apply(tmp_path):
    args = [
        "--source",
        "synthetic",
        "--montage",
        "muse",
        "--n-participants",
        "2",
        "--window-samples",
        "256",
    ]
    headless(NOTEBOOK, *args, "--out", str(tmp_path / "at128"), "--sfreq", "128")
    index = recordings_index(tmp_path / "at128")
    assert index["sfreq"].unique().to_list() == [128.0] and index[
        "window_samples"
    ].unique().to_list() == [256]

    html = tmp_path / "01_synthetic.html"  # no --sfreq: the generator's 256 Hz
    export_html(
        NOTEBOOK, html, *args, "--out", str(tmp_path / "default"), flags=("--no-include-code",)
    )
    assert recordings_index(tmp_path / "default")["sfreq"].unique().to_list() == [256.0]
    text = html.read_text()
    assert "Resample to Hz" in text and "apply to recordings only" in text
    for recording_only in (
        "High-pass Hz",
        "Hop (samples",
        "Crop start",
        "Labels CSV",
        "On a bad file",
    ):
        assert recording_only not in text, recording_only
