"""The on-disk dataset layout (kept from the original pipeline), in one place.

A dataset is a directory of Parquet files, one per participant-run, named
`sub-{participant}_run-{run}.parquet` (ids of letters and digits; Parquet files of other
names are not recordings and are never read), plus an optional `manifest.json`
(synthetic cohorts) and the ingest's records (`dataset.json`, how it was made, and
`dataset.incomplete.json` while an ingest is unfinished; see dataset_record.py).

Columns of every file, one row per window:

    participant       string   participant id
    run               string   run / recording id within the participant
    parent_window_id  int32    index of the contiguous segment the window came from
    sub_window_id     int32    index of the window within that segment
    window_start      int64    first sample of the window, in the resampled recording
    window_end        int64    one past the last sample (window_end - window_start ==
                               window_samples)
    <CHANNEL>...      fixed_size_list<float32>[window_samples], one column per channel,
                      upper-case names (FP1, T7, TP9, ...), samples in microvolts

One file yields one sequence per channel; sequence length = number of windows (rows),
ordered by window_start.

Key-value metadata (all values are UTF-8 strings; JSON where noted):

    eegwb.layout_version   "1"
    eegwb.sfreq            sampling rate in Hz after resampling
    eegwb.window_samples   samples per window
    eegwb.hop_samples      samples between window starts
    eegwb.units            "uV"
    eegwb.montage          montage name ("standard_1020", "muse", ...) or "custom"
    eegwb.channel_positions JSON {channel: [x, y, z]} on the unit sphere
    eegwb.source_file      where the samples came from
    eegwb.source_hash      xxh3_128 hex digest of the source file's bytes
    eegwb.labels           JSON {label_name: value} for this participant-run
    eegwb.meas_date        the source's recording date and time (ISO 8601, UTC), "" when it
                           has none (optional: files written before it read as "")
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eegwb.atomic import OutputExistsError, atomic_path
from eegwb.errors import InputError

if TYPE_CHECKING:
    import polars as pl

LAYOUT_VERSION = "1"
ID_COLUMNS = (
    "participant",
    "run",
    "parent_window_id",
    "sub_window_id",
    "window_start",
    "window_end",
)
ID_TYPES = {
    "participant": pa.string(),
    "run": pa.string(),
    "parent_window_id": pa.int32(),
    "sub_window_id": pa.int32(),
    "window_start": pa.int64(),
    "window_end": pa.int64(),
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9]+$")
# The names `recording_filename` writes; other *.parquet files are never read as recordings.
RECORDING_NAME = re.compile(r"^sub-[A-Za-z0-9]+_run-[A-Za-z0-9]+\.parquet$")


class DatasetError(InputError):
    """Bad dataset input; the message starts with the file it is about."""


@dataclass
class RecordingMeta:
    """Per-file metadata (see the module docstring for the keys)."""

    sfreq: float
    window_samples: int
    hop_samples: int
    channel_positions: dict[str, list[float]]
    montage: str = "custom"
    units: str = "uV"
    source_file: str = ""
    source_hash: str = ""
    labels: dict[str, object] = field(default_factory=dict)
    meas_date: str = ""  # ISO 8601; "" unknown (anonymised sources often shift or drop it)

    def to_kv(self) -> dict[bytes, bytes]:
        kv = {
            "eegwb.layout_version": LAYOUT_VERSION,
            "eegwb.sfreq": repr(float(self.sfreq)),
            "eegwb.window_samples": str(int(self.window_samples)),
            "eegwb.hop_samples": str(int(self.hop_samples)),
            "eegwb.units": self.units,
            "eegwb.montage": self.montage,
            "eegwb.channel_positions": json.dumps(self.channel_positions),
            "eegwb.source_file": self.source_file,
            "eegwb.source_hash": self.source_hash,
            "eegwb.labels": json.dumps(self.labels),
            "eegwb.meas_date": self.meas_date,
        }
        return {k.encode(): v.encode() for k, v in kv.items()}

    @classmethod
    def from_kv(cls, kv: Mapping[bytes, bytes] | None, path: Path) -> RecordingMeta:
        kv = {k.decode(): v.decode() for k, v in (kv or {}).items()}
        if kv.get("eegwb.layout_version") != LAYOUT_VERSION:
            raise DatasetError(
                f"{path}: not an eegwb dataset file (layout_version "
                f"{kv.get('eegwb.layout_version')!r}, expected {LAYOUT_VERSION!r})"
            )
        try:
            return cls(
                sfreq=float(kv["eegwb.sfreq"]),
                window_samples=int(kv["eegwb.window_samples"]),
                hop_samples=int(kv["eegwb.hop_samples"]),
                channel_positions=json.loads(kv["eegwb.channel_positions"]),
                montage=kv.get("eegwb.montage", "custom"),
                units=kv.get("eegwb.units", "uV"),
                source_file=kv.get("eegwb.source_file", ""),
                source_hash=kv.get("eegwb.source_hash", ""),
                labels=json.loads(kv.get("eegwb.labels", "{}")),
                meas_date=kv.get("eegwb.meas_date", ""),
            )
        except (KeyError, ValueError) as err:
            raise DatasetError(f"{path}: bad eegwb metadata ({err!r})") from err


def recording_filename(participant: str, run: str) -> str:
    """`sub-{participant}_run-{run}.parquet`; ids must be alphanumeric (BIDS labels)."""
    for what, value in (("participant", participant), ("run", run)):
        if not _SAFE_ID.match(str(value)):
            raise DatasetError(f"{what} id {value!r} must be alphanumeric (BIDS label rules)")
    return f"sub-{participant}_run-{run}.parquet"


def list_recordings(root: str | Path) -> list[Path]:
    """Every recording file of a dataset (names as `recording_filename` writes them), sorted.

    Temporary files and other Parquet names are skipped; dataset_record.check_dataset
    names the skipped ones, and the readers report them."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset directory does not exist")
    files = sorted(p for p in root.glob("sub-*_run-*.parquet") if RECORDING_NAME.match(p.name))
    if not files:
        raise DatasetError(f"{root}: no recording files (sub-*_run-*.parquet)")
    return files


def build_table(
    participant: str,
    run: str,
    signals: Mapping[str, np.ndarray],
    window_start: Sequence[int],
    meta: RecordingMeta,
    parent_window_id: Sequence[int] | None = None,
    sub_window_id: Sequence[int] | None = None,
) -> pa.Table:
    """Assemble one recording's table; `signals[ch]` is (n_windows, window_samples) float32 µV."""
    window_start = np.asarray(window_start, dtype=np.int64)
    n = len(window_start)
    t = meta.window_samples
    columns: dict[str, pa.Array] = {
        "participant": pa.array([str(participant)] * n, pa.string()),
        "run": pa.array([str(run)] * n, pa.string()),
        "parent_window_id": pa.array(
            np.zeros(n, np.int32)
            if parent_window_id is None
            else np.asarray(parent_window_id, np.int32)
        ),
        "sub_window_id": pa.array(
            np.arange(n, dtype=np.int32)
            if sub_window_id is None
            else np.asarray(sub_window_id, np.int32)
        ),
        "window_start": pa.array(window_start),
        "window_end": pa.array(window_start + t),
    }
    for name, values in signals.items():
        values = np.ascontiguousarray(values, dtype=np.float32)
        if values.shape != (n, t):
            raise DatasetError(
                f"sub-{participant}_run-{run}: channel {name!r} has shape {values.shape}, "
                f"expected ({n}, {t})"
            )
        if name != name.upper():
            raise DatasetError(f"sub-{participant}_run-{run}: channel {name!r} is not upper-case")
        columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), t)
    table = pa.table(columns)
    return table.replace_schema_metadata(meta.to_kv())


def write_recording(
    root: str | Path, table: pa.Table, *, overwrite: bool = False, compression: str = "zstd"
) -> Path:
    """Write one recording file atomically (temp name + rename); refuse to overwrite by default."""
    participant = table.column("participant")[0].as_py()
    run = table.column("run")[0].as_py()
    final = Path(root) / recording_filename(participant, run)
    if final.exists() and not overwrite:
        raise OutputExistsError(f"{final}: already exists (use --overwrite to replace it)")
    with atomic_path(final, overwrite=overwrite) as tmp:
        pq.write_table(table, tmp, compression=compression)
    return final


def channel_columns(schema: pa.Schema) -> list[str]:
    return [name for name in schema.names if name not in ID_COLUMNS]


def read_meta(path: str | Path) -> tuple[RecordingMeta, pa.Schema, int]:
    """Metadata, schema and row count without reading the samples; validates the schema."""
    path = Path(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for corrupt/truncated files
        raise DatasetError(f"{path}: cannot read Parquet ({err})") from err
    schema = pf.schema_arrow
    meta = RecordingMeta.from_kv(schema.metadata, path)
    validate_schema(schema, meta, path)
    return meta, schema, pf.metadata.num_rows


def validate_schema(schema: pa.Schema, meta: RecordingMeta, path: Path) -> None:
    missing = [c for c in ID_COLUMNS if c not in schema.names]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing}")
    names = schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"{path}: duplicated channel columns {dupes}")
    channels = channel_columns(schema)
    if not channels:
        raise DatasetError(f"{path}: no channel columns")
    for ch in channels:
        typ = schema.field(ch).type
        if not pa.types.is_fixed_size_list(typ) or typ.value_type != pa.float32():
            raise DatasetError(
                f"{path}: channel {ch!r} has type {typ}, expected fixed_size_list<float32>"
            )
        if typ.list_size != meta.window_samples:
            raise DatasetError(
                f"{path}: channel {ch!r} has windows of {typ.list_size} samples, "
                f"expected {meta.window_samples}"
            )
        if ch not in meta.channel_positions:
            raise DatasetError(f"{path}: channel {ch!r} has no electrode position in the metadata")


def read_recording(
    path: str | Path, channels: Sequence[str] | None = None
) -> tuple[RecordingMeta, pa.Table]:
    """Read and validate one recording file (metadata, schema, finite samples)."""
    path = Path(path)
    meta, schema, _ = read_meta(path)
    cols = list(ID_COLUMNS) + list(channels if channels is not None else channel_columns(schema))
    try:
        table = pq.read_table(path, columns=cols)
    except Exception as err:
        raise DatasetError(f"{path}: cannot read Parquet ({err})") from err
    return meta, table


def channel_array(table: pa.Table, channel: str) -> np.ndarray:
    """One channel as a (n_windows, window_samples) float32 array (zero-copy when possible)."""
    col = table.column(channel).combine_chunks()
    t = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, t)


def recordings_index(root: str | Path) -> pl.DataFrame:
    """One row per recording file, from metadata only (no samples read).

    Columns: file (name), participant, run, n_windows, window_samples, hop_samples,
    sfreq, montage, channels (list[str]), source_file, source_hash, labels (JSON str),
    meas_date (ISO string, "" when unknown).
    Raises DatasetError on a duplicated (participant, run).
    """
    import polars as pl

    rows = []
    for path in list_recordings(root):
        meta, schema, n_rows = read_meta(path)
        stem = path.name.removesuffix(".parquet")
        participant, run = stem.removeprefix("sub-").split("_run-", 1)
        rows.append(
            {
                "file": path.name,
                "participant": participant,
                "run": run,
                "n_windows": n_rows,
                "window_samples": meta.window_samples,
                "hop_samples": meta.hop_samples,
                "sfreq": meta.sfreq,
                "montage": meta.montage,
                "channels": channel_columns(schema),
                "source_file": meta.source_file,
                "source_hash": meta.source_hash,
                "labels": json.dumps(meta.labels, sort_keys=True),
                "meas_date": meta.meas_date,
            }
        )
    index = pl.DataFrame(rows)
    dupes = index.group_by("participant", "run").len().filter(pl.col("len") > 1)
    if dupes.height:
        raise DatasetError(f"{root}: duplicated (participant, run) {dupes.rows()}")
    return index
