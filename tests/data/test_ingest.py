"""Ingest: all 48 real eegmat EDFs checked against MNE's own get_data, a BIDS tree, a Muse CSV,
resumability, and refusing to overwrite."""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import mne
import numpy as np
import pytest
import xxhash

from eegwb.atomic import OutputExistsError
from eegwb.cli import main as cli_main
from eegwb.data.ingest import IngestConfig, ingest, preview_frame, preview_sources
from eegwb.data.layout import DatasetError, channel_array, read_recording, recordings_index
from eegwb.data.montage import electrode_positions

EEGMAT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eegmat"
SCALP = [
    "FP1",
    "FP2",
    "F3",
    "F4",
    "F7",
    "F8",
    "T7",
    "T8",
    "C3",
    "C4",
    "P7",
    "P8",
    "P3",
    "P4",
    "O1",
    "O2",
    "FZ",
    "CZ",
    "PZ",
]
WINDOW = 512

needs_eegmat = pytest.mark.skipif(
    not EEGMAT.is_dir(),
    reason=f"real EEG not found at {EEGMAT} (../shared/data/eegmat beside the repo)",
)


def _eegmat_labels() -> dict[str, dict[str, str]]:
    with open(EEGMAT / "subject-info.csv", newline="") as fh:
        return {row["Subject"].removeprefix("Subject"): row for row in csv.DictReader(fh)}


def _source_uv(path: Path, channels: list[str], *, sfreq: float | None = None) -> np.ndarray:
    """(c, n) float32 µV straight from MNE, channels picked by their EDF names."""
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    if sfreq is not None:
        raw = raw.copy().resample(sfreq, verbose="error")
    edf_names = {
        n.removeprefix("EEG ")
        .upper()
        .replace("T3", "T7")
        .replace("T4", "T8")
        .replace("T5", "P7")
        .replace("T6", "P8"): n
        for n in raw.ch_names
    }
    return (raw.get_data(picks=[edf_names[c] for c in channels]) * 1e6).astype(np.float32)


@pytest.fixture(scope="module")
def eegmat_out(tmp_path_factory):
    if not EEGMAT.is_dir():
        pytest.skip(f"real EEG not found at {EEGMAT} (../shared/data/eegmat beside the repo)")
    out = tmp_path_factory.mktemp("eegmat") / "eegmat"
    report = ingest(
        [EEGMAT],
        out,
        window_samples=WINDOW,
        labels=(str(EEGMAT / "subject-info.csv"),),
        run_labels={"1": 0, "2": 1},
        run_label_name="task",
        progress=False,
    )
    return out, report


@needs_eegmat
def test_eegmat_all_files_written_with_scalp_channels(eegmat_out):
    out, report = eegmat_out
    assert len(report.written) == 48 and not report.failed and not report.skipped
    # The labels CSV in the folder is the labels table passed: nothing to warn about.
    assert report.warnings == []
    for result in report.written:
        assert result.channels == SCALP
        assert set(result.dropped) == {"EEG A2-A1", "ECG ECG"}
        assert "derivation" in result.dropped["EEG A2-A1"] and "ECG" in result.dropped["ECG ECG"]
    index = recordings_index(out)
    assert index.height == 48 and index["participant"].n_unique() == 24
    assert sorted(index["run"].unique().to_list()) == ["1", "2"]
    frame = report.to_frame()
    assert frame.height == 48 and set(frame["status"]) == {"written"}


@needs_eegmat
def test_eegmat_samples_equal_mne_get_data(eegmat_out):
    out, report = eegmat_out
    for result in report.written:
        source = Path(result.source)
        meta, table = read_recording(out / result.file)
        expected = _source_uv(source, SCALP)  # (19, n)
        n_windows = expected.shape[1] // WINDOW
        assert table.num_rows == n_windows
        np.testing.assert_array_equal(
            table.column("window_start").to_numpy(), np.arange(n_windows) * WINDOW
        )
        np.testing.assert_array_equal(table.column("parent_window_id").to_numpy(), 0)
        np.testing.assert_array_equal(
            table.column("sub_window_id").to_numpy(), np.arange(n_windows)
        )
        for i, ch in enumerate(SCALP):
            stored = channel_array(table, ch)
            np.testing.assert_array_equal(
                stored, expected[i, : n_windows * WINDOW].reshape(n_windows, WINDOW)
            )
        assert meta.sfreq == 500.0 and meta.units == "uV" and meta.montage == "standard_1020"
        assert meta.source_hash == xxhash.xxh3_128(source.read_bytes()).hexdigest()
        assert meta.channel_positions == electrode_positions(SCALP)


@needs_eegmat
def test_eegmat_labels_joined(eegmat_out):
    out, _ = eegmat_out
    info = _eegmat_labels()
    index = recordings_index(out)
    assert set(index["participant"]) == set(info)
    for row in index.iter_rows(named=True):
        labels = json.loads(row["labels"])
        expected = info[row["participant"]]
        assert labels["task"] == {"1": 0, "2": 1}[row["run"]]
        assert labels["Age"] == int(expected["Age"]) and labels["Gender"] == expected["Gender"]
        assert labels["Count quality"] == int(expected["Count quality"])
        assert labels["Number of subtractions"] == pytest.approx(
            float(expected["Number of subtractions"])
        )


@needs_eegmat
def test_eegmat_rerun_skips_unchanged_and_refuses_other_options(eegmat_out):
    out, _ = eegmat_out
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    again = ingest(
        [EEGMAT],
        out,
        window_samples=WINDOW,
        labels=(str(EEGMAT / "subject-info.csv"),),
        run_labels={"1": 0, "2": 1},
        progress=False,
    )
    assert len(again.skipped) == 48 and not again.written
    assert all("unchanged" in r.reason for r in again.skipped)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")} == before
    with pytest.raises(
        OutputExistsError, match=r"different options \['hop_samples', 'window_samples'\]"
    ):
        ingest(
            [EEGMAT],
            out,
            window_samples=256,
            labels=(str(EEGMAT / "subject-info.csv"),),
            run_labels={"1": 0, "2": 1},
            progress=False,
        )
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")} == before


@needs_eegmat
def test_eegmat_resampled_and_filtered_match_mne(tmp_path):
    source = EEGMAT / "Subject03_2.edf"
    out = ingest([source], tmp_path / "rs", window_samples=256, sfreq=256, progress=False)
    meta, table = read_recording(tmp_path / "rs" / out.written[0].file)
    expected = _source_uv(source, SCALP, sfreq=256)
    n = expected.shape[1] // 256
    assert meta.sfreq == 256.0 and table.num_rows == n
    for i, ch in enumerate(SCALP):
        np.testing.assert_allclose(
            channel_array(table, ch), expected[i, : n * 256].reshape(n, 256), rtol=1e-6, atol=1e-4
        )
    # Filters run at the source rate, before resampling (notch, then band-pass).
    ingest(
        [source],
        tmp_path / "filt",
        window_samples=256,
        sfreq=250,
        l_freq=1.0,
        h_freq=40.0,
        notch_hz=50.0,
        progress=False,
    )
    raw = mne.io.read_raw_edf(source, preload=True, verbose="error").pick(["EEG Cz", "EEG O1"])
    raw.notch_filter(np.arange(50.0, 250.0, 50.0), verbose="error").filter(
        1.0, 40.0, verbose="error"
    )
    raw.resample(250, verbose="error")
    ref = (raw.get_data() * 1e6).astype(np.float32)
    _, table = read_recording(tmp_path / "filt" / "sub-03_run-2.parquet")
    n = ref.shape[1] // 256
    for i, ch in enumerate(["CZ", "O1"]):
        np.testing.assert_allclose(
            channel_array(table, ch), ref[i, : n * 256].reshape(n, 256), rtol=1e-5, atol=1e-3
        )


@needs_eegmat
def test_eegmat_preview_lists_channels_and_durations():
    infos = preview_sources(EEGMAT)
    assert len(infos) == 48 and all(i.error is None for i in infos)
    first = infos[0]
    assert (first.participant, first.run, first.sfreq) == ("00", "1", 500.0)
    assert first.kept == SCALP and set(first.dropped) == {"EEG A2-A1", "ECG ECG"}
    raw = mne.io.read_raw_edf(first.path, verbose="error")
    assert first.duration_s == pytest.approx(raw.n_times / 500.0)
    frame = preview_frame(infos)
    assert frame.height == 48 and frame["n_kept"].to_list() == [19] * 48


def _bids_raw(sfreq: float, seconds: float, seed: int, *, bad: tuple[float, float] | None = None):
    rng = np.random.default_rng(seed)
    names = ["Fz", "Cz", "Pz", "Oz", "EOG left", "STI 014"]
    info = mne.create_info(names, sfreq, ["eeg"] * 4 + ["eog", "stim"])
    raw = mne.io.RawArray(
        rng.standard_normal((6, int(seconds * sfreq))) * 20e-6, info, verbose="error"
    )
    raw.set_meas_date(datetime.datetime(2021, 5, 1, tzinfo=datetime.UTC))
    if bad is not None:
        raw.set_annotations(mne.Annotations([bad[0]], [bad[1] - bad[0]], ["BAD_movement"]))
    return raw


def test_bids_tree_ids_entities_labels_and_bad_segments(tmp_path):
    root = tmp_path / "bids"
    (root / "dataset_description.json").parent.mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')
    (root / "participants.tsv").write_text(
        "participant_id\tgroup\nsub-01\t1\nsub-02\t0\nsub-03\t1\n"
    )
    per_run = tmp_path / "scores.csv"
    per_run.write_text("participant,run,score\n01,1,2.5\n")
    files = {
        "sub-01/eeg/sub-01_task-rest_run-1_eeg.fif": _bids_raw(128, 20, 1),
        "sub-01/eeg/sub-01_task-rest_run-2_eeg.fif": _bids_raw(128, 20, 2, bad=(6.0, 8.0)),
        "sub-02/ses-1/eeg/sub-02_ses-1_task-arith_eeg.fif": _bids_raw(128, 20, 3),
        "sub-02/ses-2/eeg/sub-02_ses-2_task-arith_eeg.fif": _bids_raw(128, 20, 5),
        "derivatives/clean/sub-01/eeg/sub-01_task-rest_run-1_eeg.fif": _bids_raw(128, 20, 4),
    }
    # A cropped recording: first_samp > 0, so annotation onsets must be synced, not taken raw.
    files["sub-01/eeg/sub-01_task-rest_run-2_eeg.fif"].crop(2.0, None)
    for rel, raw in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        raw.save(root / rel, verbose="error")
    report = ingest(
        [root],
        tmp_path / "out",
        window_samples=128,
        progress=False,
        labels=(str(root / "participants.tsv"), str(per_run)),
    )
    assert not report.failed
    assert sorted((r.participant, r.run) for r in report.written) == [
        ("01", "1"),
        ("01", "2"),
        # BIDS numbers runs per session: the bare id 'arith' repeats, so the long form is used
        ("02", "ses1arith"),
        ("02", "ses2arith"),
    ]
    assert all("derivatives" not in r.source for r in report.results)
    index = recordings_index(tmp_path / "out")
    labels = {
        (r["participant"], r["run"]): json.loads(r["labels"]) for r in index.iter_rows(named=True)
    }
    assert labels[("01", "1")] == {"task": "rest", "group": 1, "score": 2.5}
    assert labels[("01", "2")] == {"task": "rest", "group": 1}
    # Label rows without a recording, and recordings without a row, are reported.
    assert any("participants.tsv" in w and "['03'] match no source" in w for w in report.warnings)
    assert any(
        "scores.csv" in w and "['01/2', '02/ses1arith', '02/ses2arith']" in w
        for w in report.warnings
    )
    assert labels[("02", "ses1arith")] == {"session": "1", "task": "arith", "group": 0}
    written = {r.run: r for r in report.written if r.participant == "01"}
    assert set(written["1"].dropped) == {"EOG left", "STI 014"}
    assert written["1"].channels == ["FZ", "CZ", "PZ", "OZ"]
    # run-2: 18 s after the crop, BAD 6-8 s (4-6 s of the cropped data) splits it in two.
    _, table = read_recording(tmp_path / "out" / "sub-01_run-2.parquet")
    starts = table.column("window_start").to_numpy()
    parents = table.column("parent_window_id").to_numpy()
    subs = table.column("sub_window_id").to_numpy()
    np.testing.assert_array_equal(parents, [0] * 4 + [1] * 12)
    np.testing.assert_array_equal(starts, [0, 128, 256, 384] + [768 + 128 * k for k in range(12)])
    np.testing.assert_array_equal(subs, list(range(4)) + list(range(12)))
    assert written["2"].bad_s == pytest.approx(2.0)
    source = mne.io.read_raw_fif(
        root / "sub-01/eeg/sub-01_task-rest_run-2_eeg.fif", verbose="error"
    )
    pz = (source.get_data(picks=["Pz"])[0] * 1e6).astype(np.float32)
    np.testing.assert_array_equal(channel_array(table, "PZ"), pz[starts[:, None] + np.arange(128)])


def _muse_csv(
    path: Path,
    *,
    ms: bool = False,
    gap: bool = True,
    seed: int = 0,
    seconds: int = 12,
    rounded: bool = False,
    step_at_gap: float = 0.0,
) -> np.ndarray:
    """A Muse-style CSV at 256 Hz; `rounded`: whole-ms timestamps (steps of 3 and 4 ms);
    `step_at_gap`: µV added to every channel after the dropout (an electrode settling)."""
    rng = np.random.default_rng(seed)
    n = 256 * seconds
    t = 1.6e9 + np.arange(n) / 256.0
    if gap:
        t[n // 2 :] += 0.5  # a 0.5 s dropout: samples missing, not zeros
    values = rng.standard_normal((n, 5)) * 30 + 800  # µV around Muse's offset
    values[n // 2 :] += step_at_gap
    stamps = t * (1000 if ms else 1)
    if rounded:
        stamps = np.round(stamps) if ms else np.round(stamps, 3)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamps", "TP9", "AF7", "AF8", "TP10", "Right AUX"])
        for ti, row in zip(stamps, values):
            writer.writerow([repr(float(ti)), *(repr(float(v)) for v in row)])
    return values


def test_muse_csv_sfreq_gap_segments_and_samples(tmp_path):
    src = tmp_path / "csv"
    src.mkdir()
    values = _muse_csv(src / "participant7_rest.csv")
    _muse_csv(src / "participant7_eyes.csv", ms=True, gap=False, seed=1)
    report = ingest([src], tmp_path / "out", window_samples=256, progress=False)
    assert not report.failed and len(report.written) == 2
    by_run = {r.run: r for r in report.written}
    rest = by_run["rest"]
    assert rest.participant == "7" and rest.channels == ["TP9", "AF7", "AF8", "TP10"]
    assert "auxiliary" in rest.dropped["Right AUX"]
    meta, table = read_recording(tmp_path / "out" / "sub-7_run-rest.parquet")
    assert meta.sfreq == 256.0 and meta.montage == "muse"
    np.testing.assert_array_equal(table.column("parent_window_id").to_numpy(), [0] * 6 + [1] * 6)
    starts = table.column("window_start").to_numpy()
    for i, ch in enumerate(["TP9", "AF7", "AF8", "TP10"]):
        np.testing.assert_allclose(
            channel_array(table, ch), values[:, i][starts[:, None] + np.arange(256)], rtol=1e-6
        )
    assert any("as s" in n for n in rest.notes) and any("as ms" in n for n in by_run["eyes"].notes)
    assert recordings_index(tmp_path / "out")["sfreq"].to_list() == [256.0, 256.0]


@pytest.mark.parametrize("ms", [True, False])
def test_csv_rate_from_timestamps_rounded_to_whole_ms(tmp_path, ms):
    """256 Hz written to the ms: steps of 3 and 4 ms, median 4 ms (250 Hz); the mean is right."""
    src = tmp_path / "csv"
    src.mkdir()
    _muse_csv(src / "participant3_rest.csv", ms=ms, rounded=True)
    report = ingest([src], tmp_path / "out", window_samples=256, progress=False)
    assert not report.failed and report.written[0].sfreq == 256.0
    assert report.written[0].n_windows == 12  # a gap, but no sample lost to a wrong rate


def test_filters_do_not_ring_across_a_csv_dropout(tmp_path):
    """A 200 µV settling step across a dropout: filtering each side on its own keeps the
    windows beside the gap as quiet as the others."""
    src = tmp_path / "csv"
    src.mkdir()
    _muse_csv(src / "participant4_rest.csv", seconds=64, step_at_gap=200.0)
    ingest([src], tmp_path / "out", window_samples=256, l_freq=1.0, h_freq=40.0, progress=False)
    _, table = read_recording(tmp_path / "out" / "sub-4_run-rest.parquet")
    stds = channel_array(table, "TP9").std(axis=1)
    parent = table.column("parent_window_id").to_numpy()
    beside_gap = [np.flatnonzero(parent == 0)[-1], np.flatnonzero(parent == 1)[0]]
    assert stds[beside_gap].max() < 1.5 * np.median(stds)


def test_participant_pattern_and_cli(tmp_path):
    src = tmp_path / "csv"
    src.mkdir()
    _muse_csv(src / "2024-01-05_P12_visit3.csv", gap=False)
    out = tmp_path / "out"
    code = cli_main(
        [
            "ingest",
            str(src),
            "--out",
            str(out),
            "--window-samples",
            "512",
            "--participant-pattern",
            r"_P(?P<participant>\d+)_visit(?P<run>\d+)",
            "--run-labels",
            "3=1",
            "--run-label-name",
            "visit_label",
            "--no-progress",
        ]
    )
    assert code == 0
    index = recordings_index(out)
    assert index.select("participant", "run", "n_windows").rows() == [("12", "3", 6)]
    assert json.loads(index["labels"][0]) == {"visit_label": 1}
    assert json.loads((out / "dataset.json").read_text())["complete"] is True


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="window_samples"):
        IngestConfig(window_samples=0)
    with pytest.raises(ValueError, match="l_freq"):
        IngestConfig(l_freq=40, h_freq=1)
    with pytest.raises(ValueError, match="participant"):
        IngestConfig(participant_pattern=r"(?P<subject>\d+)")
    with pytest.raises(ValueError, match="on_error"):
        IngestConfig(on_error="ignore")
    assert IngestConfig(window_samples=300).hop == 300


@needs_eegmat
def test_eegmat_crop_samples_equal_mne_cropped_recording(tmp_path):
    source = EEGMAT / "Subject03_2.edf"  # 62 s at 500 Hz
    crop = {"crop_start_seconds": 1.5, "crop_end_seconds": 2.5}
    report = ingest([source], tmp_path / "crop", window_samples=WINDOW, progress=False, **crop)
    _, table = read_recording(tmp_path / "crop" / report.written[0].file)
    raw = mne.io.read_raw_edf(source, preload=True, verbose="error").pick(["EEG Cz", "EEG O1"])
    cropped = raw.copy().crop(1.5, raw.times[-1] - 2.5)
    expected = (cropped.get_data() * 1e6).astype(np.float32)  # (2, n)
    n = expected.shape[1] // WINDOW
    assert expected.shape[1] == 31000 - 750 - 1250 and table.num_rows == n
    # window_start stays in the uncropped recording's samples
    np.testing.assert_array_equal(
        table.column("window_start").to_numpy(), 750 + np.arange(n) * WINDOW
    )
    for i, ch in enumerate(["CZ", "O1"]):
        np.testing.assert_array_equal(
            channel_array(table, ch), expected[i, : n * WINDOW].reshape(n, WINDOW)
        )
    record = json.loads((tmp_path / "crop" / "dataset.json").read_text())
    assert {k: record["options"][k] for k in crop} == crop
    assert {k: record["config"][k] for k in crop} == crop
    # Cropped after filtering: the filter's edge transient goes with the crop.
    ingest([source], tmp_path / "filt", window_samples=WINDOW, l_freq=1.0, progress=False, **crop)
    _, table = read_recording(tmp_path / "filt" / report.written[0].file)
    ref = raw.copy().filter(1.0, None, verbose="error").crop(1.5, raw.times[-1] - 2.5)
    ref = (ref.get_data() * 1e6).astype(np.float32)
    for i, ch in enumerate(["CZ", "O1"]):
        np.testing.assert_allclose(
            channel_array(table, ch), ref[i, : n * WINDOW].reshape(n, WINDOW), rtol=1e-5, atol=1e-3
        )


@needs_eegmat
def test_eegmat_crop_leaving_less_than_a_window_names_the_file(tmp_path):
    source = EEGMAT / "Subject03_2.edf"
    with pytest.raises(DatasetError, match=r"Subject03_2\.edf: cropping 30 s .* 31 s at the end"):
        ingest(
            [source],
            tmp_path / "out",
            window_samples=WINDOW,
            crop_start_seconds=30,
            crop_end_seconds=31,
            progress=False,
        )


def test_crop_options_validated_and_on_the_cli(tmp_path):
    for name in ("crop_start_seconds", "crop_end_seconds"):
        for bad in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=name):
                IngestConfig(**{name: bad})
    # No crop stays out of the fingerprint: datasets ingested before cropping still resume.
    assert "crop_end_seconds" not in IngestConfig().fingerprint()
    src = tmp_path / "csv"
    src.mkdir()
    _muse_csv(src / "participant7_rest.csv", gap=False)  # 12 s at 256 Hz
    out = tmp_path / "out"
    args = ["ingest", str(src), "--out", str(out), "--window-samples", "512", "--no-progress"]
    assert cli_main([*args, "--crop-start", "1", "--crop-end", "2"]) == 0
    _, table = read_recording(out / "sub-7_run-rest.parquet")
    # 12 - 1 - 2 = 9 s = 2304 samples: 4 windows, from sample 256
    np.testing.assert_array_equal(table.column("window_start").to_numpy(), 256 + 512 * np.arange(4))


@needs_eegmat
def test_eegmat_tapered_tails_are_near_duplicates_until_cropped(tmp_path):
    """The authors taper each recording's last ~2-3 s to zero; z-scored, those tails look
    alike across subjects, so a split by subject "leaks" at level 5 until they are cropped.
    Windows of 1000 samples (2 s) tile every recording (182 s, 62 s) to its last sample;
    1024-sample windows stop 0.6-1.8 s short of the end and miss the taper."""
    from eegwb.data.splits import SplitData, participant_selection, split_by_participant
    from eegwb.validation.leakage import audit_leakage

    sources = sorted(EEGMAT.glob("Subject0[0-3]_*.edf"))  # 4 subjects, both runs

    def near_duplicates(root: Path, **crop):
        ingest(sources, root, window_samples=1000, progress=False, **crop)
        index = recordings_index(root)
        assign = split_by_participant(index["participant"].unique().to_list(), fractions=(0.5, 0.5))
        splits = {k: SplitData(root, participant_selection(root, ps)) for k, ps in assign.items()}
        (check,) = [c for c in audit_leakage(splits).checks if c.name == "leakage/near_duplicate"]
        last_row = dict(index.select("file", "n_windows").iter_rows())
        return check, {n - 1 for n in last_row.values()}

    check, last_rows = near_duplicates(tmp_path / "whole")
    assert check.status == "fail" and check.count > 0, check.line()
    for example in check.examples:  # every pair is one recording's last window vs another's
        assert {example["train_row"], example["test_row"]} <= last_rows, example
    check, _ = near_duplicates(tmp_path / "cropped", crop_end_seconds=3)
    assert check.status == "pass" and check.count == 0, check.line()


def test_cli_config_then_set_then_flags(tmp_path):
    """`eegwb ingest --config F`: the YAML, then `--set`, then the flags, each over the last."""
    src = tmp_path / "csv"
    src.mkdir()
    _muse_csv(src / "participant7_rest.csv", gap=False)  # 12 s at 256 Hz
    config = tmp_path / "ingest.yaml"
    config.write_text("window_samples: 1024\ncrop_start_seconds: 1\ncrop_end_seconds: 1\n")
    out = tmp_path / "out"
    args = ["ingest", str(src), "--out", str(out), "--config", str(config), "--no-progress"]
    assert (
        cli_main(
            [*args, "--set", "window_samples=512", "--set", "crop_end_seconds=3", "--crop-end", "2"]
        )
        == 0
    )
    options = json.loads((out / "dataset.json").read_text())["options"]
    assert (
        options["window_samples"],
        options["crop_start_seconds"],
        options["crop_end_seconds"],
    ) == (512, 1.0, 2.0)
    # A bad key in the file is refused before any work, naming the file and the key.
    config.write_text("window_sampels: 1024\n")
    assert cli_main([*args, "--overwrite"]) == 2


@needs_eegmat
def test_eegmat_ingest_config_is_the_readme_command(tmp_path, monkeypatch):
    from eegwb.config import load_config

    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # its label path is from the repo root
    cfg = load_config(IngestConfig, "configs/ingest_eegmat.yaml")
    assert (cfg.sfreq, cfg.window_samples, cfg.crop_end_seconds) == (256.0, 2048, 3.0)
    assert cfg.run_labels == {"1": 0, "2": 1} and cfg.labels[0].endswith("subject-info.csv")
