"""Two `eegwb ingest` processes into one --out, released at the same moment (real EEG from
../shared/data/eegmat): one writes the folder, the other fails at once naming it and the
running ingest; the folder then holds exactly what its dataset.json lists."""

from __future__ import annotations

import json

import pytest

from eegwb.data.dataset_record import check_dataset
from eegwb.data.layout import list_recordings


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_ingests_started_together_never_mix(eegmat_dir, tmp_path, start_together, overwrite):
    out = tmp_path / "out"
    pairs = (("00", "01"), ("02", "03"))  # two different sets of sources
    commands = [
        [
            "ingest",
            *(str(eegmat_dir / f"Subject{p}_2.edf") for p in pair),
            "--out",
            str(out),
            "--window-samples",
            "512",
            "--sfreq",
            "128",
            "--no-progress",
            *(["--overwrite"] if overwrite else []),
        ]
        for pair in pairs
    ]
    runs = start_together(commands, tmp_path, preload=["eegwb.data.ingest", "mne"])
    assert sorted(r.returncode for r in runs) == [0, 2], [r.stderr[-2000:] for r in runs]
    winner = next(r for r in runs if r.returncode == 0)
    loser = next(r for r in runs if r.returncode == 2)
    assert f"{out}: in use by another run (pid {winner.pid} on host" in loser.stderr
    won = pairs[runs.index(winner)]
    # The folder holds the winner's recordings only, and its record lists exactly those.
    files = [p.name for p in list_recordings(out)]
    assert files == [f"sub-{p}_run-2.parquet" for p in won]
    record = json.loads((out / "dataset.json").read_text())
    assert record["complete"] is True and sorted(record["files"]) == files
    assert check_dataset(out).problems == []
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", *files]  # no lock left
