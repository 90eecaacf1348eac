"""Splits: which windows of which dataset each split (train/val/test, ...) holds.

The splits file (JSON) names a default dataset and, per split, a list of selectors:

    {"dataset": "data/synthetic",
     "splits": {"train": ["01", "02", "05/1"], "val": ["03", "05/2/0:10"], "test": ["04"]}}

A selector is `P` (every run of participant P), `P/R` (run R of P) or `P/R/i:j` (window
rows i..j-1 of that run; `i:` and `:j` are open-ended). A split may instead be
`{"dataset": "other/root", "select": [...]}` to compare two datasets (pretraining data vs
fine-tuning evaluation data). A split resolves to a *selection*: a Polars DataFrame with
columns file, participant, run, row_start, row_end (see docs/architecture.md).

Splitting helpers never put one participant in two splits: EEG from one person is far
more alike than EEG from two, so a participant on both sides of a split inflates scores.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from eegwb.atomic import atomic_write_text
from eegwb.data.layout import DatasetError, RecordingMeta, read_recording, recordings_index

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
        return {name: SplitData(self.root(name, default), self.resolve(name, default)) for name in self.splits}

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
            "file", "participant", "run", pl.lit(0, pl.Int64).alias("row_start"),
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
        raise DatasetError(f"{path}: selection asks for row {rows.max()} of {table.num_rows} windows")
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
    by_key = {(p, r): (f, n) for f, p, r, n in index.select("file", "participant", "run", "n_windows").iter_rows()}
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
            i, j = (0, n) if sel.rows is None else (sel.rows[0] or 0, n if sel.rows[1] is None else sel.rows[1])
            if j > n or i >= n:
                raise DatasetError(f"{root}/{file}: selector {text!r} asks for rows {i}:{j} of {n} windows")
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
    for p, labels_json, file in recordings_index(root).select("participant", "labels", "file").iter_rows():
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


def _strata(participants: list[str], labels: Mapping[str, object] | None, max_classes: int = 10) -> list[object]:
    """One stratum per participant: the label, or its quartile bin for continuous labels."""
    if labels is None:
        return [0] * len(participants)
    missing = [p for p in participants if p not in labels]
    if missing:
        raise DatasetError(f"labels: no label for participants {missing[:5]}")
    values = [labels[p] for p in participants]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and len(set(values)) > max_classes:
        v = np.asarray(values, dtype=float)
        edges = np.quantile(v, [0.25, 0.5, 0.75])
        return [int(b) for b in np.searchsorted(edges, v, side="right")]
    return [json.dumps(v, sort_keys=True, default=str) for v in values]


def _stratified_order(participants: list[str], strata: list[object], seed: int) -> list[tuple[str, object]]:
    """Participants shuffled within strata, strata interleaved so each prefix is balanced."""
    rng = np.random.default_rng(seed)
    groups: dict[object, list[str]] = {}
    for p, s in zip(participants, strata, strict=True):
        groups.setdefault(s, []).append(p)
    keyed = []
    for s in sorted(groups, key=str):
        members = [groups[s][i] for i in rng.permutation(len(groups[s]))]
        n = len(members)
        # Spread each stratum evenly over [0, 1): position (k + u) / n, u random.
        keyed += [((k + rng.random()) / n, p, s) for k, p in enumerate(members)]
    return [(p, s) for _, p, s in sorted(keyed, key=lambda t: t[0])]


def _unique(participants: Sequence[str]) -> list[str]:
    ps = [str(p) for p in participants]
    dupes = sorted({p for p in ps if ps.count(p) > 1})
    if dupes:
        raise DatasetError(f"participants listed twice: {dupes[:5]}")
    return sorted(ps)


def split_by_participant(
    participants: Sequence[str],
    labels: Mapping[str, object] | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Assign whole participants to splits (default names train/val/test, or train/test for
    two fractions), stratified by `labels` when given. Every split with a positive fraction
    gets at least one participant when there are enough participants."""
    ps = _unique(participants)
    fr = [float(f) for f in fractions]
    if names is None:
        names = {2: ("train", "test"), 3: ("train", "val", "test")}.get(len(fr))
        if names is None:
            names = tuple(f"split{i}" for i in range(len(fr)))
    if len(names) != len(fr) or any(f < 0 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions {fractions} must be >= 0, sum to 1 and match names {list(names)}")
    n = len(ps)
    positive = [i for i, f in enumerate(fr) if f > 0]
    if n < len(positive):
        raise DatasetError(f"{n} participants cannot fill {len(positive)} non-empty splits")
    # Target sizes: largest remainder, then lift empty splits to one (taken from the largest).
    target = [int(math.floor(f * n)) for f in fr]
    for i in sorted(range(len(fr)), key=lambda i: -(fr[i] * n - target[i]))[: n - sum(target)]:
        target[i] += 1
    for i in positive:
        if target[i] == 0:
            target[i] = 1
            target[int(np.argmax(target))] -= 1
    strata = _strata(ps, labels)
    order = _stratified_order(ps, strata, seed)
    per_stratum = Counter(map(str, strata))
    taken = [0] * len(fr)
    taken_s: dict[tuple[str, int], int] = {}
    out: dict[str, list[str]] = {name: [] for name in names}
    for p, s in order:
        s = str(s)
        open_ = [i for i in range(len(fr)) if taken[i] < target[i]]
        # Most behind its share of this stratum first, then most behind its overall size.
        best = max(
            open_,
            key=lambda i: (per_stratum[s] * fr[i] - taken_s.get((s, i), 0), target[i] - taken[i], -i),
        )
        taken[best] += 1
        taken_s[(s, best)] = taken_s.get((s, best), 0) + 1
        out[names[best]].append(p)
    return {k: sorted(v) for k, v in out.items()}


def grouped_kfold(
    participants: Sequence[str],
    labels: Mapping[str, object] | None = None,
    k: int = 5,
    seed: int = 0,
) -> list[dict[str, list[str]]]:
    """k participant-grouped, label-stratified folds: [{"train": [...], "val": [...]}, ...];
    each participant is in exactly one fold's val."""
    ps = _unique(participants)
    if k < 2 or k > len(ps):
        raise DatasetError(f"grouped_kfold: k={k} needs 2 <= k <= {len(ps)} participants")
    rng = np.random.default_rng(seed)
    strata = _strata(ps, labels)
    groups: dict[str, list[str]] = {}
    for p, s in zip(ps, strata, strict=True):
        groups.setdefault(str(s), []).append(p)
    # Deal each shuffled stratum round-robin, continuing where the last one stopped: fold
    # sizes and each stratum's count per fold then differ by at most one.
    fold_of: dict[str, int] = {}
    nxt = 0
    for s in sorted(groups):
        for i in rng.permutation(len(groups[s])):
            fold_of[groups[s][i]] = nxt % k
            nxt += 1
    return [
        {
            "train": sorted(p for p in ps if fold_of[p] != f),
            "val": sorted(p for p in ps if fold_of[p] == f),
        }
        for f in range(k)
    ]


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
