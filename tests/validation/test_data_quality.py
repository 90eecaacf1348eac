"""Data-quality checks: the synthetic cohort's planted defects are found where its manifest
says, hand-planted signals (line noise, shifted band power, shared samples, bad positions,
skewed labels) are found, and clean data passes."""

from __future__ import annotations

import numpy as np
import pytest

from eegwb.data.layout import write_recording
from eegwb.data.splits import SplitData, participant_selection, resolve_selectors
from eegwb.validation.data_quality import QualityConfig, run_quality
from eegwb.validation.spectra import bh_adjust, consecutive_overlap, line_noise_ratio, welch_psd
from eegwb.validation.split_compare import label_checks, labels_table

SYNTH = {
    "n_participants": 6,
    "runs_per_participant": 2,
    "sfreq": 128.0,
    "window_samples": 256,
    "n_windows": 6,
    "seed": 5,
}
CH = ("FZ", "CZ", "PZ", "OZ")


def checks_of(report):
    return {c.name: c for c in report.checks}


@pytest.fixture(scope="module")
def defect_cohort(tmp_path_factory):
    from eegwb.data.synthetic import DEFECT_KINDS, SynthConfig, generate_cohort

    root = tmp_path_factory.mktemp("q") / "synth"
    kinds = ("flat_channel", "nan_stretch", "inf_stretch", "overlapping_windows")
    assert set(kinds) <= set(DEFECT_KINDS)
    manifest = generate_cohort(root, SynthConfig(**SYNTH, defects=kinds), progress=False)
    everyone = sorted({f["participant"] for f in manifest["files"]})
    splits = {
        "train": SplitData(root, participant_selection(root, everyone[:3])),
        "test": SplitData(root, participant_selection(root, everyone[3:])),
    }
    return manifest, run_quality(splits)


def defect(manifest, kind):
    return next(d for d in manifest["defects"] if d["kind"] == kind)


def test_flat_channel_found_where_planted(defect_cohort):
    manifest, report = defect_cohort
    d, c = defect(manifest, "flat_channel"), checks_of(report)["quality/flat"]
    assert c.status == "warn" and c.count == 1
    ex = c.examples[0]
    assert (ex["file"], ex["channel"]) == (d["file"], d["channel"])
    assert ex["n_flat_windows"] == len(d["rows"]) and ex["first_flat_row"] == d["rows"][0]


def test_nan_and_inf_stretches_found_and_fail(defect_cohort):
    manifest, report = defect_cohort
    c = checks_of(report)["quality/non_finite"]
    assert c.status == "fail" and c.count == 2
    found = {(e["file"], e["channel"]): e for e in c.examples}
    for kind, col in (("nan_stretch", "n_nan"), ("inf_stretch", "n_inf")):
        d = defect(manifest, kind)
        ex = found[(d["file"], d["channel"])]
        assert ex[col] == d["samples"][1] - d["samples"][0] and ex["first_bad_row"] == d["rows"][0]


def test_overlapping_windows_detected_from_content(defect_cohort):
    manifest, report = defect_cohort
    d, c = defect(manifest, "overlapping_windows"), checks_of(report)["quality/window_overlap"]
    assert c.status == "warn" and [e["file"] for e in c.examples] == [d["file"]]
    assert c.examples[0]["overlap_fraction"] == pytest.approx(
        1 - d["hop_samples"] / d["window_samples"], abs=0.01
    )


def test_tables_cover_every_split_and_channel(defect_cohort):
    manifest, report = defect_cohort
    assert set(report.spectra["split"]) == {"train", "test"}
    assert set(report.spectra["channel"]) == set(manifest["channels"])
    assert report.channel_stats.height == len(manifest["files"]) * len(manifest["channels"])
    # The cohort's mains line (manifest) stands out of the spectrum; at 128 Hz the other
    # mains frequency + 6 Hz is past Nyquist, so it is not measured (NaN), not guessed.
    assert manifest["config"]["line_noise_hz"] == 50.0
    assert report.channel_stats["line_ratio_50"].median() > 10
    assert report.channel_stats["line_ratio_60"].is_nan().all()
    assert checks_of(report)["quality/line_noise"].status == "warn"


def test_clean_cohort_passes(tmp_path):
    from eegwb.data.synthetic import SynthConfig, generate_cohort

    generate_cohort(tmp_path, SynthConfig(**SYNTH), progress=False)
    report = run_quality({"all": SplitData(tmp_path)})
    status = {c.name: c.status for c in report.checks}
    for name in (
        "quality/non_finite",
        "quality/flat",
        "quality/window_overlap",
        "quality/montage",
        "quality/normalisation",
    ):
        assert status[name] == "pass", name


def _noise(rng, n=6, t=256):
    return rng.standard_normal((n, t)).astype(np.float32) * 10


def test_undeclared_overlap_fails(tmp_path, recording_table):
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal(7 * 128 + 256)) + rng.standard_normal(7 * 128 + 256) * 3
    shared = np.stack([x[i * 128 : i * 128 + 256] for i in range(8)]).astype(np.float32)
    # window_start says 0, 256, 512... (no overlap) but windows share half their samples.
    write_recording(tmp_path, recording_table("01", "1", {c: shared for c in CH}))
    write_recording(tmp_path, recording_table("02", "1", {c: _noise(rng) for c in CH}))
    c = checks_of(run_quality({"all": SplitData(tmp_path)}))["quality/window_overlap"]
    assert c.status == "fail" and [e["file"] for e in c.examples] == ["sub-01_run-1.parquet"]


def test_line_noise_labels_and_band_shift(tmp_path, recording_table):
    rng = np.random.default_rng(1)
    sfreq, t = 128.0, 256
    time_s = np.arange(t) / sfreq
    for i in range(8):
        for run in ("1", "2"):  # the test unit is the recording: 8 per side
            gain = 3.0 if i >= 4 else 1.0  # participants 04-07: 3x alpha amplitude
            alpha = gain * 20 * np.sin(2 * np.pi * 10 * time_s + rng.uniform(0, 6, (6, 1)))
            sig = {c: (_noise(rng) + alpha).astype(np.float32) for c in CH}
            if i == 0 and run == "1":  # mains on one channel of one recording
                sig["OZ"] = sig["OZ"] + (30 * np.sin(2 * np.pi * 50 * time_s)).astype(np.float32)
            labels = {"group": "case" if i >= 4 else "control", "age": 20 + i}
            write_recording(
                tmp_path, recording_table(f"{i:02d}", run, sig, sfreq=sfreq, labels=labels)
            )
    splits = {
        "low": SplitData(tmp_path, participant_selection(tmp_path, ["00", "01", "02", "03"])),
        "high": SplitData(tmp_path, participant_selection(tmp_path, ["04", "05", "06", "07"])),
    }
    checks = checks_of(run_quality(splits, QualityConfig(alpha=0.05)))
    line = checks["quality/line_noise"]
    assert line.count == 1 and (line.examples[0]["file"], line.examples[0]["channel"]) == (
        "sub-00_run-1.parquet",
        "OZ",
    )
    assert (
        checks["quality/label/group"].status == "warn"
        and checks["quality/label/group"].numbers["test"] == "chi-square"
    )
    assert checks["quality/label/age"].numbers["test"] == "KS (Bonferroni)"
    shift = checks["quality/band_shift"]
    assert shift.status == "warn" and all(e["band"] == "alpha" for e in shift.examples)
    assert shift.count == len(CH)  # alpha on every channel, nothing else
    # Mixed splits: same labels and alpha on both sides -> nothing to report.
    mixed = {
        "a": SplitData(tmp_path, participant_selection(tmp_path, ["00", "01", "04", "05"])),
        "b": SplitData(tmp_path, participant_selection(tmp_path, ["02", "03", "06", "07"])),
    }
    checks = checks_of(run_quality(mixed, QualityConfig(alpha=0.05)))
    assert (
        checks["quality/band_shift"].status == "pass"
        and checks["quality/label/group"].status == "pass"
    )


def _label_checks_with_runs(root, write_cohort, n_runs):
    """Splits a (3 cases, 1 control) and b (1 case, 3 controls), each participant with
    `n_runs` recordings; task is a per-run label (rest in run 1, arithmetic after)."""
    people = [f"{i:02d}" for i in range(8)]
    cases = {0, 1, 2, 4}

    def labels(p, r):
        group = "case" if p in cases else "control"
        return {"group": group, "age": 20 + 3 * p, "task": "rest" if r == 0 else "arith"}

    runs = [str(r + 1) for r in range(n_runs)]
    write_cohort(root, participants=people, runs=runs, n_windows=2, labels=labels)
    splits = {
        "a": SplitData(root, participant_selection(root, people[:4])),
        "b": SplitData(root, participant_selection(root, people[4:])),
    }
    return {c.name: c for c in label_checks(labels_table(splits), alpha=0.05)}


def test_label_balance_counts_participants_not_recordings(tmp_path, write_cohort):
    one = _label_checks_with_runs(tmp_path / "one_run", write_cohort, 1)
    three = _label_checks_with_runs(tmp_path / "three_runs", write_cohort, 3)
    for name in ("quality/label/group", "quality/label/age"):
        assert three[name].numbers["p_value"] == pytest.approx(one[name].numbers["p_value"])
        assert three[name].numbers["unit"] == "participant"
    assert three["quality/label/group"].numbers["counts"] == {  # keys are JSON values
        "a": {'"case"': 3, '"control"': 1},
        "b": {'"case"': 1, '"control"': 3},
    }
    # A label that varies within a participant keeps one row per recording, and says so.
    task = three["quality/label/task"]
    assert task.numbers["unit"] == "recording" and "varies within participants" in task.summary
    assert task.numbers["counts"] == {s: {'"arith"': 8, '"rest"': 4} for s in ("a", "b")}


def test_montage_problems_named(tmp_path, recording_table):
    rng = np.random.default_rng(2)
    good = {"FZ": [0.0, 0.7, 0.7], "CZ": [0.0, 0.0, 1.0]}
    write_recording(
        tmp_path, recording_table("01", "1", {c: _noise(rng) for c in good}, positions=good)
    )
    bad = {"FZ": [0.0, 0.7, 0.7], "XQ1": [0.0, 0.0, 3.0]}
    write_recording(
        tmp_path, recording_table("02", "1", {c: _noise(rng) for c in bad}, positions=bad)
    )
    c = checks_of(
        run_quality({"all": SplitData(tmp_path, resolve_selectors(tmp_path, ["01", "02"]))})
    )["quality/montage"]
    problems = {e["problem"].split(" (")[0]: e for e in c.examples}
    assert c.status == "warn"
    assert problems["positions off the unit sphere"]["channels"] == ["XQ1"]
    assert problems["no standard position"]["channels"] == ["XQ1"]
    assert "2 different channel sets across files" in problems


def test_spectral_helpers_known_answers():
    sfreq, t = 256.0, 1024
    time_s = np.arange(t) / sfreq
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, t)) + np.array([[0.0], [5.0], [0.0]]) * np.sin(
        2 * np.pi * 60 * time_s
    )
    x[2, 5] = np.nan
    freqs, psd = welch_psd(x, sfreq)
    r60 = line_noise_ratio(freqs, psd, 60.0)
    assert r60[1] > 100 and r60[0] < 5 and np.isnan(r60[2])
    q = bh_adjust(np.array([0.01, 0.04, np.nan, 0.03]))
    assert np.isnan(q[2]) and np.allclose(q[[0, 1, 3]], [0.03, 0.04, 0.04])
    walk = np.cumsum(rng.standard_normal(2000))
    a = np.stack([walk[0:200], walk[400:600]])
    b = np.stack([walk[150:350], walk[600:800]])  # first pair shares 50 samples, second none
    corr, frac = consecutive_overlap(a, b)
    assert corr[0] == pytest.approx(1.0) and frac[0] == pytest.approx(0.25) and corr[1] < 0.9
