"""Labels for fine-tuning: one binary class per recording, joined to the dataset index.

A label comes from one of two places:

- a CSV or Parquet table, per participant (columns `participant`, `<name>`) or per
  recording (`participant`, `run`, `<name>`), e.g. remission per patient, or rest vs
  arithmetic per run;
- each recording file's own metadata (`eegwb.labels`, see `eegwb/data/layout.py`), as the
  synthetic cohort and ingest write them.

Either way the result is the *recording label table* (Polars), one row per recording file
of the dataset:

    file, participant, run   as in `recordings_index`
    value                    the label as given (string form)
    label                    int 0/1, 1 where value is the positive class

A recording without a label is an error naming it (or dropped, when asked), never a
silent zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from eegwb.data.layout import DatasetError, recordings_index
from eegwb.validation.validation import LabelInput

PARTICIPANT_COLUMNS = ("participant", "participant_id", "subject", "subject_id")
RUN_COLUMNS = ("run", "run_id", "recording")
TRUE_VALUES = {"1", "1.0", "true", "yes"}
FALSE_VALUES = {"0", "0.0", "false", "no"}


class LabelError(DatasetError):
    """A label table that does not fit the dataset; the message names the file and the key."""


@dataclass
class LabelSource:
    """Where the label comes from and which value is the positive class."""

    name: str = "remission"  # the label column / metadata key
    path: str | None = None  # CSV/Parquet; None reads each recording's metadata labels
    positive: str | bool | int | None = (
        None  # value counted as class 1; None: 0/1 or true/false only
    )
    drop_missing: bool = False  # False: a recording without a label is an error

    def __post_init__(self) -> None:
        if not self.name:
            raise LabelError("labels.name: give the label column or metadata key")
        if self.path is not None and Path(self.path).suffix.lower() not in (
            ".csv",
            ".tsv",
            ".parquet",
        ):
            raise LabelError(f"labels.path {self.path}: expected a .csv, .tsv or .parquet file")


def _norm_id(value: object) -> str:
    """'sub-01' -> '01'; ids compare as strings (so '01' and '1' stay different)."""
    text = str(value).strip()
    return text.removeprefix("sub-")


def read_label_table(path: str | Path, name: str) -> pl.DataFrame:
    """A CSV/Parquet label table -> (participant, [run,] value) strings; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: label file does not exist")
    try:
        if path.suffix.lower() == ".parquet":
            raw = pl.read_parquet(path)
        else:
            raw = pl.read_csv(
                path, separator="\t" if path.suffix.lower() == ".tsv" else ",", infer_schema=False
            )
    except Exception as err:  # polars raises several error types for malformed files
        raise LabelError(f"{path}: cannot read label table ({err})") from err
    lower = {c.lower().strip(): c for c in raw.columns}
    pcol = next((lower[c] for c in PARTICIPANT_COLUMNS if c in lower), None)
    if pcol is None:
        raise LabelError(
            f"{path}: no participant column (one of {PARTICIPANT_COLUMNS}); has {raw.columns}"
        )
    if name not in raw.columns:
        raise LabelError(f"{path}: no label column {name!r}; has {raw.columns}")
    rcol = next((lower[c] for c in RUN_COLUMNS if c in lower), None)
    cols = {"participant": pl.col(pcol).map_elements(_norm_id, return_dtype=pl.String)}
    if rcol is not None:
        cols["run"] = pl.col(rcol).cast(pl.String).str.strip_chars()
    cols["value"] = pl.col(name).cast(pl.String).str.strip_chars()
    table = raw.select(**cols).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    keys = ["participant", "run"] if rcol is not None else ["participant"]
    dupes = table.group_by(keys).agg(pl.col("value").n_unique().alias("n")).filter(pl.col("n") > 1)
    if dupes.height:
        raise LabelError(f"{path}: conflicting {name!r} values for {dupes.select(keys).rows()[:5]}")
    return table.unique(keys, maintain_order=True)


def metadata_label_table(index: pl.DataFrame, name: str) -> pl.DataFrame:
    """(participant, run, value) from each recording's metadata labels (missing -> null)."""
    values = []
    for labels_json in index["labels"]:
        v = json.loads(labels_json).get(name)
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # 1.0 and 1 are one class
        values.append(
            None if v is None else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
        )
    return index.select("participant", "run").with_columns(pl.Series("value", values, pl.String))


def binarise(values: pl.Series, positive: str | bool | int | None, where: str) -> pl.Series:
    """Label values -> 0/1. Without `positive`, only 0/1 and true/false-like values are
    accepted, so "MDD"/"HC" never gets a class assigned by alphabetical accident."""
    distinct = sorted(set(values.drop_nulls().to_list()))
    if positive is not None:
        if str(positive) not in distinct:
            raise LabelError(
                f"{where}: positive value {positive!r} never occurs (values: {distinct[:10]})"
            )
        return (values == str(positive)).cast(pl.Int64)
    lowered = {v.lower() for v in distinct}
    if not lowered <= TRUE_VALUES | FALSE_VALUES:
        raise LabelError(
            f"{where}: values {distinct[:10]} are not 0/1 or true/false; set labels.positive to "
            "the value that counts as class 1"
        )
    return values.str.to_lowercase().is_in(list(TRUE_VALUES)).cast(pl.Int64)


def recording_labels(
    root: str | Path, source: LabelSource, index: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The recording label table of the dataset at `root` (see the module docstring)."""
    index = recordings_index(root) if index is None else index
    where = (
        f"{source.path}: {source.name!r}"
        if source.path
        else f"{root}: metadata label {source.name!r}"
    )
    if source.path is None:
        table = metadata_label_table(index, source.name)
        keys = ["participant", "run"]
    else:
        table = read_label_table(source.path, source.name)
        keys = ["participant", "run"] if "run" in table.columns else ["participant"]
        known = set(index["participant"].to_list())
        unknown = sorted(set(table["participant"].to_list()) - known)
        if unknown and len(unknown) == table["participant"].n_unique():
            raise LabelError(
                f"{source.path}: none of its participants {unknown[:5]} are in {root} "
                f"(dataset has {sorted(known)[:5]}...)"
            )
    joined = index.select("file", "participant", "run").join(
        table.select(*keys, "value"), on=keys, how="left"
    )
    missing = joined.filter(pl.col("value").is_null())
    if missing.height and not source.drop_missing:
        raise LabelError(
            f"{where}: {missing.height} recording(s) have no label, e.g. "
            f"{missing['file'].to_list()[:5]} "
            "(set labels.drop_missing=true to leave them out)"
        )
    joined = joined.filter(pl.col("value").is_not_null())
    if joined.height == 0:
        raise LabelError(f"{where}: no recording has a label")
    out = joined.with_columns(binarise(joined["value"], source.positive, where).alias("label"))
    if out["label"].n_unique() < 2:
        raise LabelError(
            f"{where}: every labelled recording is class {out['label'][0]}; need two classes"
        )
    return out.sort("participant", "run")


def participant_classes(labels: pl.DataFrame) -> dict[str, int] | None:
    """participant -> class when the label is constant within each participant, else None
    (a per-run label such as rest/task: every participant has both, nothing to stratify)."""
    per = labels.group_by("participant").agg(
        pl.col("label").n_unique().alias("n"), pl.col("label").first()
    )
    if (per["n"] > 1).any():
        return None
    return dict(per.select("participant", "label").iter_rows())


def label_lookup(labels: pl.DataFrame) -> Mapping[tuple[str, str], int]:
    """(participant, run) -> 0/1."""
    return {(p, r): int(y) for p, r, y in labels.select("participant", "run", "label").iter_rows()}


def metadata_label_names(root: str | Path) -> list[str]:
    """Every label name in the recordings' metadata (what `--label` may name)."""
    return sorted({k for labels in recordings_index(root)["labels"] for k in json.loads(labels)})


def audit_label(
    root: str | Path, name: str, positive: str | None = None, label_files: Sequence[str | Path] = ()
) -> LabelInput:
    """What `validate`'s shortcut audit needs for label `name`: the recording label table
    from the recordings' metadata (unlabelled recordings left out), and the columns of
    `label_files` (cleaned ids, as ingest reads them) as more nuisance variables."""
    from eegwb.data.labels_table import read_label_table
    from eegwb.validation.shortcut_variables import extra_columns

    source = LabelSource(name=name, positive=positive, drop_missing=True)
    extra = extra_columns([read_label_table(p) for p in label_files]) if label_files else None
    return LabelInput(name, recording_labels(root, source), extra)
