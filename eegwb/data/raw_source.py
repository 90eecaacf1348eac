"""A source read into MNE (`RawSource`) and the choice of its channels (`select_channels`).

Every reader (`sources.read_source`: MNE formats, `csv_source.read_csv_raw`: CSV exports)
returns a `RawSource`. Channel names are normalised and non-EEG signals dropped by
`channels.classify_channel`; channels marked bad in the file, or not in the requested list,
are dropped too, each with its reason. A channel dropped by its name (Muse's 'Right AUX')
is kept when the requested list names it: the user knows what they plugged in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eegwb.data.channels import classify_channel, normalise_channel_name
from eegwb.data.layout import DatasetError


@dataclass
class RawSource:
    """What a reader returns: the Raw, channels dropped before MNE saw them, notes, and
    warnings (what was repaired and the user should know: jittered timestamps)."""

    raw: mne.io.BaseRaw  # noqa: F821 (mne is imported lazily)
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def select_channels(
    path: Path, rs: RawSource, required: Sequence[str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """({raw name: normalised name} kept, {raw name: reason} dropped) for one source."""
    kept: dict[str, str] = {}
    dropped = dict(rs.dropped)
    bads = set(rs.raw.info["bads"])
    if required is not None:
        required = list(dict.fromkeys(normalise_channel_name(c) for c in required))
    for raw_name, kind in zip(rs.raw.ch_names, rs.raw.get_channel_types()):
        name, reason = classify_channel(raw_name, kind)
        asked = required is not None and normalise_channel_name(raw_name) in required
        if name is None and asked and kind == "eeg":
            name = normalise_channel_name(raw_name)
        if name is None:
            dropped[raw_name] = reason
        elif raw_name in bads:
            dropped[raw_name] = "marked bad in the source file (MNE info['bads'])"
        elif required is not None and name not in required:
            dropped[raw_name] = "not in the requested channel list"
        else:
            kept[raw_name] = name
    by_name: dict[str, list[str]] = {}
    for raw_name, name in kept.items():
        by_name.setdefault(name, []).append(raw_name)
    dupes = {name: raws for name, raws in by_name.items() if len(raws) > 1}
    if dupes:
        detail = "; ".join(f"{name} <- {raws}" for name, raws in dupes.items())
        raise DatasetError(f"{path}: duplicated channels after name normalisation ({detail})")
    if required is not None:
        missing = [c for c in required if c not in by_name]
        if missing:
            raise DatasetError(f"{path}: missing channels {missing} (found {sorted(by_name)})")
    if not kept:
        raise DatasetError(f"{path}: no EEG channels (dropped: {dropped})")
    return kept, dropped
