"""`IngestConfig`: every option that decides what ingest writes, validated, and its fingerprint.

The fingerprint (options plus the hashes of the files they name) goes into `dataset.json`;
a re-run resumes only where it is unchanged (see `ingest.py`). CSV options are explained in
`csv_source.py`, id patterns in `source_ids.py`, label files in `labels_table.py`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from eegwb.data.csv_source import CSV_UNIT_SCALE
from eegwb.data.source_files import source_hash
from eegwb.data.source_ids import clean_id


@dataclass
class IngestConfig:
    """Everything that decides what ingest writes (all of it goes into dataset.json)."""

    window_samples: int = 2048  # the original pipeline's window (8 s at 256 Hz)
    hop_samples: int | None = None  # None = window_samples: no overlap, no shared samples
    sfreq: float | None = None  # resample to this rate (Hz); None keeps each source's rate
    l_freq: float | None = None  # band-pass high-pass edge (Hz); None = no high-pass
    h_freq: float | None = None  # band-pass low-pass edge (Hz); None = no low-pass
    notch_hz: float | None = None  # line frequency (50/60 Hz); its harmonics below Nyquist too
    # Seconds dropped from each recording's start/end after filtering: edges tapered by the
    # data's authors (eegmat's last ~2-3 s fade to 0) look alike across people once z-scored,
    # which the leakage audit rightly flags as cross-subject near-duplicates; 0 keeps all.
    crop_start_seconds: float = 0.0
    crop_end_seconds: float = 0.0
    participant_pattern: str | None = None  # regex with named groups participant[, run]
    labels: tuple[str, ...] = ()  # CSV files: participant[, run] + label columns
    run_labels: dict[str, object] | None = None  # run id -> label value, e.g. {"1": 0, "2": 1}
    run_label_name: str = "task"  # the label name run_labels is stored under
    channels: tuple[str, ...] | None = None  # required channels (normalised); others dropped
    elc_path: str | None = None  # ASA .elc positions instead of MNE's standard montage
    csv_time_unit: str = "auto"  # "s", "ms" or "auto" (see csv_source.py)
    csv_units: str = "uV"  # unit of CSV channel columns: "uV", "mV" or "V"
    on_error: str = "raise"  # "raise" stops at the first bad source; "skip" reports it and goes on

    def __post_init__(self) -> None:
        if int(self.window_samples) <= 0 or int(self.hop) <= 0:
            raise ValueError(
                f"IngestConfig.window_samples ({self.window_samples}) and hop_samples "
                f"({self.hop_samples}) must be > 0"
            )
        for name in ("sfreq", "l_freq", "h_freq", "notch_hz"):
            value = getattr(self, name)
            if value is not None and not float(value) > 0:
                raise ValueError(f"IngestConfig.{name} must be > 0 or None, got {value}")
        for name in ("crop_start_seconds", "crop_end_seconds"):
            value = float(getattr(self, name))
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"IngestConfig.{name} must be a finite number >= 0, got {value}")
            setattr(self, name, value)
        if self.l_freq and self.h_freq and self.l_freq >= self.h_freq:
            raise ValueError(
                f"IngestConfig: l_freq {self.l_freq} must be below h_freq {self.h_freq}"
            )
        if self.participant_pattern:
            try:
                groups = re.compile(self.participant_pattern).groupindex
            except re.error as err:
                raise ValueError(f"IngestConfig.participant_pattern is not a regex: {err}") from err
            if "participant" not in groups:
                raise ValueError("IngestConfig.participant_pattern needs a (?P<participant>) group")
        choices = {"on_error": ("raise", "skip"), "csv_time_unit": ("auto", "s", "ms")}
        for name, allowed in {**choices, "csv_units": tuple(CSV_UNIT_SCALE)}.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"IngestConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        self.labels = tuple(str(p) for p in self.labels)
        for path in (*self.labels, *([self.elc_path] if self.elc_path else [])):
            if not Path(path).is_file():
                raise ValueError(f"{path}: file does not exist")
        if self.run_labels is not None:
            self.run_labels = {clean_id(k): v for k, v in self.run_labels.items()}
        if self.channels is not None:
            self.channels = tuple(str(c).upper() for c in self.channels)

    @property
    def hop(self) -> int:
        """Samples between window starts (hop_samples, or window_samples when None)."""
        return self.window_samples if self.hop_samples is None else self.hop_samples

    def fingerprint(self) -> dict[str, object]:
        """The options that change the output, plus hashes of the files they name."""
        out = {k: v for k, v in asdict(self).items() if k != "on_error"} | {"hop_samples": self.hop}
        # Files by content, not by path: the same labels read from elsewhere change nothing.
        out["labels"] = [source_hash(Path(p)) for p in self.labels]
        out["elc_path"] = source_hash(Path(self.elc_path)) if self.elc_path else None
        # No crop is left out, so datasets ingested before cropping existed still resume.
        for name in ("crop_start_seconds", "crop_end_seconds"):
            if not out[name]:
                del out[name]
        return json.loads(json.dumps(out, sort_keys=True))
