"""Channel-name rules, on invented spellings and on eegmat's real EDF channel names."""

from pathlib import Path

import pytest

from eegwb.data.channels import classify_channel, normalise_channel_name

EEGMAT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eegmat"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("EEG Fp1", "FP1"),
        ("EEG T3-LE", "T7"),
        ("EEG T4", "T8"),
        ("T5", "P7"),
        ("EEG T6-REF", "P8"),
        ("EEG FP1-REF", "FP1"),
        ("Cz-AVG", "CZ"),
        ("Fp1-A1", "FP1"),
        ("Fc5.", "FC5"),
        ("RAW_TP9", "TP9"),
        (" eeg  Oz ", "OZ"),
        ("EEG A2-A1", "A2-A1"),
        ("FP1-F7", "FP1-F7"),
    ],
)
def test_normalise_channel_name(raw, expected):
    assert normalise_channel_name(raw) == expected


@pytest.mark.parametrize(
    "raw, kind, fragment",
    [
        ("ECG ECG", None, "ECG"),
        ("EEG EKG1-REF", None, "ECG"),
        ("EOG left", None, "EOG"),
        ("EEG ROC-REF", None, "EOG"),
        ("EMG chin", None, "EMG"),
        ("STI 014", None, "trigger"),
        ("Right AUX", None, "auxiliary"),
        ("Accelerometer_X", None, "motion"),
        ("SaO2", None, "physiological"),
        ("SpO2", None, "physiological"),
        ("Alpha_AF7", None, "band-power"),
        ("timestamps", None, "timestamp"),
        ("EEG A2-A1", None, "derivation"),
        ("FP1-F7", None, "derivation"),
        ("EEG Fp1", "eog", "'eog'"),
        ("Fz", "misc", "'misc'"),
    ],
)
def test_classify_drops_non_eeg_with_reason(raw, kind, fragment):
    name, reason = classify_channel(raw, kind)
    assert name is None
    assert fragment in reason


@pytest.mark.parametrize("raw", ["TP9", "AF7", "AF8", "TP10", "EEG T3", "EEG Pz", "Fp1-A1", "A1"])
def test_classify_keeps_scalp_eeg(raw):
    name, reason = classify_channel(raw, "eeg")
    assert reason == "kept"
    assert name == normalise_channel_name(raw)


def test_eegmat_channel_names():
    """The 21 EDF signals: 19 scalp channels kept under 10-10 names, A2-A1 and ECG dropped."""
    files = sorted(EEGMAT.glob("*.edf")) if EEGMAT.is_dir() else []
    if not files:
        pytest.skip(f"eegmat data not found at {EEGMAT} (expected ../shared beside the repo)")
    import mne

    raw = mne.io.read_raw_edf(files[0], preload=False, verbose="error")
    results = [classify_channel(n, k) for n, k in zip(raw.ch_names, raw.get_channel_types())]
    kept = [n for n, reason in results if reason == "kept"]
    dropped = {raw_name for raw_name, (n, _) in zip(raw.ch_names, results) if n is None}
    assert dropped == {"EEG A2-A1", "ECG ECG"}
    assert len(kept) == 19 and len(set(kept)) == 19
    assert {"T7", "T8", "P7", "P8"} <= set(kept)
    assert not {"T3", "T4", "T5", "T6"} & set(kept)
    from eegwb.data.montage import MONTAGES

    assert set(kept) == set(MONTAGES["standard_1020"])
