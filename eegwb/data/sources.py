"""EEG sources, found and read into an MNE `Raw` the same way, so ingest has one code path.

A source is a file MNE reads, a CSV export, a folder or a BIDS root. The parts, each
re-exported here: finding files and hashing them (`source_files.py`), participant and run
ids (`source_ids.py`), CSV exports (`csv_source.py`), the read Raw and its channels
(`raw_source.py`), label files (`labels_table.py`). Here: `read_source`, the one reader
ingest calls, and `preview_sources`, what ingest would find in each source, from headers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eegwb.data.csv_source import CSV_UNIT_SCALE, read_csv_raw
from eegwb.data.labels_table import (
    LabelTable,
    labels_for,
    parse_run_labels,
    parse_value,
    read_label_table,
)
from eegwb.data.layout import DatasetError
from eegwb.data.raw_source import RawSource, select_channels
from eegwb.data.source_files import (
    CSV_SUFFIXES,
    MNE_SUFFIXES,
    expand_sources,
    is_bids_root,
    is_supported,
    source_hash,
    source_suffix,
)
from eegwb.data.source_ids import (
    DEFAULT_PATTERN,
    Source,
    assign_ids,
    bids_entities,
    clean_id,
    source_ids,
)

__all__ = [
    "CSV_SUFFIXES",
    "CSV_UNIT_SCALE",
    "DEFAULT_PATTERN",
    "MNE_SUFFIXES",
    "LabelTable",
    "RawSource",
    "Source",
    "SourceInfo",
    "assign_ids",
    "bids_entities",
    "clean_id",
    "expand_sources",
    "is_bids_root",
    "is_supported",
    "join_reasons",
    "labels_for",
    "parse_run_labels",
    "parse_value",
    "preview_frame",
    "preview_sources",
    "read_csv_raw",
    "read_label_table",
    "read_source",
    "select_channels",
    "source_hash",
    "source_ids",
]

_TRUNCATED = "does not match the file size"  # MNE's warning for a truncated EDF/BDF


def read_source(
    source: Source, *, preload: bool = True, csv_time_unit: str = "auto", csv_units: str = "uV"
) -> RawSource:
    """Read one source into MNE; errors become DatasetError naming the file."""
    if source.format == "csv":
        return read_csv_raw(source.path, time_unit=csv_time_unit, units=csv_units)
    import mne

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = mne.io.read_raw(source.path, preload=preload, verbose="warning")
        except Exception as err:  # MNE raises ValueError/OSError/KeyError... for bad files
            raise DatasetError(
                f"{source.path}: cannot read with MNE ({type(err).__name__}: {err})"
            ) from err
    notes = [str(w.message) for w in caught]
    truncated = [n for n in notes if _TRUNCATED in n]
    if truncated:
        raise DatasetError(f"{source.path}: truncated or corrupt file ({truncated[0]})")
    return RawSource(raw, notes=[f"reader: {n}" for n in notes])


@dataclass
class SourceInfo:
    """What preview found in one source (header only; `error` set instead of raising)."""

    path: str
    format: str
    participant: str | None = None
    run: str | None = None
    id_source: str = ""
    sfreq: float | None = None
    n_samples: int | None = None
    duration_s: float | None = None
    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # repaired on the way (jittered timestamps)
    error: str | None = None


def preview_sources(
    sources: Iterable[str | Path] | str | Path,
    *,
    participant_pattern: str | None = None,
    channels: Sequence[str] | None = None,
    csv_time_unit: str = "auto",
    csv_units: str = "uV",
) -> list[SourceInfo]:
    """One SourceInfo per recording found: ids, rate, duration, channels kept/dropped and why.

    Reads headers only (CSV files are read whole); a bad file gets `error`, not an exception.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    required = [c.upper() for c in channels] if channels is not None else None
    infos = []
    paths = expand_sources(sources)
    for path, src in zip(paths, assign_ids(paths, participant_pattern)):
        suffix = source_suffix(path)
        info = SourceInfo(str(path), "csv" if suffix in CSV_SUFFIXES else suffix.lstrip("."))
        try:
            if isinstance(src, DatasetError):
                raise src
            info.participant, info.run, info.id_source = src.participant, src.run, src.id_source
            rs = read_source(src, preload=False, csv_time_unit=csv_time_unit, csv_units=csv_units)
            info.sfreq, info.n_samples = float(rs.raw.info["sfreq"]), int(rs.raw.n_times)
            info.duration_s, info.notes = info.n_samples / info.sfreq, rs.notes
            info.warnings = rs.warnings
            kept, info.dropped = select_channels(path, rs, required)
            info.kept = list(kept.values())
        except DatasetError as err:
            info.error = str(err)
        infos.append(info)
    return infos


def preview_frame(infos: Sequence[SourceInfo]) -> pl.DataFrame:  # noqa: F821
    """SourceInfos as a Polars table for notebooks (one row per source)."""
    import polars as pl

    first = ("participant", "run", "id_source", "sfreq", "duration_s")
    rows = [
        {"file": Path(i.path).name, "format": i.format}
        | {c: getattr(i, c) for c in first}
        | {"n_kept": len(i.kept), "kept": ", ".join(i.kept), "dropped": join_reasons(i.dropped)}
        | {"warnings": "; ".join(i.warnings), "notes": "; ".join(i.notes)}
        | {"error": i.error or "", "path": i.path}
        for i in infos
    ]
    floats = {"sfreq": pl.Float64, "duration_s": pl.Float64}
    return pl.DataFrame(
        rows, schema_overrides={"participant": pl.String, "run": pl.String} | floats
    )


def join_reasons(dropped: dict[str, str]) -> str:
    """{'ECG ECG': 'ECG (heart), not EEG'} -> 'ECG ECG: ECG (heart), not EEG' (tables)."""
    return "; ".join(f"{name}: {why}" for name, why in dropped.items())
