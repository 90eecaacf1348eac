"""Channel names: normalise them to upper-case 10-20/10-10 labels and keep only scalp EEG.

Recording software spells the same electrode many ways ('EEG Fp1', 'EEG FP1-REF',
'Fp1-LE', 'RAW_TP9', 'T3'); the dataset layout stores one spelling: upper-case, no
prefix or reference suffix, modern 10-10 names (T3/T4/T5/T6 -> T7/T8/P7/P8, as MNE's
standard montages and the ACNS 2006 guideline use). Non-EEG signals (ECG, EOG, EMG,
triggers, headset auxiliaries) and derivations between two electrodes ('A2-A1',
'FP1-F7') have no single scalp position, so ingest drops them with the reason returned
here.
"""

from __future__ import annotations

import re

# Old 10-20 names -> 10-10 names (same sites).
OLD_TO_NEW = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}

# Suffixes that name the recording reference, not a second electrode: 'FP1-REF' is FP1.
REFERENCE_SUFFIXES = frozenset({"REF", "LE", "RE", "AVG", "AV", "AR", "CAR", "LINKED", "MEAN"})
# Ear / mastoid sites: as a suffix they are the reference ('FP1-A1' is FP1 referenced to
# the left ear); as the first part ('A2-A1') the channel is a reference derivation.
EAR_SITES = frozenset({"A1", "A2", "M1", "M2", "A1A2", "M1M2"})

_PREFIX = re.compile(r"^(?:EEG|RAW)[\s_:]+", re.IGNORECASE)
# An electrode label: letters then a number (optionally 10-05 'h') or 'Z' (FP1, AF7, TP10,
# FCZ, AFF1H, E23). Used to recognise 'X-Y' derivations between two electrodes.
_ELECTRODE = re.compile(r"^[A-Z]{1,4}(?:\d{1,3}H?|Z)$")

# Muse's 'Right AUX' (Mind Monitor: AUX_RIGHT, AUX_LEFT): a socket for an extra electrode
# the user places anywhere; without one it records noise. Kept only when asked for by name.
AUX_REASON = (
    "auxiliary input (an optional extra electrode socket, noise without one), not a scalp "
    "electrode; name it in --channels (the channels option) to keep it"
)

# (pattern on the upper-cased name, reason). Checked in order; first match wins.
_NON_EEG_NAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), reason)
    for p, reason in (
        (r"ECG|EKG", "ECG (heart), not EEG"),
        (r"EOG|^(?:EEG\s*)?(?:LOC|ROC)\b", "EOG (eye movement), not EEG"),
        (r"EMG|CHIN", "EMG (muscle), not EEG"),
        (r"STI|TRIG|STATUS|EVENT|MARKER", "stimulus/trigger channel, not EEG"),
        (r"AUX", AUX_REASON),
        (r"ACC|GYRO|MAGN", "motion sensor (accelerometer/gyroscope), not EEG"),
        (r"^[XYZ]$", "motion axis (muse-lsl's ACC/GYRO streams), not EEG"),
        (
            r"PPG|PLETH|SPO2|SAO2|PULSE|RESP|PHOTIC|\bIBI\b|BURSTS|SUPPR|\bHR\b|HEART",
            "physiological/auxiliary signal, not EEG",
        ),
        (r"OPTICS|FNIRS", "optical (fNIRS/PPG) sensor, not EEG"),
        (r"MELLOW|CONCENTRATION", "headset app score, not EEG"),
        (r"^(?:DELTA|THETA|ALPHA|BETA|GAMMA)_", "band-power column (not raw EEG samples)"),
        (r"TIMESTAMP|^TIME$", "timestamp column, not EEG"),
        (r"HSI|HEADBAND|BATTERY|ELEMENTS", "headset status column, not EEG"),
    )
)


def normalise_channel_name(raw: str) -> str:
    """'EEG Fp1' -> 'FP1', 'EEG T3-LE' -> 'T7', 'Fp1-A1' -> 'FP1', 'RAW_TP9' -> 'TP9'.

    Strips a leading 'EEG '/'RAW_' and a reference suffix ('-REF', '-LE', '-AVG', an
    ear/mastoid site), removes spaces and trailing dots (PhysioNet 'Fc5.'), upper-cases,
    and maps T3/T4/T5/T6 to T7/T8/P7/P8. A derivation such as 'A2-A1' keeps both parts.
    """
    name = _PREFIX.sub("", raw.strip())
    name = re.sub(r"\s+", "", name).upper().rstrip(".")
    if "-" in name:
        head, _, tail = name.rpartition("-")
        if tail in REFERENCE_SUFFIXES or (tail in EAR_SITES and head not in EAR_SITES):
            name = head
    return "-".join(OLD_TO_NEW.get(part, part) for part in name.split("-"))


def classify_channel(raw: str, kind: str | None = None) -> tuple[str | None, str]:
    """(normalised name, "kept") for a scalp EEG channel, else (None, why it is dropped).

    `kind` is MNE's channel type (`raw.get_channel_types()`); anything but 'eeg' is
    dropped. Names are checked too, because EDF files type every signal as 'eeg'
    (eegmat's 'ECG ECG', 'EEG A2-A1').
    """
    if kind is not None and kind.lower() != "eeg":
        return None, f"MNE channel type {kind!r}, not EEG"
    upper = raw.strip().upper()
    if not upper:
        return None, "empty channel name"
    for pattern, reason in _NON_EEG_NAMES:
        if pattern.search(upper):
            return None, reason
    name = normalise_channel_name(raw)
    if not name:
        return None, "empty channel name"
    parts = name.split("-")
    if len(parts) > 1:
        if all(_ELECTRODE.match(p) for p in parts):
            pair = " and ".join(parts)
            return None, f"derivation between electrodes {pair} (no single scalp site)"
        return None, f"unrecognised channel name {raw!r} (contains '-')"
    return name, "kept"
