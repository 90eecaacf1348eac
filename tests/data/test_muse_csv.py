"""Muse CSV exports as the tools write them: muse-lsl / eeg-notebooks (timestamps rounded to
the ms, repeated and jittered stamps, dropouts, Marker columns, the direct-recording variant),
Mind Monitor (date-time stamps in bursts, RAW_ columns, event rows), subject/session names."""

from __future__ import annotations

import csv
import datetime
import logging
from pathlib import Path

import numpy as np
import pytest

from eegwb.data.ingest import ingest, preview_frame, preview_sources
from eegwb.data.layout import DatasetError, channel_array, read_recording, recordings_index

MUSE = ["TP9", "AF7", "AF8", "TP10"]
HEADER = ["timestamps", *MUSE, "Right AUX"]


def _values(n: int, seed: int = 0) -> np.ndarray:
    """(n, 5) µV around Muse's ~800 µV offset, written to 3 decimals as muse-lsl does."""
    return np.round(np.random.default_rng(seed).standard_normal((n, 5)) * 30 + 800, 3)


def _write(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _muse_lsl(path: Path, stamps: np.ndarray, values: np.ndarray, *, markers=None) -> None:
    """muse-lsl's `record`: `timestamps,TP9,AF7,AF8,TP10,Right AUX[,Marker0]`, '%.3f'."""
    header = HEADER + (["Marker0"] if markers is not None else [])
    rows = []
    for i, (t, row) in enumerate(zip(stamps, values)):
        extra = [int(markers[i])] if markers is not None else []
        rows.append([f"{t:.3f}", *(f"{v:.3f}" for v in row), *extra])
    _write(path, header, rows)


def _stamps(n: int, *, start: float = 1.5e9) -> np.ndarray:
    return start + np.arange(n) / 256.0


def _segments(out: Path, name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    _, table = read_recording(out / name)
    return (table.column("window_start").to_numpy(), table.column("parent_window_id").to_numpy(),
            {ch: channel_array(table, ch) for ch in MUSE})  # fmt: skip


def test_repeated_and_jittered_timestamps_rebuilt_at_256_hz_with_a_warning(tmp_path):
    """A 2017-style export: 117 repeated stamps and ±1 ms jitter stop nothing; every sample
    lands in order on a 256 Hz grid and the warning counts the repeats."""
    n = 256 * 40
    rng = np.random.default_rng(1)
    stamps = _stamps(n) + rng.uniform(-1e-3, 1e-3, n)
    repeats = np.sort(rng.choice(np.arange(72, n - 1, 3), size=117, replace=False))
    stamps[repeats] = np.round(stamps[repeats - 1], 3)  # the stamp of the row before
    values = _values(n)
    _muse_lsl(tmp_path / "src" / "subject101_session1_recording_2017-02-04-20.45.33.csv",
              stamps, values)  # fmt: skip
    report = ingest([tmp_path / "src"], tmp_path / "out", window_samples=256, progress=False)
    (result,) = report.written
    assert (result.participant, result.run, result.sfreq) == ("101", "1", 256.0)
    (warning,) = report.warnings
    assert "subject101_session1" in warning and "117 repeated" in warning
    assert "rebuilt at 256 Hz" in warning
    starts, parents, stored = _segments(tmp_path / "out", result.file)
    np.testing.assert_array_equal(parents, 0)  # jitter is no dropout
    np.testing.assert_array_equal(starts, 256 * np.arange(40))
    for i, ch in enumerate(MUSE):
        np.testing.assert_allclose(stored[ch].ravel(), values[:, i], rtol=1e-6)
    # unix-clock stamps date the recording (1.5e9 s: 14 July 2017, UTC); the audit reads it
    assert recordings_index(tmp_path / "out")["meas_date"][0].startswith("2017-07-14T02:")


def test_packet_stamped_export_splits_only_at_the_real_dropout(tmp_path):
    """Early muse-lsl stamped each 12-sample packet on arrival and extrapolated back: stamps
    repeat and step back by tens of ms at packet edges. A 2 s dropout still splits."""
    n = 256 * 30
    rng = np.random.default_rng(2)
    packet = np.arange(n) // 12
    arrival = (packet + 1) * 12 / 256 + np.abs(rng.normal(0.02, 0.01, packet.max() + 1))[packet]
    stamps = 1.5e9 + arrival - (11 - np.arange(n) % 12) / 256
    stamps[n // 2 :] += 2.0  # samples n/2 ... came after 2 s of nothing
    values = _values(n, seed=2)
    _muse_lsl(tmp_path / "src" / "subject7_session2_recording_x.csv", stamps, values)
    report = ingest([tmp_path / "src"], tmp_path / "out", window_samples=256, progress=False)
    (result,) = report.written
    assert any("1 dropout (2 s" in note for note in result.notes), result.notes
    assert any("stepping back" in w for w in report.warnings)
    starts, parents, stored = _segments(tmp_path / "out", result.file)
    # 15 windows before the dropout (sample 3840 = n/2), 15 after it.
    np.testing.assert_array_equal(parents, [0] * 15 + [1] * 15)
    np.testing.assert_array_equal(starts[15:], n // 2 + 256 * np.arange(15))
    np.testing.assert_allclose(stored["AF8"], values[:, 2][starts[:, None] + np.arange(256)],
                               rtol=1e-6)  # fmt: skip


def test_time_running_backwards_is_refused_naming_file_and_line(tmp_path):
    stamps = _stamps(256 * 10)
    stamps[1000:] -= 3.0  # a clock reset, or two recordings joined
    path = tmp_path / "subject1_session1_recording_a.csv"
    _muse_lsl(path, stamps, _values(len(stamps)))
    where = str(path) + r": time runs backwards by 2\.99\d* s at line 1002"
    with pytest.raises(DatasetError, match=where):
        ingest([path], tmp_path / "out", window_samples=256, progress=False)
    report = ingest([path], tmp_path / "skip", window_samples=256, progress=False, on_error="skip")
    assert report.failed and "time runs backwards" in report.failed[0].reason


def test_muse_rate_far_from_256_hz_is_refused(tmp_path):
    """Samples at 128 per second are not a raw Muse stream, or half the samples are lost."""
    path = tmp_path / "subject1_session1_recording_a.csv"
    _muse_lsl(path, 1.5e9 + np.arange(128 * 20) / 128.0, _values(128 * 20))
    far = r"timestamps give 128 samples/s, more than 1% from a Muse's 256 or 220 Hz"
    with pytest.raises(DatasetError, match=far):
        ingest([path], tmp_path / "out", window_samples=256, progress=False)


def test_aux_dropped_with_its_reason_where_channel_decisions_show(tmp_path, caplog):
    """Preview table, ingest report table and the ingest log all say why 'Right AUX' went;
    naming it in `channels` keeps it."""
    src = tmp_path / "src"
    _muse_lsl(src / "subject1_session1_recording_a.csv", _stamps(256 * 8), _values(256 * 8))
    preview = preview_frame(preview_sources(src))
    assert preview["kept"].to_list() == ["TP9, AF7, AF8, TP10"]
    assert "Right AUX: auxiliary input" in preview["dropped"][0]
    assert "name it in --channels" in preview["dropped"][0]
    with caplog.at_level(logging.INFO, logger="eegwb.data.ingest"):
        report = ingest([src], tmp_path / "out", window_samples=256, progress=False)
    frame = report.to_frame()
    assert frame["channels"].to_list() == ["TP9, AF7, AF8, TP10"]
    assert "Right AUX: auxiliary input" in frame["dropped"][0]
    assert "dropped 'Right AUX' in 1 of 1 written sources: auxiliary input" in caplog.text
    (asked,) = preview_sources(src, channels=[*MUSE, "Right AUX"])
    assert asked.kept == [*MUSE, "RIGHTAUX"] and "Right AUX" not in asked.dropped


def test_subject_session_names_and_folders(tmp_path):
    """Flat eeg-notebooks names and its `subjectNNNN/sessionNNN/recording_...` folders: one
    participant per subject; two recordings in one session get distinct long run ids."""
    src = tmp_path / "src"
    n = 256 * 4
    for name in ("subject101_session1_recording_2017-09-13-15.30.01.csv",
                 "subject101_session2_recording_2017-09-14-10.00.00.csv",
                 "eegnb/subject0002/session001/recording_2020-01-01-12.00.00.csv",
                 "eegnb/subject0002/session001/recording_2020-01-01-12.10.00.csv"):  # fmt: skip
        _muse_lsl(src / name, _stamps(n), _values(n))
    report = ingest([src], tmp_path / "out", window_samples=256, progress=False)
    assert not report.failed and not report.warnings
    assert sorted((r.participant, r.run) for r in report.written) == [
        ("0002", "ses001recording20200101120000"),
        ("0002", "ses001recording20200101121000"),
        ("101", "1"),
        ("101", "2"),
    ]
    ids = {(i.participant, i.run, i.id_source) for i in preview_sources(src / "eegnb")}
    assert ("0002", "ses001recording20200101120000", "subject/session folders") in ids


def test_marker_columns_and_direct_recording_variant(tmp_path):
    """muse-lsl's `record` with a Markers stream adds Marker0; its `record_direct` writes a
    pandas index first and `timestamps` last; eeg-notebooks through brainflow writes full
    precision and a `stim` column. All give the same four channels and samples."""
    n = 256 * 4
    values, stamps = _values(n), _stamps(n)
    markers = np.zeros(n, dtype=int)
    markers[[100, 600]] = [1, 2]
    src = tmp_path / "src"
    _muse_lsl(src / "subject1_session1_recording_a.csv", stamps, values, markers=markers)
    _write(src / "subject1_session2_recording_b.csv", ["", *HEADER[1:], "timestamps"],
           [[i, *(f"{v:.3f}" for v in row), f"{t:.3f}"]
            for i, (t, row) in enumerate(zip(stamps, values))])  # fmt: skip
    _write(
        src / "subject1_session3_recording_c.csv",
        ["timestamps", *MUSE, "stim"],
        [[repr(float(t)), *row[:4], int(m)] for t, row, m in zip(stamps, values, markers)],
    )
    report = ingest([src], tmp_path / "out", window_samples=256, progress=False)
    by_run = {r.run: r for r in report.written}
    assert by_run["1"].channels == by_run["2"].channels == by_run["3"].channels == MUSE
    assert "trigger" in by_run["1"].dropped["Marker0"]
    assert "row index" in by_run["2"].dropped["column 1 (unnamed)"]
    assert "trigger" in by_run["3"].dropped["stim"]
    for run in ("1", "2", "3"):
        _, _, stored = _segments(tmp_path / "out", f"sub-1_run-{run}.parquet")
        np.testing.assert_allclose(stored["TP10"].ravel(), values[:, 3], rtol=1e-6)


def _mind_monitor(path: Path, n: int, *, seed: int = 0, dropout_at: int | None = None):
    """Mind Monitor 'every packet': date-time stamps, one per 12-sample burst on arrival,
    band powers beside RAW_ samples, sensors, and an Elements event row with nothing else."""
    rng = np.random.default_rng(seed)
    packet = np.arange(n) // 12
    arrival = (packet + 1) * 12 / 256 + np.abs(rng.normal(0.03, 0.01, packet.max() + 1))[packet]
    arrival = np.maximum.accumulate(arrival)
    if dropout_at is not None:
        arrival[dropout_at:] += 1.5
    raw = np.round(rng.uniform(700, 900, (n, 4)), 3)
    bands = [f"{b}_{ch}" for b in ("Delta", "Theta", "Alpha", "Beta", "Gamma") for ch in MUSE]
    sensors = [f"{s}_{axis}" for s in ("Accelerometer", "Gyro") for axis in "XYZ"]
    header = ["TimeStamp", *bands, *(f"RAW_{ch}" for ch in MUSE), "AUX_RIGHT", *sensors,
              "HeadBandOn", *(f"HSI_{ch}" for ch in MUSE), "Battery", "Elements"]  # fmt: skip
    t0 = datetime.datetime(2025, 7, 1, 14, 56, 5)
    empty = [""] * (len(header) - 2)
    rows = [[str(t0), *empty, "/muse/event/connected MuseS-84AC"]]
    for i in range(n):
        stamp = (t0 + datetime.timedelta(seconds=float(arrival[i]))).isoformat(" ", "milliseconds")
        rows.append([stamp, *np.round(rng.random(20), 4), *raw[i], 800.0, 0.1, 0.2, 0.9,
                     1.0, 2.0, 3.0, 1, 1, 1, 1, 1, 80, ""])  # fmt: skip
        if i == n // 3:
            rows.append([stamp, *empty, "/muse/elements/blink"])
    _write(path, header, rows)
    return raw


def test_mind_monitor_raw_columns_bursts_and_event_rows(tmp_path):
    n = 256 * 30
    raw = _mind_monitor(tmp_path / "src" / "sub01_rest.csv", n, dropout_at=n // 2)
    report = ingest([tmp_path / "src"], tmp_path / "out", window_samples=256, progress=False)
    (result,) = report.written
    assert result.channels == MUSE and result.sfreq == 256.0
    for column, fragment in (("Alpha_AF7", "band-power"), ("AUX_RIGHT", "auxiliary"),
                             ("Accelerometer_X", "motion"), ("HSI_TP9", "status"),
                             ("Elements", "status"), ("HeadBandOn", "status")):  # fmt: skip
        assert fragment in result.dropped[column], (column, result.dropped[column])
    assert any("2 rows without EEG values" in note for note in result.notes)
    assert any("as date-times" in note for note in result.notes)
    assert any("timestamps jitter" in w for w in report.warnings)  # bursts: stamps repeat
    starts, parents, stored = _segments(tmp_path / "out", result.file)
    # Bursts of 12 are no dropout; the 1.5 s one at sample n/2 is: 15 + 15 windows.
    np.testing.assert_array_equal(parents, [0] * 15 + [1] * 15)
    np.testing.assert_allclose(stored["AF7"], raw[:, 1][starts[:, None] + np.arange(256)],
                               rtol=1e-6)  # fmt: skip


def test_mind_monitor_summary_rate_is_refused(tmp_path):
    """Recorded at a 1 s interval, RAW_ columns hold one value a second: not EEG."""
    path = tmp_path / "sub01_rest.csv"
    t0 = datetime.datetime(2025, 7, 1, 14, 56, 5)
    rows = [
        [(t0 + datetime.timedelta(seconds=i)).isoformat(" ", "milliseconds"), 1, 2, 3, 4]
        for i in range(60)
    ]
    _write(path, ["TimeStamp", *(f"RAW_{ch}" for ch in MUSE)], rows)
    with pytest.raises(DatasetError, match=str(path) + r": timestamps give 1 samples/s"):
        ingest([path], tmp_path / "out", window_samples=256, progress=False)


def test_stamps_per_chunk_are_refused(tmp_path):
    """One stamp per second of samples cannot show where a dropout was."""
    n = 256 * 10
    path = tmp_path / "sub01_rest.csv"
    _muse_lsl(path, 1.5e9 + np.repeat(np.arange(10.0), 256), _values(n))
    with pytest.raises(DatasetError, match=r"timestamps stand still for 256 samples from line 2"):
        ingest([path], tmp_path / "out", window_samples=256, progress=False)


def test_other_sensor_streams_in_a_folder_are_left_out_with_a_reason(tmp_path):
    """muse-lsl records ACC, GYRO and PPG to their own CSVs beside the EEG one."""
    src = tmp_path / "src"
    n = 256 * 4
    _muse_lsl(src / "subject1_session1_recording_a.csv", _stamps(n), _values(n))
    _write(src / "subject1_session1_ACC_recording_a.csv", ["timestamps", "X", "Y", "Z"],
           [[f"{1.5e9 + i / 52:.3f}", 0.1, 0.2, 0.9] for i in range(200)])  # fmt: skip
    report = ingest([src], tmp_path / "out", window_samples=256, progress=False)
    assert len(report.written) == 1
    (warning,) = report.warnings
    assert "ACC_recording_a.csv: ignored: CSV without EEG columns (X, Y, Z" in warning


def test_labels_merged_from_two_files_and_a_labels_csv_in_the_folder(tmp_path):
    """Two labels files, each with some participants: no 'no row' warning for a recording
    either covers. A labels CSV in the source folder passed as labels says nothing; not
    passed, it is named as a labels table, not 'a CSV without a timestamp column'."""
    src = tmp_path / "src"
    n = 256 * 4
    for p in (1, 2, 3):
        _muse_lsl(src / f"subject{p}_session1_recording_a.csv", _stamps(n), _values(n))
    info = src / "subject-info.csv"
    info.write_text("Subject,group\nsubject1,0\nsubject2,1\n")
    more = tmp_path / "more-subjects.csv"
    more.write_text("Subject,group\nsubject3,1\nsubject9,0\n")
    report = ingest([src], tmp_path / "out", window_samples=256, progress=False,
                    labels=(str(info), str(more)))  # fmt: skip
    assert report.warnings == [f"{more}: rows for participants ['9'] match no source"]
    index = recordings_index(tmp_path / "out")
    assert sorted(index["labels"].to_list()) == ['{"group": 0}', '{"group": 1}', '{"group": 1}']
    alone = ingest([src], tmp_path / "alone", window_samples=256, progress=False,
                   labels=(str(info),))  # fmt: skip
    assert alone.warnings == [f"{info}: no row for recordings ['3/1'] (labels ['group'] missing)"]
    unused = ingest([src], tmp_path / "unused", window_samples=256, progress=False)
    (hint,) = unused.warnings
    assert hint.startswith(f"{info.resolve()}: a labels table (participant column 'Subject')")
    assert "timestamp" not in hint
