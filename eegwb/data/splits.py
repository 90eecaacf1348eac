"""Splits: which windows of which dataset each split (train/val/test, ...) holds.

The splits file (JSON) names a default dataset and, per split, a list of selectors:

    {"dataset": "data/synthetic",
     "splits": {"train": ["01", "02", "05/1"], "val": ["03", "05/2/0:10"], "test": ["04"]}}

A selector is `P` (every run of participant P), `P/R` (run R of P) or `P/R/i:j` (window
rows i..j-1 of that run; `i:` and `:j` are open-ended). A split may instead be
`{"dataset": "other/root", "select": [...]}` to compare two datasets (pretraining data vs
fine-tuning evaluation data). A split resolves to a *selection*: a Polars DataFrame with
columns file, participant, run, row_start, row_end (see docs/architecture.md).

`split_by_participant` and `grouped_kfold` (eegwb/data/participant_split.py, re-exported
here) never put one participant in two splits. `SplitData` pairs a root with a selection:
what the leakage audit, data-quality checks and trainers consume.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from eegwb.atomic import atomic_write_text
from eegwb.data.layout import DatasetError, RecordingMeta, read_recording, recordings_index
from eegwb.data.participant_split import grouped_kfold, split_by_participant

__all__ = [
    "SELECTION_SCHEMA",
    "Selector",
    "SplitData",
    "SplitEntry",
    "SplitSpec",
    "default_splits",
    "empty_selection",
    "grouped_kfold",
    "load_splits",
    "participant_labels",
    "participant_selection",
    "read_rows",
    "resolve_selectors",
    "save_splits",
    "spec_from_participants",
    "split_by_participant",
]

SELECTION_SCHEMA = {
    "file": pl.String,
    "participant": pl.String,
    "run": pl.String,
    "row_start": pl.Int64,
    "row_end": pl.Int64,
}
_SELECTOR = re.compile(r"^(?P<p>[A-Za-z0-9]+)(?:/(?P<r>[A-Za-z0-9]+)(?:/(?P<i>\d*):(?P<j>\d*))?)?$")


@dataclass(frozen=True)
class Selector:
    """One parsed selector; `rows` is (start, end) with None for an open end."""

    participant: str
    run: str | None = None
    rows: tuple[int | None, int | None] | None = None

    @classmethod
    def parse(cls, text: str, where: str = "selector") -> Selector:
        m = _SELECTOR.match(str(text).strip())
        if not m:
            raise DatasetError(
                f"{where}: bad selector {text!r} (expected 'P', 'P/R' or 'P/R/i:j' with "
                "alphanumeric ids)"
            )
        rows = None
        if m["i"] is not None:
            i = int(m["i"]) if m["i"] else None
            j = int(m["j"]) if m["j"] else None
            if i is not None and j is not None and j <= i:
                raise DatasetError(f"{where}: selector {text!r} has an empty row range {i}:{j}")
            rows = (i, j)
        return cls(m["p"], m["r"], rows)

    def __str__(self) -> str:
        out = self.participant
        if self.run is not None:
            out += f"/{self.run}"
        if self.rows is not None:
            i, j = self.rows
            out += f"/{'' if i is None else i}:{'' if j is None else j}"
        return out


@dataclass
class SplitEntry:
    """One split: its selectors and, when it differs from the default, its own dataset."""

    select: list[str]
    dataset: str | None = None

    def __post_init__(self) -> None:
        for s in self.select:
            Selector.parse(s)


@dataclass
class SplitSpec:
    """A parsed splits file. `dataset` is the default root (optional when the caller names
    one, e.g. `eegwb validate DATA_DIR`); `source` is where it was read."""

    splits: dict[str, SplitEntry]
    dataset: str | None = None
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.splits:
            raise DatasetError(f"{self.source or 'splits'}: no splits given")

    def root(self, name: str, default: str | Path | None = None) -> Path:
        """Dataset root of split `name`; `default` (e.g. a CLI DATA_DIR) replaces the file's
        default dataset. Relative paths written in the file resolve against the file's
        directory, then the current directory (the first that exists wins); `default` is
        taken as given (relative to the current directory)."""
        if name not in self.splits:
            raise DatasetError(f"{self.source or 'splits'}: no split named {name!r}")
        own = self.splits[name].dataset
        raw = own if own is not None else (default if default is not None else self.dataset)
        from_file = own is not None or default is None  # a caller's path is relative to the cwd
        if raw is None:
            raise DatasetError(
                f"{self.source or 'splits'}: split {name!r} has no dataset, the file no default "
                "'dataset', and no dataset directory was given"
            )
        path = Path(raw)
        if from_file and not path.is_absolute() and self.source is not None:
            beside = self.source.parent / path
            if beside.exists():
                return beside
        return path

    def resolve(self, name: str, default: str | Path | None = None) -> pl.DataFrame:
        """The selection of split `name` (see the module docstring)."""
        return resolve_selectors(self.root(name, default), self.splits[name].select)

    def split_data(self, default: str | Path | None = None) -> dict[str, SplitData]:
        """Every split resolved to a SplitData (its root and selection)."""
        return {
            name: SplitData(self.root(name, default), self.resolve(name, default))
            for name in self.splits
        }

    def to_json(self) -> dict:
        out: dict = {}
        if self.dataset is not None:
            out["dataset"] = self.dataset
        out["splits"] = {
            name: (
                list(e.select)
                if e.dataset is None
                else {"dataset": e.dataset, "select": list(e.select)}
            )
            for name, e in self.splits.items()
        }
        return out


@dataclass(frozen=True)
class SplitData:
    """One split to audit or load: a dataset root and the windows selected from it
    (`selection` None = every window of every file)."""

    root: Path
    selection: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.selection is not None:
            missing = sorted(set(SELECTION_SCHEMA) - set(self.selection.columns))
            if missing:
                raise DatasetError(f"{self.root}: selection is missing columns {missing}")

    def resolved(self) -> pl.DataFrame:
        """The selection with `None` expanded to every window of every file."""
        if self.selection is not None:
            return self.selection.select(list(SELECTION_SCHEMA)).cast(SELECTION_SCHEMA)  # type: ignore[arg-type]
        index = recordings_index(self.root)
        return index.select(
            "file",
            "participant",
            "run",
            pl.lit(0, pl.Int64).alias("row_start"),
            pl.col("n_windows").cast(pl.Int64).alias("row_end"),
        )

    def n_windows(self) -> int:
        sel = self.resolved()
        return int((sel["row_end"] - sel["row_start"]).sum()) if sel.height else 0

    def iter_recordings(
        self, channels: Sequence[str] | None = None
    ) -> Iterator[tuple[str, RecordingMeta, pa.Table, np.ndarray]]:
        """(file name, metadata, table of the selected rows, their row numbers) per file."""
        sel = self.resolved()
        for file in sorted(set(sel["file"].to_list())):
            spans = sel.filter(pl.col("file") == file).select("row_start", "row_end").rows()
            rows = np.concatenate([np.arange(i, j, dtype=np.int64) for i, j in _merge(spans)])
            meta, table = read_rows(self.root / file, rows, channels)
            yield file, meta, table, rows


def read_rows(
    path: str | Path, rows: np.ndarray, channels: Sequence[str] | None = None
) -> tuple[RecordingMeta, pa.Table]:
    """One recording's metadata and the table of window `rows` (sorted row numbers)."""
    meta, table = read_recording(path, channels)
    if len(rows) and (rows.min() < 0 or rows.max() >= table.num_rows):
        raise DatasetError(
            f"{path}: selection asks for row {rows.max()} of {table.num_rows} windows"
        )
    return meta, table.take(pa.array(rows))


def load_splits(path: str | Path) -> SplitSpec:
    """Read and validate a splits file; errors name the file, the split and the selector."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise DatasetError(f"{path}: splits file does not exist") from err
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("splits"), dict):
        raise DatasetError(f"{path}: expected an object with a 'splits' object")
    unknown = sorted(set(raw) - {"dataset", "splits"})
    if unknown:
        raise DatasetError(f"{path}: unknown keys {unknown} (expected 'dataset', 'splits')")
    dataset = raw.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise DatasetError(f"{path}: 'dataset' must be a path string, got {dataset!r}")
    entries: dict[str, SplitEntry] = {}
    for name, value in raw["splits"].items():
        where = f"{path}: split {name!r}"
        if isinstance(value, dict):
            extra = sorted(set(value) - {"dataset", "select"})
            if extra or "select" not in value:
                raise DatasetError(f"{where}: expected {{'dataset': ..., 'select': [...]}}")
            ds, sel = value.get("dataset"), value["select"]
        else:
            ds, sel = None, value
        if not isinstance(sel, list) or not all(isinstance(s, str) for s in sel):
            raise DatasetError(f"{where}: selectors must be a list of strings, got {sel!r}")
        for s in sel:
            Selector.parse(s, where)
        entries[str(name)] = SplitEntry(select=list(sel), dataset=ds)
    return SplitSpec(splits=entries, dataset=dataset, source=path)


def save_splits(spec: SplitSpec, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a splits file atomically; refuses to replace an existing file by default."""
    return atomic_write_text(path, json.dumps(spec.to_json(), indent=2) + "\n", overwrite=overwrite)


def empty_selection() -> pl.DataFrame:
    return pl.DataFrame(schema=SELECTION_SCHEMA)


def resolve_selectors(root: str | Path, selectors: Sequence[str]) -> pl.DataFrame:
    """Selectors -> selection (file, participant, run, row_start, row_end), one row per
    contiguous row range; overlapping selectors are merged. Unknown participants or runs
    and row ranges past the end of a recording raise DatasetError naming them."""
    index = recordings_index(root)
    by_key = {
        (p, r): (f, n)
        for f, p, r, n in index.select("file", "participant", "run", "n_windows").iter_rows()
    }
    runs_of: dict[str, list[str]] = {}
    for p, r in by_key:
        runs_of.setdefault(p, []).append(r)
    ranges: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for text in selectors:
        sel = Selector.parse(text, str(root))
        if sel.participant not in runs_of:
            raise DatasetError(f"{root}: selector {text!r}: no participant {sel.participant!r}")
        runs = [sel.run] if sel.run is not None else runs_of[sel.participant]
        for run in runs:
            if (sel.participant, run) not in by_key:
                raise DatasetError(
                    f"{root}: selector {text!r}: participant {sel.participant!r} has no run "
                    f"{run!r} (runs: {sorted(runs_of[sel.participant])})"
                )
            file, n = by_key[(sel.participant, run)]
            i, j = (
                (0, n)
                if sel.rows is None
                else (sel.rows[0] or 0, n if sel.rows[1] is None else sel.rows[1])
            )
            if j > n or i >= n:
                raise DatasetError(
                    f"{root}/{file}: selector {text!r} asks for rows {i}:{j} of {n} windows"
                )
            ranges.setdefault((sel.participant, run), []).append((i, j))
    rows = []
    for (p, r), spans in sorted(ranges.items()):
        for i, j in _merge(spans):
            rows.append((by_key[(p, r)][0], p, r, i, j))
    if not rows:
        return empty_selection()
    return pl.DataFrame(rows, schema=SELECTION_SCHEMA, orient="row")


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i, j in sorted(spans):
        if out and i <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], j))
        else:
            out.append((i, j))
    return out


def participant_selection(root: str | Path, participants: Sequence[str]) -> pl.DataFrame:
    """Every window of every run of `participants`."""
    return resolve_selectors(root, [str(p) for p in participants])


def participant_labels(root: str | Path, label: str) -> dict[str, object]:
    """participant -> value of `label`; DatasetError when a participant's runs disagree
    (a per-run label such as rest/task cannot stratify a participant split)."""
    out: dict[str, object] = {}
    for p, labels_json, file in (
        recordings_index(root).select("participant", "labels", "file").iter_rows()
    ):
        labels = json.loads(labels_json)
        if label not in labels:
            raise DatasetError(f"{root}/{file}: no label {label!r} (has {sorted(labels)})")
        if p in out and out[p] != labels[label]:
            raise DatasetError(
                f"{root}: label {label!r} differs between runs of participant {p!r} "
                f"({out[p]!r} vs {labels[label]!r}); it is not a participant label"
            )
        out[p] = labels[label]
    return out


def default_splits(
    root: str | Path,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    label: str | None = None,
) -> SplitSpec:
    """A participant-grouped split of every participant of `root` (stratified by `label`
    when it is a participant-level label)."""
    participants = sorted(set(recordings_index(root)["participant"].to_list()))
    labels = participant_labels(root, label) if label is not None else None
    return spec_from_participants(split_by_participant(participants, labels, fractions, seed), root)


def spec_from_participants(
    assignment: Mapping[str, Sequence[str]], dataset: str | Path | None = None
) -> SplitSpec:
    """A SplitSpec selecting whole participants, e.g. from split_by_participant."""
    return SplitSpec(
        splits={name: SplitEntry(select=[str(p) for p in ps]) for name, ps in assignment.items()},
        dataset=None if dataset is None else str(dataset),
    )
