"""Finding EEG recordings: which files are sources, how folders and BIDS roots are searched.

A source is a file MNE reads (EDF, BDF, GDF, FIF, BrainVision `.vhdr`, EEGLAB `.set`,
Neuroscan `.cnt`), a CSV export with a timestamp column (`csv_source.py`), a folder
(searched recursively; CSVs without a timestamp column are labels or metadata, CSVs without
an EEG column another sensor's stream (muse-lsl's ACC, GYRO, PPG files): both are left out
and listed), or a BIDS root (`sub-*/[ses-*/]eeg/*_eeg.*`; `derivatives/` and `sourcedata/`
are skipped). `source_hash` identifies a source by its bytes, so a re-run can skip it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import xxhash

from eegwb.data.csv_source import csv_header, eeg_columns, time_column
from eegwb.data.layout import DatasetError

MNE_SUFFIXES = (".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".vhdr", ".set", ".cnt")
CSV_SUFFIXES = (".csv",)
# Files whose samples live in a sibling file: hash those bytes too.
_COMPANIONS = {".vhdr": (".vmrk", ".eeg"), ".set": (".fdt",)}
_BIDS_SKIP = {"derivatives", "sourcedata", "code"}


def source_suffix(path: Path) -> str:
    """The lower-case format suffix, '.fif.gz' as one."""
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def source_stem(path: Path) -> str:
    """The file name without its format suffix (`source_suffix`)."""
    return path.name[: -len(source_suffix(path))] if source_suffix(path) else path.name


def is_supported(path: Path) -> bool:
    return source_suffix(path) in MNE_SUFFIXES + CSV_SUFFIXES


def is_bids_root(folder: Path) -> bool:
    if (folder / "dataset_description.json").is_file():
        return True
    return any(folder.glob("sub-*/eeg")) or any(folder.glob("sub-*/ses-*/eeg"))


def _bids_files(root: Path) -> list[Path]:
    files = [*root.glob("sub-*/eeg/*_eeg.*"), *root.glob("sub-*/ses-*/eeg/*_eeg.*")]
    return sorted(p for p in files if is_supported(p) and source_suffix(p) != ".csv")


def _not_a_recording(path: Path) -> str | None:
    """Why a CSV in a folder is no EEG recording (None: it is one), from its header."""
    header = csv_header(path)
    time_col = time_column(header)
    if time_col is None:
        return "CSV without a timestamp column (labels/metadata?), not a recording"
    if not eeg_columns([c for c in header if c != time_col]):
        shown = ", ".join(c for c in header if c != time_col)[:80]
        return f"CSV without EEG columns ({shown}: another sensor's stream?), not a recording"
    return None


def _folder_files(folder: Path, ignored: dict[Path, str]) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") or part in _BIDS_SKIP for part in rel):
            continue
        # FIF split parts (`x_raw-1.fif`) are read through their first file.
        if path.is_file() and is_supported(path) and not re.search(r"-\d+\.fif(\.gz)?$", path.name):
            why = _not_a_recording(path) if source_suffix(path) in CSV_SUFFIXES else None
            if why:
                ignored[path.resolve()] = why
                continue
            found.append(path)
    return found


def expand_sources(
    sources: Iterable[str | Path], ignored: dict[Path, str] | None = None
) -> list[Path]:
    """Every recording file named by `sources` (files, folders, BIDS roots), sorted, no repeats.

    CSVs inside folders without a timestamp column are left out and listed in `ignored`.
    """
    sources = list(sources)
    if not sources:
        raise DatasetError("no sources given (files, folders or BIDS roots)")
    files: list[Path] = []
    ignored = {} if ignored is None else ignored
    for given in sources:
        path = Path(given)
        if not path.exists():
            raise DatasetError(f"{path}: source does not exist")
        if path.is_file():
            if not is_supported(path):
                raise DatasetError(
                    f"{path}: unsupported source format {source_suffix(path)!r} "
                    f"(expected one of {', '.join(MNE_SUFFIXES + CSV_SUFFIXES)})"
                )
            found = [path]
        else:
            found = _bids_files(path) if is_bids_root(path) else _folder_files(path, ignored)
            if not found:
                raise DatasetError(f"{path}: no EEG recordings found in this folder")
        files.extend(p.resolve() for p in found)
    return sorted(dict.fromkeys(files))


def source_hash(path: Path) -> str:
    """xxh3_128 hex digest of the file's bytes (then of its sample files: `.eeg`, `.fdt`)."""
    digest = xxhash.xxh3_128()
    companions = [path.with_suffix(s) for s in _COMPANIONS.get(source_suffix(path), ())]
    for part in [path, *(p for p in companions if p.is_file())]:
        with open(part, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()
