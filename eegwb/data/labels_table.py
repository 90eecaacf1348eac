"""Label files and how they join recordings: per-participant or per-run rows from a CSV/TSV.

A labels file has a participant column (`participant`, `participant_id`, `subject`,
`subject_id` or `sub`), optionally a run column (`run`, `run_id`, `recording`), and label
columns. Ids are cleaned with `source_ids.clean_id`, the same way file names are, so
`Subject00` in a labels file meets `Subject00_1.edf`. Values are ints, floats or strings;
empty cells and 'n/a' are None. Several files merge: a recording takes every row that
matches it, so one file may hold some participants and another the rest (`label_warnings`
reports a recording only when no file gives it a label column). `parse_run_labels` reads
the one-line form of labels that depend only on the run ('1=0,2=1'). `label_table_column`
tells a labels CSV from a recording by its header.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eegwb.data.csv_source import csv_header
from eegwb.data.layout import DatasetError
from eegwb.data.source_ids import Source, clean_id
from eegwb.errors import InputError

_PARTICIPANT_COLUMNS = ("participant", "participant_id", "subject", "subject_id", "sub")
_RUN_COLUMNS = ("run", "run_id", "recording")


@dataclass
class LabelTable:
    """Labels from one CSV/TSV: keyed by participant, or by (participant, run) with a run column."""

    path: Path
    rows: dict[tuple[str, str | None], dict[str, object]]
    columns: tuple[str, ...] = ()  # the label columns, in file order


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
            raise InputError(f"run labels: {item!r} is not RUN=VALUE")
        out[run.strip()] = parse_value(value)
    return out


def _participant_column(columns: Sequence[str]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[c] for c in _PARTICIPANT_COLUMNS if c in lower), None)


def label_table_column(path: Path) -> str | None:
    """The participant column of a CSV that is a labels table (None: not one), by its header."""
    return _participant_column(csv_header(path))


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
    pcol = _participant_column(columns)
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
    return LabelTable(path, table, tuple(c.strip() for c in label_cols))


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


def label_warnings(tables: Sequence[LabelTable], recordings: Sequence[Source]) -> list[str]:
    """Label rows that match no recording (one warning per table), and recordings that no
    table gives a label column (one warning per set of missing columns, naming the tables
    that have them): with merged tables, a recording one of them covers is not reported."""
    participants = {s.participant for s in recordings}
    warnings = []
    for table in tables:
        unmatched = sorted({p for p, _ in table.rows if p not in participants})
        if unmatched:
            warnings.append(f"{table.path}: rows for participants {unmatched} match no source")
    columns = list(dict.fromkeys(c for table in tables for c in table.columns))
    lacking: dict[tuple[str, ...], list[str]] = {}
    for src in recordings:
        labels = labels_for(tables, src.participant, src.run)[0]
        missing = tuple(c for c in columns if c not in labels)
        if missing:
            lacking.setdefault(missing, []).append(f"{src.participant}/{src.run}")
    for missing, names in lacking.items():
        paths = ", ".join(str(t.path) for t in tables if set(missing) & set(t.columns))
        warnings.append(f"{paths}: no row for recordings {names} (labels {list(missing)} missing)")
    return warnings
