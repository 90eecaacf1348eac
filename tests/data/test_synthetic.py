"""The synthetic cohort: manifest matches data, reproducible, and it looks like EEG."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch
from scipy.stats import mannwhitneyu

from eegwb.atomic import OutputExistsError
from eegwb.data.layout import channel_array, read_recording, recordings_index
from eegwb.data.montage import MONTAGES, electrode_positions
from eegwb.data.synthetic import (
    COHORT_KINDS,
    DEFECT_KINDS,
    QUANTUM_UV,
    SynthConfig,
    generate_cohort,
    read_manifest,
)

PER_RECORDING = [k for k in DEFECT_KINDS if k not in COHORT_KINDS]


def _load(root, name):
    """(meta, table, {channel: (n_windows, t) array}) of one recording file."""
    meta, table = read_recording(root / name)
    return meta, table, {ch: channel_array(table, ch) for ch in meta.channel_positions}


def _continuous(arrays, channels):
    """(c, n) signal of a non-overlapping recording: windows laid end to end."""
    return np.stack([arrays[ch].reshape(-1) for ch in channels]).astype(np.float64)


def _auc(scores, labels):
    """P(score of a label-1 participant > score of a label-0 one)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    u = mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    return u / ((labels == 1).sum() * (labels == 0).sum())


# ---------------------------------------------------------------- planted defects


@pytest.fixture(scope="module")
def defect_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("defects")
    cfg = SynthConfig(
        n_participants=6,
        runs_per_participant=2,
        window_samples=256,
        n_windows=8,
        defects=DEFECT_KINDS,
        seed=3,
    )
    manifest = generate_cohort(root, cfg, progress=False)
    return root, manifest


def _defect(manifest, kind):
    found = [d for d in manifest["defects"] if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_manifest_files_and_labels_match_data(defect_cohort):
    root, manifest = defect_cohort
    assert manifest == read_manifest(root)
    on_disk = sorted(p.name for p in root.glob("sub-*_run-*.parquet"))
    assert on_disk == sorted(f["file"] for f in manifest["files"])
    assert len(on_disk) == 12
    labels = {p["participant"]: p["label"] for p in manifest["participants"]}
    assert sorted(labels.values()) == [0, 0, 0, 1, 1, 1]  # balanced
    index = recordings_index(root)
    assert index.height == 12
    for row in index.iter_rows(named=True):
        assert json.loads(row["labels"]) == {"remission": labels[row["participant"]]}
        assert row["channels"] == MONTAGES["standard_1020"]
        assert row["source_file"] == "synthetic" and row["montage"] == "standard_1020"
    assert index["source_hash"].n_unique() == 12
    meta, _, _ = _load(root, on_disk[0])
    assert meta.channel_positions == electrode_positions(MONTAGES["standard_1020"])


def test_flat_channel_is_flat_exactly_where_recorded(defect_cohort):
    root, manifest = defect_cohort
    d = _defect(manifest, "flat_channel")
    _, _, arrays = _load(root, d["file"])
    x = arrays[d["channel"]]
    assert np.all(x[d["rows"]] == np.float32(d["value"]))
    other = [i for i in range(len(x)) if i not in d["rows"]]
    assert np.all(x[other].std(axis=1) > 1.0)  # the rest of the channel is live EEG


@pytest.mark.parametrize("kind, test", [("nan_stretch", np.isnan), ("inf_stretch", np.isinf)])
def test_nonfinite_stretch_where_recorded(defect_cohort, kind, test):
    root, manifest = defect_cohort
    d = _defect(manifest, kind)
    _, _, arrays = _load(root, d["file"])
    expected = np.zeros_like(arrays[d["channel"]], dtype=bool)
    s0, s1 = d["samples"]
    expected[d["rows"][0], s0:s1] = True
    assert s1 > s0
    for ch, x in arrays.items():
        assert np.array_equal(test(x), expected if ch == d["channel"] else np.zeros_like(expected))


def _copy_pair(defect_cohort, kind):
    """(defect, destination arrays, source arrays) of a planted copy."""
    root, manifest = defect_cohort
    d = _defect(manifest, kind)
    assert d["source"]["participant"] != d["participant"]  # copied across participants
    return d, _load(root, d["file"])[2], _load(root, d["source"]["file"])[2]


def test_duplicated_window_is_exact_copy_from_another_participant(defect_cohort):
    d, dest, source = _copy_pair(defect_cohort, "duplicated_windows")
    src = d["source"]
    for ch in MONTAGES["standard_1020"]:
        assert dest[ch][d["rows"][0]].tobytes() == source[ch][src["row"]].tobytes()
    # nothing else in the destination equals the source window
    others = [r for r in range(len(dest["FZ"])) if r != d["rows"][0]]
    assert not any(np.array_equal(dest["FZ"][r], source["FZ"][src["row"]]) for r in others)


def test_near_duplicate_is_close_but_not_identical(defect_cohort):
    d, dest, source = _copy_pair(defect_cohort, "near_duplicate")
    src = d["source"]
    cosines = []
    for ch in MONTAGES["standard_1020"]:
        a = dest[ch][d["rows"][0]].astype(np.float64)
        b = source[ch][src["row"]].astype(np.float64)
        assert not np.array_equal(a, b)
        cosines.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert min(cosines) >= 0.995
    assert min(cosines) == pytest.approx(d["min_cosine"], abs=1e-9)


def test_overlapping_windows_overlap_in_time_and_content(defect_cohort):
    root, manifest = defect_cohort
    d = _defect(manifest, "overlapping_windows")
    meta, table, arrays = _load(root, d["file"])
    hop, w = d["hop_samples"], d["window_samples"]
    assert meta.hop_samples == hop < w == meta.window_samples
    start = table.column("window_start").to_numpy()
    end = table.column("window_end").to_numpy()
    assert np.all(np.diff(start) == hop) and np.all(end[:-1] > start[1:])
    x = arrays["O1"]  # the shared half of two neighbouring windows holds the same samples
    np.testing.assert_array_equal(x[0, hop:], x[1, : w - hop])


def test_clean_files_are_finite_and_not_overlapping(defect_cohort):
    root, manifest = defect_cohort
    touched = {d["file"] for d in manifest["defects"] if d["kind"] in PER_RECORDING}
    clean = [f["file"] for f in manifest["files"] if f["file"] not in touched]
    assert len(clean) == 12 - len(PER_RECORDING)
    for name in clean:
        meta, table, arrays = _load(root, name)
        assert meta.hop_samples == meta.window_samples
        assert all(np.isfinite(x).all() for x in arrays.values())
        assert np.all(np.diff(table.column("window_start").to_numpy()) == meta.window_samples)


def test_amplitude_confound_scales_exactly_one_labels_recordings(tmp_path):
    small = {
        "n_participants": 4,
        "runs_per_participant": 2,
        "window_samples": 128,
        "n_windows": 2,
        "defects": ("nan_stretch",),
        "seed": 4,
    }
    plain = generate_cohort(tmp_path / "plain", SynthConfig(**small), progress=False)
    small["defects"] = ("amplitude_confound", "nan_stretch")
    confound = generate_cohort(tmp_path / "confound", SynthConfig(**small), progress=False)
    entry = _defect(confound, "amplitude_confound")
    assert entry["participants"] == [
        p["participant"] for p in plain["participants"] if p["label"] == 1
    ]
    assert entry["gain"] == 1.5 and entry["label"] == "remission"
    # the other defects land where they did without it
    assert _defect(confound, "nan_stretch") == _defect(plain, "nan_stretch")
    for f in plain["files"]:
        (_, _, a), (_, _, b) = (
            _load(tmp_path / "plain", f["file"]),
            _load(tmp_path / "confound", f["file"]),
        )
        gain = 1.5 if f["participant"] in entry["participants"] else 1.0
        for ch in a:
            np.testing.assert_array_equal(b[ch], np.round(a[ch] * gain / QUANTUM_UV) * QUANTUM_UV)


# ---------------------------------------------------------------- reproducibility


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    small = {"n_participants": 2, "runs_per_participant": 1, "window_samples": 128, "n_windows": 3}
    arrays = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        manifest = generate_cohort(tmp_path / name, SynthConfig(seed=seed, **small), progress=False)
        arrays[name] = [_load(tmp_path / name, f["file"])[2] for f in manifest["files"]]
    for first, second in zip(arrays["a"], arrays["b"]):
        assert all(first[ch].tobytes() == second[ch].tobytes() for ch in first)
    manifests = [(tmp_path / name / "manifest.json").read_bytes() for name in ("a", "b")]
    assert manifests[0] == manifests[1]
    assert not np.array_equal(arrays["a"][0]["CZ"], arrays["c"][0]["CZ"])


# ---------------------------------------------------------------- spectra and space


@pytest.fixture(scope="module")
def spectral_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("spectral")
    cfg = SynthConfig(
        n_participants=3,
        runs_per_participant=1,
        window_samples=1024,
        n_windows=8,
        line_noise_hz=60.0,
        seed=11,
    )
    return root, generate_cohort(root, cfg, progress=False)


def test_alpha_peak_at_recorded_frequency_on_posterior_sites(spectral_cohort):
    root, manifest = spectral_cohort
    channels = manifest["channels"]
    for person, f in zip(manifest["participants"], manifest["files"]):
        _, _, arrays = _load(root, f["file"])
        x = _continuous(arrays, ["O1", "O2", "PZ"])
        freqs, psd = welch(x, fs=256.0, nperseg=1024)  # 0.25 Hz bins
        band = (freqs >= 7) & (freqs <= 14)
        peak = freqs[band][np.argmax(psd[:, band].mean(0))]
        assert abs(peak - person["alpha_peak_hz"]) <= 0.5
        # posterior alpha is stronger than frontal alpha (topography)
        front = _continuous(arrays, ["FP1", "FP2"])
        _, psd_front = welch(front, fs=256.0, nperseg=1024)
        alpha = (freqs >= 8) & (freqs <= 12)
        assert psd[:, alpha].sum(1).mean() > 2 * psd_front[:, alpha].sum(1).mean()
    assert len(channels) == 19


def test_line_noise_at_configured_frequency(spectral_cohort):
    root, manifest = spectral_cohort
    _, _, arrays = _load(root, manifest["files"][0]["file"])
    freqs, psd = welch(_continuous(arrays, manifest["channels"]), fs=256.0, nperseg=1024)
    psd = psd.mean(0)

    def prominence(f0):  # power at f0 over the median of its 2-5 Hz neighbourhood
        i = np.argmin(np.abs(freqs - f0))
        near = (np.abs(freqs - f0) >= 2) & (np.abs(freqs - f0) <= 5)
        return psd[i] / np.median(psd[near])

    assert prominence(60.0) > 20
    assert prominence(50.0) < 3


def test_neighbouring_channels_share_more_signal(spectral_cohort):
    root, manifest = spectral_cohort
    channels = manifest["channels"]
    _, _, arrays = _load(root, manifest["files"][0]["file"])
    sos = butter(4, [1.0, 40.0], btype="bandpass", fs=256.0, output="sos")
    corr = np.corrcoef(sosfiltfilt(sos, _continuous(arrays, channels), axis=1))
    pos = np.array([electrode_positions(channels)[c] for c in channels])
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    upper = np.triu_indices(len(channels), 1)
    near, far = dist[upper] < 0.7, dist[upper] > 1.3
    assert near.sum() >= 10 and far.sum() >= 10
    assert corr[upper][near].mean() > corr[upper][far].mean() + 0.2


# ---------------------------------------------------------------- planted label effect


@pytest.fixture(scope="module")
def effect_pair(tmp_path_factory):
    """The same cohort with and without the label effect (same seed, so all else is equal)."""
    small = {
        "n_participants": 12,
        "runs_per_participant": 1,
        "window_samples": 512,
        "n_windows": 8,
        "seed": 2,
    }
    out = {}
    for size in (1.0, 0.0):
        root = tmp_path_factory.mktemp(f"effect{size}")
        cfg = SynthConfig(effect_size=size, **small)
        out[size] = (root, generate_cohort(root, cfg, progress=False))
    return out


def _band_power(arrays, channels, band):
    freqs, psd = welch(_continuous(arrays, channels), fs=256.0, nperseg=512)
    keep = (freqs >= band[0]) & (freqs <= band[1])
    return psd[:, keep].sum(1)  # (c,)


def test_effect_multiplies_band_power_only_where_planted(effect_pair):
    (root_e, manifest), (root_0, _) = effect_pair[1.0], effect_pair[0.0]
    effect = manifest["label"]
    assert effect["channels"] == ["F3", "FZ", "F4"] and effect["band_power_factor"] == 2.0
    others = [c for c in manifest["channels"] if c not in effect["channels"]]
    for person, f in zip(manifest["participants"], manifest["files"]):
        _, _, with_effect = _load(root_e, f["file"])
        _, _, null = _load(root_0, f["file"])
        for ch in others:
            np.testing.assert_array_equal(with_effect[ch], null[ch])
        ratio = _band_power(with_effect, effect["channels"], effect["band_hz"]) / _band_power(
            null, effect["channels"], effect["band_hz"]
        )
        expected = effect["band_power_factor"] if person["label"] == 1 else 1.0
        np.testing.assert_allclose(ratio, expected, rtol=0.1)


def test_effect_separates_labels_and_null_does_not(effect_pair):
    """Log band power of the effect channels relative to the central ones (which cancels each
    participant's alpha level and state): label groups differ with the effect, not without."""
    shift, aucs = {}, {}
    for size, (root, manifest) in effect_pair.items():
        effect = manifest["label"]
        scores, labels = [], []
        for person, f in zip(manifest["participants"], manifest["files"]):
            _, _, arrays = _load(root, f["file"])
            target = np.log(_band_power(arrays, effect["channels"], effect["band_hz"])).mean()
            central = np.log(_band_power(arrays, ["C3", "CZ", "C4"], effect["band_hz"])).mean()
            scores.append(target - central)
            labels.append(person["label"])
        scores, labels = np.array(scores), np.array(labels)
        shift[size] = scores[labels == 1].mean() - scores[labels == 0].mean()
        aucs[size] = _auc(scores, labels)
    planted = np.log(1.0 + 1.0)
    assert shift[1.0] > planted / 2 and aucs[1.0] >= 0.85
    assert abs(shift[0.0]) < planted / 2 and 0.15 <= aucs[0.0] <= 0.85


# ---------------------------------------------------------------- montages, config, output


@pytest.mark.parametrize("montage", ["muse", "standard_1010_64"])
def test_other_montages_generate(tmp_path, montage):
    cfg = SynthConfig(
        n_participants=2, runs_per_participant=1, montage=montage, window_samples=64, n_windows=2
    )
    manifest = generate_cohort(tmp_path, cfg, progress=False)
    meta, _, arrays = _load(tmp_path, manifest["files"][0]["file"])
    assert list(arrays) == MONTAGES[montage] == manifest["channels"]
    assert meta.montage == montage
    assert set(manifest["label"]["channels"]) <= set(MONTAGES[montage])
    assert all(np.isfinite(x).all() and x.std() > 0 for x in arrays.values())


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"montage": "standard_1005"}, "montage"),
        ({"montage": "muse", "effect_channels": ("O1",)}, "effect_channels"),
        ({"defects": ("flat_channel", "bogus")}, "defects"),
        ({"n_participants": 2, "runs_per_participant": 1, "defects": DEFECT_KINDS}, "defects"),
        ({"line_noise_hz": 55.0}, "line_noise_hz"),
        ({"effect_band_hz": (12.0, 8.0)}, "effect_band_hz"),
        ({"n_participants": 1}, "n_participants"),
        ({"n_windows": 4.0}, "n_windows"),
    ],
)
def test_config_errors_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=f"SynthConfig.{key}"):
        SynthConfig(**kwargs)


def test_config_accepts_comma_separated_names_and_json_round_trip():
    names = {"effect_channels": "af7, AF8", "defects": "flat_channel,inf_stretch"}
    cfg = SynthConfig(montage="muse", **names)
    assert cfg.effect_channels == ("AF7", "AF8")
    assert cfg.defects == ("flat_channel", "inf_stretch")
    assert SynthConfig(**json.loads(json.dumps(asdict(cfg)))) == cfg


def test_refuses_nonempty_output_and_overwrite_replaces(tmp_path):
    tiny = {"runs_per_participant": 1, "window_samples": 64, "n_windows": 2}
    generate_cohort(tmp_path, SynthConfig(n_participants=3, **tiny), progress=False)
    before = (tmp_path / "sub-01_run-1.parquet").read_bytes()
    with pytest.raises(OutputExistsError, match=str(tmp_path)):
        generate_cohort(tmp_path, SynthConfig(n_participants=2, seed=9, **tiny), progress=False)
    assert (tmp_path / "sub-01_run-1.parquet").read_bytes() == before  # untouched
    manifest = generate_cohort(
        tmp_path, SynthConfig(n_participants=2, seed=9, **tiny), overwrite=True, progress=False
    )
    assert sorted(p.name for p in tmp_path.glob("sub-*.parquet")) == [
        f["file"] for f in manifest["files"]
    ]  # the third participant's stale file is gone
    assert read_manifest(tmp_path)["config"]["seed"] == 9


def test_cli_synth(tmp_path, capsys):
    from eegwb.cli import main

    out = tmp_path / "cohort"
    argv = ["synth", "--out", str(out), "--participants", "4", "--montage", "muse"]
    argv += ["--window-samples", "128", "--n-windows", "3", "--defects", "flat_channel,nan_stretch"]
    argv += ["--effect-size", "0.5", "--seed", "4", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    manifest = read_manifest(out)
    assert f"wrote 8 recordings of 4 participants to {out}" in printed
    assert "flat_channel in" in printed and "nan_stretch in" in printed
    assert manifest["config"]["effect_size"] == 0.5 and manifest["montage"] == "muse"
    assert main(argv) == 2  # existing cohort, no --overwrite
    err = capsys.readouterr().err  # errors go to stderr
    assert "eegwb synth: error:" in err and "not empty" in err
    assert main(argv + ["--overwrite"]) == 0
