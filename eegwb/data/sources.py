"""Finding EEG sources and reading each into an MNE `Raw`, so ingest has one code path.

A source is a file MNE reads (EDF, BDF, GDF, FIF, BrainVision `.vhdr`, EEGLAB `.set`,
Neuroscan `.cnt`), a CSV export (a timestamp column plus one column per channel, e.g.
Muse: `timestamps,TP9,AF7,AF8,TP10,Right AUX`), a folder (searched recursively), or a
BIDS root (`sub-*/[ses-*/]eeg/*_eeg.*`; `derivatives/` and `sourcedata/` are skipped).

Participant and run ids come, in this order, from a user regex with named groups
(`participant`, optional `run`), the BIDS entities of a `sub-...` file name (`run-`, else
`task-`; BIDS numbers runs per task and session, so where that id repeats within a
participant, session + task + run is used: 'ses1rest2', see `assign_ids`), the
default pattern `SubjectNN_R` / `sub01_run2` / `alice_rest`, or else the file stem
(participant) with run "1". Every id is cleaned the same way (`clean_id`), and label
CSVs are matched through it too, so `Subject00` in a labels file meets `Subject00_1.edf`.

CSV units: channel columns are read as microvolts (`csv_units` scales other units) and
turned into volts for MNE's `RawArray`, so ingest scales every source back to µV
identically. Timestamps are seconds or milliseconds (`csv_time_unit`; "auto" reads a
median step >= 0.1 as milliseconds, since a 10 Hz rate is not EEG); sfreq is 1 / the
median step; a step > 1.5x the median is a recording gap and becomes a zero-length
`BAD_gap` annotation, which ingest treats as a segment boundary.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

from eegwb.data.channels import classify_channel
from eegwb.data.layout import DatasetError

MNE_SUFFIXES = (".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".vhdr", ".set", ".cnt")
CSV_SUFFIXES = (".csv",)
# Files whose samples live in a sibling file: hash those bytes too.
_COMPANIONS = {".vhdr": (".vmrk", ".eeg"), ".set": (".fdt",)}
_BIDS_SKIP = {"derivatives", "sourcedata", "code"}
_ID_PREFIX = re.compile(r"^(?:sub(?:ject)?|participant)(?:[-_ ]|(?=\d))", re.IGNORECASE)
_MNE_STEM_SUFFIX = re.compile(r"[-_](?:raw|eeg)$", re.IGNORECASE)  # MNE's 'x_raw.fif' convention
DEFAULT_PATTERN = re.compile(
    r"^(?:sub(?:ject)?|participant)?[-_ ]?(?P<participant>[A-Za-z0-9]+?)[-_ ]"
    r"(?:run[-_]?)?(?P<run>[A-Za-z0-9]+)$",
    re.IGNORECASE,
)
CSV_UNIT_SCALE = {"uV": 1.0, "mV": 1e3, "V": 1e6}  # multiply by this to get µV
_TRUNCATED = "does not match the file size"  # MNE's warning for a truncated EDF/BDF
CSV_GAP_FACTOR = 1.5  # a timestamp step this many medians long is a dropout


@dataclass
class Source:
    """One recording to ingest, with the ids it will be stored under."""

    path: Path
    format: str  # "mne" or "csv"
    participant: str
    run: str
    id_source: str  # "pattern", "bids", "default pattern" or "file stem"
    entities: dict[str, str] = field(default_factory=dict)  # BIDS session/task when present
    long_run: str = ""  # BIDS: session + task + run, used when `run` alone repeats


@dataclass
class RawSource:
    """What a reader returns: the Raw, channels dropped before MNE saw them, notes."""

    raw: "mne.io.BaseRaw"  # noqa: F821 (mne is imported lazily)
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def clean_id(value: str) -> str:
    """'sub-01' -> '01', 'Subject00' -> '00', 'sub7' -> '7', 'p 7/a' -> 'p7a' (alphanumeric)."""
    value = str(value).strip()
    stripped = _ID_PREFIX.sub("", value)
    return re.sub(r"[^A-Za-z0-9]", "", stripped or value)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def _stem(path: Path) -> str:
    return path.name[: -len(_suffix(path))] if _suffix(path) else path.name


def is_supported(path: Path) -> bool:
    return _suffix(path) in MNE_SUFFIXES + CSV_SUFFIXES


def is_bids_root(folder: Path) -> bool:
    if (folder / "dataset_description.json").is_file():
        return True
    return any(folder.glob("sub-*/eeg")) or any(folder.glob("sub-*/ses-*/eeg"))


def _bids_files(root: Path) -> list[Path]:
    files = [*root.glob("sub-*/eeg/*_eeg.*"), *root.glob("sub-*/ses-*/eeg/*_eeg.*")]
    return sorted(p for p in files if is_supported(p) and _suffix(p) != ".csv")


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        return next(csv.reader(fh), [])


def _folder_files(folder: Path, ignored: dict[Path, str]) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") or part in _BIDS_SKIP for part in rel):
            continue
        # FIF split parts (`x_raw-1.fif`) are read through their first file.
        if path.is_file() and is_supported(path) and not re.search(r"-\d+\.fif(\.gz)?$", path.name):
            if _suffix(path) in CSV_SUFFIXES and _time_column(_csv_header(path)) is None:
                ignored[path.resolve()] = (
                    "CSV without a timestamp column (labels/metadata?), not a recording"
                )
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
                    f"{path}: unsupported source format {_suffix(path)!r} "
                    f"(expected one of {', '.join(MNE_SUFFIXES + CSV_SUFFIXES)})"
                )
            found = [path]
        else:
            found = _bids_files(path) if is_bids_root(path) else _folder_files(path, ignored)
            if not found:
                raise DatasetError(f"{path}: no EEG recordings found in this folder")
        files.extend(p.resolve() for p in found)
    return sorted(dict.fromkeys(files))


def bids_entities(stem: str) -> dict[str, str]:
    """'sub-01_task-rest_run-1_eeg' -> {'sub': '01', 'task': 'rest', 'run': '1'}"""
    out = {}
    for part in stem.split("_"):
        key, sep, value = part.partition("-")
        if sep and value:
            out[key] = value
    return out


def source_ids(path: Path, pattern: re.Pattern[str] | None = None) -> Source:
    """Participant and run for one file (see the module docstring for the order of rules)."""
    stem = _stem(path)
    fmt = "csv" if _suffix(path) in CSV_SUFFIXES else "mne"
    if pattern is not None:
        match = pattern.search(path.name)
        if match is None:
            raise DatasetError(
                f"{path}: file name does not match participant pattern {pattern.pattern!r}"
            )
        groups = match.groupdict()
        participant, run = clean_id(groups["participant"] or ""), clean_id(groups.get("run") or "1")
        source = Source(path, fmt, participant, run, "pattern")
    elif stem.lower().startswith("sub-"):
        ent = bids_entities(stem)
        # BIDS EEG names always carry task-; ses- and run- are optional.
        run = clean_id(ent.get("run") or ent.get("task") or "1")
        parts = (
            f"ses{ent['ses']}" if "ses" in ent else "",
            ent.get("task", ""),
            ent.get("run", ""),
        )
        entities = {k: ent[v] for k, v in (("session", "ses"), ("task", "task")) if v in ent}
        participant = clean_id(ent.get("sub", ""))
        long_run = "".join(clean_id(p) for p in parts) or run
        source = Source(path, fmt, participant, run, "bids", entities, long_run)
    elif (match := DEFAULT_PATTERN.match(stem := _MNE_STEM_SUFFIX.sub("", stem))) is not None:
        source = Source(
            path, fmt, clean_id(match["participant"]), clean_id(match["run"]), "default pattern"
        )
    else:
        source = Source(path, fmt, clean_id(stem), "1", "file stem")
    if not source.participant or not source.run:
        raise DatasetError(
            f"{path}: empty participant or run id ({source.participant!r}, {source.run!r})"
        )
    return source


def assign_ids(
    paths: Sequence[Path], participant_pattern: str | None
) -> list[Source | DatasetError]:
    """`source_ids` for every path (an error in place of a file without ids); a BIDS run id
    that repeats within a participant becomes its long form (session + task + run)."""
    pattern = re.compile(participant_pattern) if participant_pattern else None
    out: list[Source | DatasetError] = []
    for path in paths:
        try:
            out.append(source_ids(path, pattern))
        except DatasetError as err:
            out.append(err)
    sources = [s for s in out if isinstance(s, Source)]
    counts = Counter((s.participant, s.run) for s in sources)
    for s in sources:
        if s.id_source == "bids" and counts[(s.participant, s.run)] > 1:
            s.run = s.long_run
    return out


def source_hash(path: Path) -> str:
    """xxh3_128 hex digest of the file's bytes (then of its sample files: `.eeg`, `.fdt`)."""
    digest = xxhash.xxh3_128()
    companions = [path.with_suffix(s) for s in _COMPANIONS.get(_suffix(path), ())]
    for part in [path, *(p for p in companions if p.is_file())]:
        with open(part, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


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


def _time_column(columns: Sequence[str]) -> str | None:
    for name in columns:
        if "time" in name.lower():
            return name
    return None


def _csv_sfreq(path: Path, stamps: np.ndarray, time_unit: str) -> tuple[float, np.ndarray, str]:
    """(sfreq Hz, indices where a gap starts, note) from the timestamp column."""
    steps = np.diff(stamps)
    if len(steps) < 2 or not np.isfinite(steps).all():
        raise DatasetError(f"{path}: timestamp column has fewer than 3 finite values")
    bad = np.flatnonzero(steps <= 0)
    if len(bad):
        raise DatasetError(
            f"{path}: timestamps do not increase (row {int(bad[0]) + 2} of the data)"
        )
    median = float(np.median(steps))
    unit = time_unit if time_unit != "auto" else ("ms" if median >= 0.1 else "s")
    step_s = median / 1000.0 if unit == "ms" else median
    sfreq = 1.0 / step_s
    if abs(sfreq - round(sfreq)) / sfreq < 0.005:  # LSL jitter around a nominal rate
        sfreq = float(round(sfreq))
    gaps = np.flatnonzero(steps > CSV_GAP_FACTOR * median) + 1
    note = f"timestamps read as {unit} ({time_unit}); median step {median:g} -> sfreq {sfreq:g} Hz"
    return sfreq, gaps, note


def read_csv_raw(path: Path, *, time_unit: str = "auto", units: str = "uV") -> RawSource:
    """A timestamp + channels CSV as an MNE RawArray (volts), gaps annotated `BAD_gap`."""
    import mne
    import polars as pl

    try:
        frame = pl.read_csv(path, infer_schema_length=10_000)
    except Exception as err:  # polars raises ComputeError/NoDataError... for bad CSVs
        raise DatasetError(f"{path}: cannot read CSV ({type(err).__name__}: {err})") from err
    time_col = _time_column(frame.columns)
    if time_col is None:
        raise DatasetError(f"{path}: no timestamp column (a column whose name contains 'time')")
    dropped: dict[str, str] = {}
    numeric = []
    for name in frame.columns:
        if name == time_col:
            continue
        if frame.schema[name].is_numeric():
            numeric.append(name)
        else:
            dropped[name] = f"non-numeric CSV column ({frame.schema[name]})"
    if not numeric:
        raise DatasetError(f"{path}: no numeric channel columns")
    notes = []
    # Marker/event rows of headset exports carry a timestamp but no samples.
    empty = frame.select(pl.all_horizontal(pl.col(numeric).is_null())).to_series()
    if empty.any():
        notes.append(
            f"{int(empty.sum())} rows without any channel value (event/marker rows) ignored"
        )
        frame = frame.filter(~empty)
    stamps = frame[time_col].cast(pl.Float64).to_numpy()
    sfreq, gaps, note = _csv_sfreq(path, stamps, time_unit)
    notes.append(note)
    data = frame.select(pl.col(numeric).cast(pl.Float64)).to_numpy().T  # (c, n) in `units`
    data = data * (CSV_UNIT_SCALE[units] * 1e-6)  # -> volts, MNE's unit for EEG
    info = mne.create_info(numeric, sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    if len(gaps):
        notes.append(
            f"{len(gaps)} timestamp gaps (> {CSV_GAP_FACTOR}x median step) split the recording"
        )
        raw.set_annotations(
            mne.Annotations(gaps / sfreq, np.zeros(len(gaps)), ["BAD_gap"] * len(gaps))
        )
    return RawSource(raw, dropped=dropped, notes=notes)


def select_channels(
    path: Path, rs: RawSource, required: Sequence[str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """({raw name: normalised name} kept, {raw name: reason} dropped) for one source."""
    kept: dict[str, str] = {}
    dropped = dict(rs.dropped)
    bads = set(rs.raw.info["bads"])
    for raw_name, kind in zip(rs.raw.ch_names, rs.raw.get_channel_types()):
        name, reason = classify_channel(raw_name, kind)
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


_PARTICIPANT_COLUMNS = ("participant", "participant_id", "subject", "subject_id", "sub")
_RUN_COLUMNS = ("run", "run_id", "recording")


@dataclass
class LabelTable:
    """Labels from one CSV/TSV: keyed by participant, or by (participant, run) with a run column."""

    path: Path
    rows: dict[tuple[str, str | None], dict[str, object]]


def parse_value(text: str) -> object:
    text = text.strip()
    if text == "" or text.lower() in ("n/a", "na", "nan"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_run_labels(text: str) -> dict[str, object]:
    """'1=0,2=1' (or '1:0,2:1', which survives marimo's CLI parser) -> {'1': 0, '2': 1}."""
    out: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        run, sep, value = item.partition("=" if "=" in item else ":")
        if not sep or not run.strip():
            raise ValueError(f"run labels: {item!r} is not RUN=VALUE")
        out[run.strip()] = parse_value(value)
    return out


def read_label_table(path: str | Path) -> LabelTable:
    """Read a labels file (`.tsv` tab-separated, else comma); ids cleaned with `clean_id`."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: cannot read labels file ({err})") from err
    lower = {c.strip().lower(): c for c in columns}
    pcol = next((lower[c] for c in _PARTICIPANT_COLUMNS if c in lower), None)
    if pcol is None:
        raise DatasetError(
            f"{path}: no participant column (one of {_PARTICIPANT_COLUMNS}; found {columns})"
        )
    rcol = next((lower[c] for c in _RUN_COLUMNS if c in lower), None)
    label_cols = [c for c in columns if c not in (pcol, rcol)]
    if not label_cols:
        raise DatasetError(f"{path}: no label columns besides {pcol!r}")
    table: dict[tuple[str, str | None], dict[str, object]] = {}
    for line, row in enumerate(rows, start=2):
        key = (clean_id(row[pcol]), clean_id(row[rcol]) if rcol else None)
        if key in table:
            raise DatasetError(f"{path}: line {line}: duplicated labels row for {key}")
        table[key] = {c.strip(): parse_value(row[c] or "") for c in label_cols}
    return LabelTable(path, table)


def labels_for(
    tables: Sequence[LabelTable], participant: str, run: str
) -> tuple[dict[str, object], list[str]]:
    """Joined labels for one recording (per-participant rows, then per-run rows win), and
    the tables that had no row for it."""
    labels: dict[str, object] = {}
    missing = []
    for table in tables:
        rows = [table.rows.get((participant, None)), table.rows.get((participant, run))]
        if not any(r is not None for r in rows):
            missing.append(str(table.path))
        for row in rows:
            labels.update(row or {})
    return labels, missing


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
        info = SourceInfo(
            str(path), "csv" if _suffix(path) in CSV_SUFFIXES else _suffix(path).lstrip(".")
        )
        try:
            if isinstance(src, DatasetError):
                raise src
            info.participant, info.run, info.id_source = src.participant, src.run, src.id_source
            rs = read_source(src, preload=False, csv_time_unit=csv_time_unit, csv_units=csv_units)
            info.sfreq, info.n_samples = float(rs.raw.info["sfreq"]), int(rs.raw.n_times)
            info.duration_s, info.notes = info.n_samples / info.sfreq, rs.notes
            kept, info.dropped = select_channels(path, rs, required)
            info.kept = list(kept.values())
        except DatasetError as err:
            info.error = str(err)
        infos.append(info)
    return infos


def preview_frame(infos: Sequence[SourceInfo]) -> "pl.DataFrame":  # noqa: F821
    """SourceInfos as a Polars table for notebooks (one row per source)."""
    import polars as pl

    first = ("participant", "run", "id_source", "sfreq", "duration_s")
    rows = [
        {"file": Path(i.path).name, "format": i.format}
        | {c: getattr(i, c) for c in first}
        | {"n_kept": len(i.kept), "kept": ", ".join(i.kept), "dropped": join_reasons(i.dropped)}
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
