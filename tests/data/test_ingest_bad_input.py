"""Ingest on bad input: each problem is an error naming the file (or a reported skip), and an
interrupted run leaves only complete files behind and resumes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import mne
import numpy as np
import pyarrow.parquet as pq
import pytest

from eegwb.atomic import OutputExistsError
from eegwb.cli import main as cli_main
from eegwb.data import layout
from eegwb.data.ingest import ingest
from eegwb.data.layout import DatasetError, list_recordings, read_recording
from eegwb.data.montage import MontageError

EEGMAT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eegmat"
needs_eegmat = pytest.mark.skipif(
    not EEGMAT.is_dir(),
    reason=f"real EEG not found at {EEGMAT} (../shared/data/eegmat beside the repo)",
)


def _fif(
    path: Path,
    names=("Fz", "Cz", "Pz"),
    *,
    seconds: float = 8.0,
    sfreq: float = 64.0,
    seed: int = 0,
    edit=None,
) -> Path:
    """A small FIF recording; `edit(data)` may plant defects in the (c, n) volts array."""
    data = np.random.default_rng(seed).standard_normal((len(names), int(seconds * sfreq))) * 10e-6
    if edit is not None:
        edit(data)
    raw = mne.io.RawArray(data, mne.create_info(list(names), sfreq, "eeg"), verbose="error")
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.save(path, verbose="error", overwrite=True)
    return raw


def _folder(tmp_path: Path, n: int = 4) -> Path:
    src = tmp_path / "src"
    for i in range(n):
        _fif(src / f"sub{i:02d}_1_raw.fif", seed=i)
    return src


@needs_eegmat
def test_corrupt_and_truncated_edf_name_the_file(tmp_path):
    data = (EEGMAT / "Subject00_1.edf").read_bytes()
    truncated = tmp_path / "Subject90_1.edf"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "Subject91_1.edf"
    garbage.write_bytes(b"0       " + bytes(range(256)) * 8)
    with pytest.raises(DatasetError, match=re.escape(str(truncated)) + ".*truncated"):
        ingest([truncated], tmp_path / "a", window_samples=512, progress=False)
    with pytest.raises(DatasetError, match=re.escape(str(garbage)) + ".*cannot read"):
        ingest([garbage], tmp_path / "b", window_samples=512, progress=False)
    # on_error="skip": both reported with their reasons, the good file still written.
    good = tmp_path / "Subject00_1.edf"
    shutil.copy(EEGMAT / "Subject00_1.edf", good)
    report = ingest(
        [good, truncated, garbage],
        tmp_path / "c",
        window_samples=512,
        on_error="skip",
        progress=False,
    )
    assert [r.participant for r in report.written] == ["00"]
    failed = {Path(r.source).name: r.reason for r in report.failed}
    assert set(failed) == {"Subject90_1.edf", "Subject91_1.edf"}
    assert "truncated" in failed["Subject90_1.edf"] and "cannot read" in failed["Subject91_1.edf"]
    assert [p.name for p in list_recordings(tmp_path / "c")] == ["sub-00_run-1.parquet"]
    assert json.loads((tmp_path / "c" / "dataset.json").read_text())["failed"].keys() == {
        str(truncated.resolve()),
        str(garbage.resolve()),
    }


@needs_eegmat
def test_missing_channels(tmp_path):
    with pytest.raises(DatasetError, match=r"Subject00_2\.edf: missing channels \['OZ'\]"):
        ingest(
            [EEGMAT / "Subject00_2.edf"],
            tmp_path / "o",
            channels=("FP1", "FZ", "OZ"),
            window_samples=512,
            progress=False,
        )


def test_requested_channels_keep_only_those(tmp_path):
    raw = _fif(tmp_path / "src" / "sub01_1_raw.fif", names=("Fz", "Cz", "Pz", "Oz", "C3"))
    raw.info["bads"] = ["C3"]  # a channel the recordist marked broken is dropped, and said so
    raw.save(tmp_path / "src" / "sub01_1_raw.fif", overwrite=True, verbose="error")
    report = ingest(
        [tmp_path / "src"], tmp_path / "o", channels=("CZ", "FZ"), window_samples=64, progress=False
    )
    assert report.written[0].channels == ["FZ", "CZ"]
    assert report.written[0].dropped == {
        "Pz": "not in the requested channel list",
        "Oz": "not in the requested channel list",
        "C3": "marked bad in the source file (MNE info['bads'])",
    }
    with pytest.raises(DatasetError, match=r"missing channels \['C3'\]"):
        ingest(
            [tmp_path / "src"],
            tmp_path / "o2",
            channels=("C3", "FZ"),
            window_samples=64,
            progress=False,
        )


def test_duplicated_channels_after_normalisation(tmp_path):
    path = tmp_path / "sub01_1_raw.fif"
    _fif(path, names=("EEG Fp1", "Fp1-REF", "Cz"))
    with pytest.raises(
        DatasetError,
        match=re.escape(str(path)) + r".*duplicated channels.*FP1 <- \['EEG Fp1', 'Fp1-REF'\]",
    ):
        ingest([path], tmp_path / "o", window_samples=64, progress=False)


def test_duplicated_participant_run_across_sources(tmp_path):
    a, b = tmp_path / "a" / "sub01_1_raw.fif", tmp_path / "b" / "Subject01-1_raw.fif"
    _fif(a)
    _fif(b, seed=1)
    # the FIF stem keeps '_raw': give a pattern so both map to participant 01, run 1
    pattern = r"(?:sub|Subject)(?P<participant>\d+)[-_](?P<run>\d+)"
    with pytest.raises(DatasetError, match=r"duplicated \(participant, run\) \('01', '1'\)") as err:
        ingest(
            [tmp_path / "a", tmp_path / "b"],
            tmp_path / "o",
            participant_pattern=pattern,
            window_samples=64,
            progress=False,
        )
    assert str(a) in str(err.value) and str(b) in str(err.value)
    assert not (tmp_path / "o").exists()  # nothing written before the plan is sound
    report = ingest(
        [tmp_path / "a", tmp_path / "b"],
        tmp_path / "o",
        participant_pattern=pattern,
        window_samples=64,
        on_error="skip",
        progress=False,
    )
    assert not report.written and len(report.failed) == 2  # neither is silently preferred


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nan_inf_samples_name_file_and_channel(tmp_path, bad_value):
    path = tmp_path / "sub01_1_raw.fif"

    def plant(data):
        data[1, 100:110] = bad_value

    _fif(path, edit=plant)
    with pytest.raises(
        DatasetError, match=re.escape(str(path)) + r": channel 'CZ' has NaN/Inf samples.*sample 100"
    ):
        ingest([path], tmp_path / "o", window_samples=64, progress=False)


def test_nan_inside_bad_annotation_is_excluded_not_an_error(tmp_path):
    path = tmp_path / "sub01_1_raw.fif"

    def plant(data):
        data[:, 200:250] = np.nan

    raw = _fif(path, edit=plant, seconds=10)
    raw.set_annotations(mne.Annotations([3.0], [1.0], ["BAD_dropout"]))  # samples 192-256
    raw.save(path, overwrite=True, verbose="error")
    report = ingest([path], tmp_path / "o", window_samples=64, l_freq=1.0, progress=False)
    _, table = read_recording(tmp_path / "o" / "sub-01_run-1.parquet")
    assert np.isfinite(layout.channel_array(table, "CZ")).all()
    assert table.column("parent_window_id").to_numpy().max() == 1
    assert report.written[0].bad_s == pytest.approx(1.0)


def test_unknown_channel_is_a_montage_error_naming_file(tmp_path):
    path = tmp_path / "sub01_1_raw.fif"
    _fif(path, names=("Fz", "Cz", "CPZZ"))
    with pytest.raises(
        MontageError, match=re.escape(str(path)) + r".*'CPZZ' \(closest known: .*CPZ"
    ):
        ingest([path], tmp_path / "o", window_samples=64, progress=False)


def test_recording_shorter_than_a_window(tmp_path):
    path = tmp_path / "sub01_1_raw.fif"
    _fif(path, seconds=2)
    with pytest.raises(
        DatasetError, match=re.escape(str(path)) + r": no window fits: .*128 samples"
    ):
        ingest([path], tmp_path / "o", window_samples=256, progress=False)


def test_bad_csv_and_unsupported_and_missing_sources(tmp_path):
    no_time = tmp_path / "sub01_1.csv"
    no_time.write_text("TP9,AF7\n1,2\n3,4\n")
    with pytest.raises(DatasetError, match=re.escape(str(no_time)) + ": no timestamp column"):
        ingest([no_time], tmp_path / "o", window_samples=2, progress=False)
    backwards = tmp_path / "sub02_1.csv"
    # A step back of 0.5 s is no jitter: the 4th sample (line 5) comes before the 3rd.
    backwards.write_text("timestamps,TP9\n10.0,1\n10.004,2\n10.008,3\n9.5,4\n9.504,5\n")
    with pytest.raises(
        DatasetError, match=re.escape(str(backwards)) + ": time runs backwards by 0.508 s at line 5"
    ):
        ingest([backwards], tmp_path / "o", window_samples=2, progress=False)
    words = tmp_path / "sub04_1.csv"
    words.write_text("timestamps,TP9\nabc,1\ndef,2\nghi,3\n")
    with pytest.raises(
        DatasetError, match=re.escape(str(words)) + ": timestamp column 'timestamps' holds neither"
    ):
        ingest([words], tmp_path / "o", window_samples=2, progress=False)
    blank = tmp_path / "sub03_1.csv"
    blank.write_text("timestamps,TP9,AF7\n0.0,1,2\n0.004,,2\n0.008,1,2\n0.012,1,2\n")
    with pytest.raises(DatasetError, match=re.escape(str(blank)) + ": channel 'TP9' has NaN/Inf"):
        ingest([blank], tmp_path / "o", window_samples=2, progress=False)
    parquet = tmp_path / "x.parquet"
    parquet.write_bytes(b"PAR1")
    with pytest.raises(DatasetError, match=re.escape(str(parquet)) + ": unsupported source format"):
        ingest([parquet], tmp_path / "o", progress=False)
    with pytest.raises(DatasetError, match="no sources given"):
        ingest([], tmp_path / "o", progress=False)
    with pytest.raises(DatasetError, match="nowhere: source does not exist"):
        ingest([tmp_path / "nowhere"], tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_run_without_run_label_entry(tmp_path):
    src = _folder(tmp_path, 1)
    with pytest.raises(DatasetError, match=r"sub00_1_raw\.fif: run '1' has no entry in run_labels"):
        ingest([src], tmp_path / "o", run_labels={"2": 1}, window_samples=64, progress=False)


def test_existing_output_dir_needs_overwrite(tmp_path):
    src = _folder(tmp_path, 2)
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("someone else's")
    (out / "sub-99_run-1.parquet").write_bytes(b"stale")
    with pytest.raises(OutputExistsError, match=re.escape(str(out)) + ".*not empty.*overwrite"):
        ingest([src], out, window_samples=64, progress=False)
    assert (
        cli_main(["ingest", str(src), "--out", str(out), "--window-samples", "64", "--no-progress"])
        == 2
    )
    report = ingest([src], out, window_samples=64, overwrite=True, progress=False)
    assert len(report.written) == 2 and any("sub-99_run-1.parquet" in r for r in report.removed)
    assert [p.name for p in list_recordings(out)] == [
        "sub-00_run-1.parquet",
        "sub-01_run-1.parquet",
    ]
    assert (out / "notes.txt").exists()  # only recording files it replaces are removed


def test_corrupt_parquet_in_output_on_rerun(tmp_path):
    src = _folder(tmp_path, 2)
    out = tmp_path / "o"
    ingest([src], out, window_samples=64, progress=False)
    target = out / "sub-01_run-1.parquet"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(
        DatasetError, match="(?s)" + re.escape(str(target)) + ": cannot read Parquet.*overwrite"
    ):
        ingest([src], out, window_samples=64, progress=False)


def test_interrupted_run_keeps_complete_files_and_resumes(tmp_path):
    src = _folder(tmp_path, 4)
    out = tmp_path / "o"

    def interrupt_after_two(result):
        if len(list(out.glob("sub-*.parquet"))) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest([src], out, window_samples=64, progress=False, on_progress=interrupt_after_two)
    # No finished run to record: only the unfinished one's record, naming what it wrote.
    assert not (out / "dataset.json").exists()
    unfinished = json.loads((out / "dataset.incomplete.json").read_text())
    assert unfinished["complete"] is False
    assert sorted(unfinished["files"]) == ["sub-00_run-1.parquet", "sub-01_run-1.parquet"]
    assert [p.name for p in list_recordings(out)] == [
        "sub-00_run-1.parquet",
        "sub-01_run-1.parquet",
    ]
    report = ingest([src], out, window_samples=64, progress=False)
    assert [r.status for r in report.results] == ["skipped", "skipped", "written", "written"]
    assert json.loads((out / "dataset.json").read_text())["complete"] is True
    assert not (out / "dataset.incomplete.json").exists()
    for path in list_recordings(out):
        meta, table = read_recording(path)
        assert table.num_rows == 8 and meta.source_hash


def test_crash_while_writing_leaves_no_half_file(tmp_path, monkeypatch):
    src = _folder(tmp_path, 3)
    out = tmp_path / "o"
    real_write = pq.write_table
    calls = []

    def dying_write(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:  # the second file: write half of it, then the "disk fails"
            real_write(table, where, **kwargs)
            Path(where).write_bytes(Path(where).read_bytes()[:200])
            raise OSError("simulated crash mid-write")
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(layout.pq, "write_table", dying_write)
    with pytest.raises(OSError, match="simulated crash"):
        ingest([src], out, window_samples=64, progress=False)
    monkeypatch.setattr(layout.pq, "write_table", real_write)
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset.incomplete.json",
        "sub-00_run-1.parquet",
    ]
    report = ingest([src], out, window_samples=64, progress=False)
    assert [r.status for r in report.results] == ["skipped", "written", "written"]
    assert all(read_recording(p)[1].num_rows == 8 for p in list_recordings(out))


def test_changed_source_is_rewritten_on_rerun(tmp_path):
    src = _folder(tmp_path, 2)
    out = tmp_path / "o"
    ingest([src], out, window_samples=64, progress=False)
    _fif(src / "sub01_1_raw.fif", seed=42)
    report = ingest([src], out, window_samples=64, progress=False)
    assert [r.status for r in report.results] == ["skipped", "written"]
    assert "source changed" in report.written[0].notes[-1]
    _, table = read_recording(out / "sub-01_run-1.parquet")
    expected = np.random.default_rng(42).standard_normal((3, 512))[0] * 10e-6 * 1e6
    np.testing.assert_allclose(layout.channel_array(table, "FZ").ravel(), expected, rtol=1e-5)


def test_rerun_refuses_recordings_whose_sources_are_gone(tmp_path):
    """A participant removed from the sources must not stay in the dataset unseen."""
    src = _folder(tmp_path, 3)
    out = tmp_path / "o"
    ingest([src], out, window_samples=64, progress=False)
    (src / "sub02_1_raw.fif").unlink()
    with pytest.raises(OutputExistsError, match=r"no longer produce \(sub-02_run-1\.parquet\)"):
        ingest([src], out, window_samples=64, progress=False)
    assert (out / "sub-02_run-1.parquet").exists()  # refused: nothing removed
    report = ingest([src], out, window_samples=64, overwrite=True, progress=False)
    assert [p.name for p in list_recordings(out)] == [
        "sub-00_run-1.parquet",
        "sub-01_run-1.parquet",
    ]
    assert len(report.written) == 2


def test_rerun_refuses_another_file_for_the_same_recording(tmp_path):
    """Another cohort's sub-00 run 1 must not silently replace this one's."""
    first, other = _folder(tmp_path / "a", 2), tmp_path / "b" / "src"
    for i in range(2):
        _fif(other / f"sub{i:02d}_1_raw.fif", seed=10 + i)
    out = tmp_path / "o"
    ingest([first], out, window_samples=64, progress=False)
    before = (out / "sub-00_run-1.parquet").read_bytes()
    with pytest.raises(
        DatasetError,
        match=re.escape(str(out / "sub-00_run-1.parquet"))
        + ".*holds.*"
        + re.escape(str(first / "sub00_1_raw.fif")),
    ):
        ingest([other], out, window_samples=64, progress=False)
    assert (out / "sub-00_run-1.parquet").read_bytes() == before
    report = ingest([other], out, window_samples=64, overwrite=True, progress=False)
    assert len(report.written) == 2
    meta, _ = read_recording(out / "sub-00_run-1.parquet")
    assert meta.source_file == str(other / "sub00_1_raw.fif")


def test_moved_sources_with_the_same_bytes_are_still_reused(tmp_path):
    src = _folder(tmp_path, 2)
    out = tmp_path / "o"
    ingest([src], out, window_samples=64, progress=False)
    moved = shutil.move(src, tmp_path / "moved")
    report = ingest([moved], out, window_samples=64, progress=False)
    assert [r.status for r in report.results] == ["skipped", "skipped"]


def test_file_stems_as_participant_ids_are_warned_about(tmp_path):
    """PhysioNet-style S001R01 names: without a pattern every file is its own participant."""
    src = tmp_path / "src"
    for run in (1, 2):
        _fif(src / f"S001R0{run}.fif", seed=run)
    report = ingest([src], tmp_path / "o", window_samples=64, progress=False)
    assert sorted(r.participant for r in report.written) == ["S001R01", "S001R02"]
    warning = next(w for w in report.warnings if "its own participant" in w)
    assert "S001R01.fif" in warning and "participant_pattern" in warning
    report = ingest(
        [src],
        tmp_path / "o2",
        window_samples=64,
        progress=False,
        participant_pattern=r"S(?P<participant>\d+)R(?P<run>\d+)",
    )
    assert {(r.participant, r.run) for r in report.written} == {("001", "01"), ("001", "02")}
    assert not any("its own participant" in w for w in report.warnings)


@needs_eegmat
def test_one_file_name_without_ids_is_refused_not_run_together(tmp_path, caplog):
    """`Subject05 1 ✓é.edf`, the only source: not silently participant '051'."""
    odd = tmp_path / "src" / "Subject05 1 ✓é.edf"
    odd.parent.mkdir()
    shutil.copy(EEGMAT / "Subject05_2.edf", odd)
    with pytest.raises(DatasetError, match="would run together into participant '051'") as err:
        ingest([odd], tmp_path / "o", window_samples=512, progress=False)
    assert str(odd) in str(err.value) and "participant_pattern" in str(err.value)
    assert not (tmp_path / "o").exists()
    assert cli_main(["ingest", str(odd), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "Subject05 1 ✓é.edf: eegwb cannot read a participant and run" in caplog.text
    # With a pattern it is read as meant.
    report = ingest([odd], tmp_path / "o", window_samples=512, progress=False,
                    participant_pattern=r"Subject(?P<participant>\d+) (?P<run>\d)")  # fmt: skip
    assert [(r.participant, r.run) for r in report.written] == [("05", "1")]


def test_one_file_stem_id_is_said(tmp_path):
    _fif(tmp_path / "src" / "alice!.fif")
    report = ingest([tmp_path / "src"], tmp_path / "o", window_samples=64, progress=False)
    assert [r.participant for r in report.written] == ["alice"]
    (warning,) = [w for w in report.warnings if "no participant/run in its name" in w]
    assert "alice!.fif" in warning and "stored as participant 'alice'" in warning
    assert "['!'] dropped" in warning


def test_on_error_skip_cli_exit_code(tmp_path):
    src = _folder(tmp_path, 1)
    (src / "sub05_1_raw.fif").write_bytes(b"not a fif file")
    out = tmp_path / "o"
    assert (
        cli_main(
            [
                "ingest",
                str(src),
                "--out",
                str(out),
                "--window-samples",
                "64",
                "--on-error",
                "skip",
                "--no-progress",
            ]
        )
        == 1
    )
    assert [p.name for p in list_recordings(out)] == ["sub-00_run-1.parquet"]
