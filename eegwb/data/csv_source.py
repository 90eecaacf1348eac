"""Reading a CSV export (a timestamp column plus one column per channel) into an MNE RawArray.

Supported layouts (`README.md`, "Muse exports"): muse-lsl and eeg-notebooks
(`timestamps,TP9,AF7,AF8,TP10,Right AUX[,Marker0...]`; muse-lsl's direct recording writes a
pandas index first and `timestamps` last), brainflow via eeg-notebooks (`...,stim`), Mind
Monitor (`TimeStamp` as date-times, `RAW_TP9...` samples beside band powers, sensors and
`Elements` event rows), and any CSV with a timestamp column. The timestamp column is the
first whose name contains 'time'; other numeric columns are channels, non-numeric and unnamed
ones are dropped with the reason, and rows with no value in any EEG column (event/marker
rows, other sensors' rows) are ignored.

Units: channel columns are read as microvolts (`units` scales other units) and turned into
volts for MNE's `RawArray`, so ingest scales every source back to µV identically.
Timestamps are seconds or milliseconds (`time_unit`; "auto" reads a median step >= 0.1 as
milliseconds, since a 10 Hz rate is not EEG) or date-times. Where the samples go in time
(nominal rate, dropouts, what is refused) is `csv_timing.py`'s; a dropout becomes a
zero-length `BAD_gap` annotation, which ingest treats as a segment boundary.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eegwb.data.channels import classify_channel
from eegwb.data.csv_timing import MUSE_RATES_HZ, STANDARD_RATES_HZ, time_axis
from eegwb.data.layout import DatasetError
from eegwb.data.montage import MONTAGES
from eegwb.data.raw_source import RawSource

CSV_UNIT_SCALE = {"uV": 1.0, "mV": 1e3, "V": 1e6}  # multiply by this to get µV
# Stamps between these are unix seconds (a clock time, hence a recording date); smaller
# ones count from the device's start and say nothing about when it recorded.
EPOCH_2000_S, EPOCH_2100_S = 946_684_800.0, 4_102_444_800.0


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (first row; empty for an empty file)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        return next(csv.reader(fh), [])


def time_column(columns: Sequence[str]) -> str | None:
    """The timestamp column: the first whose name contains 'time' (None if there is none)."""
    for name in columns:
        if "time" in name.lower():
            return name
    return None


def eeg_columns(columns: Sequence[str]) -> list[str]:
    """The columns `channels.classify_channel` would keep as scalp EEG (by name)."""
    return [c for c in columns if c.strip() and classify_channel(c)[0] is not None]


def _stamps_s(path: Path, frame, time_col: str, time_unit: str) -> tuple[np.ndarray, str]:
    """(timestamps in seconds, how they were read) from numbers or date-time strings."""
    import polars as pl

    column = frame[time_col]
    if column.dtype.is_numeric():
        stamps = column.cast(pl.Float64).to_numpy()
        how = "as ms" if time_unit == "ms" else "as s"
        if time_unit == "auto":
            steps = np.diff(stamps)
            how = "as ms" if len(steps) and float(np.nanmedian(steps)) >= 0.1 else "as s"
        return (stamps / 1000.0 if how == "as ms" else stamps), how
    try:  # Mind Monitor's TimeStamp: '2025-07-01 14:56:05.592' (local time, to the ms)
        parsed = column.cast(pl.String).str.to_datetime(strict=False)
    except pl.exceptions.PolarsError as err:
        raise DatasetError(
            f"{path}: timestamp column {time_col!r} holds neither numbers nor date-times "
            f"(first value {column[0]!r}; {err})"
        ) from err
    stamps = parsed.dt.epoch("us").cast(pl.Float64).to_numpy() / 1e6
    return stamps, "as date-times"


def read_csv_raw(path: Path, *, time_unit: str = "auto", units: str = "uV") -> RawSource:
    """A timestamp + channels CSV as an MNE RawArray (volts), dropouts annotated `BAD_gap`."""
    import mne
    import polars as pl

    try:
        frame = pl.read_csv(path, infer_schema_length=10_000)
    except Exception as err:  # polars raises ComputeError/NoDataError... for bad CSVs
        raise DatasetError(f"{path}: cannot read CSV ({type(err).__name__}: {err})") from err
    time_col = time_column(frame.columns)
    if time_col is None:
        raise DatasetError(f"{path}: no timestamp column (a column whose name contains 'time')")
    dropped: dict[str, str] = {}
    numeric = []
    for k, name in enumerate(frame.columns):
        if name == time_col:
            continue
        if not name.strip():
            dropped[f"column {k + 1} (unnamed)"] = "unnamed column (a row index: pandas' to_csv)"
        elif frame.schema[name].is_numeric():
            numeric.append(name)
        else:
            why = classify_channel(name)[1]
            dropped[name] = why if why != "kept" else f"non-numeric column ({frame.schema[name]})"
    if not numeric:
        raise DatasetError(f"{path}: no numeric channel columns")
    eeg = eeg_columns(numeric) or numeric
    frame = frame.with_row_index("_line", offset=2)  # header is line 1
    notes, warnings = [], []
    # Marker/event rows, and rows of other sensors, carry a timestamp but no EEG sample.
    empty = frame.select(pl.all_horizontal(pl.col(eeg).is_null())).to_series()
    if empty.any():
        notes.append(f"{int(empty.sum())} rows without EEG values (events, markers) ignored")
        frame = frame.filter(~empty)
    stamps, how = _stamps_s(path, frame, time_col, time_unit)
    lines = frame["_line"].to_numpy()
    if len(stamps) < 3 or not np.isfinite(stamps).all():
        bad = np.flatnonzero(~np.isfinite(stamps))
        where = f" (line {lines[bad[0]]}: {frame[time_col][int(bad[0])]!r})" if len(bad) else ""
        raise DatasetError(
            f"{path}: timestamp column {time_col!r} needs 3 or more numbers or date-times{where}"
        )
    muse = set(MONTAGES["muse"]) <= {classify_channel(c)[0] for c in eeg}
    axis = time_axis(
        path,
        stamps,
        lines,
        rates=MUSE_RATES_HZ if muse else STANDARD_RATES_HZ,
        device="Muse" if muse else "",
    )
    notes.append(f"timestamps read {how} ({time_unit}); {axis.notes[0]}")
    notes += axis.notes[1:]
    warnings += axis.warnings
    data = frame.select(pl.col(numeric).cast(pl.Float64)).to_numpy().T  # (c, n) in `units`
    data = data * (CSV_UNIT_SCALE[units] * 1e-6)  # -> volts, MNE's unit for EEG
    info = mne.create_info(numeric, axis.sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    if EPOCH_2000_S <= stamps[0] <= EPOCH_2100_S:  # absolute clock time: the recording date
        raw.set_meas_date(datetime.datetime.fromtimestamp(float(stamps[0]), datetime.UTC))
    gaps = axis.gap_starts
    if len(gaps):
        raw.set_annotations(
            mne.Annotations(gaps / axis.sfreq, np.zeros(len(gaps)), ["BAD_gap"] * len(gaps))
        )
    return RawSource(raw, dropped=dropped, notes=notes, warnings=warnings)
