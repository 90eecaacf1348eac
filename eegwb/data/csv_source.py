"""Reading a CSV export (a timestamp column plus one column per channel) into an MNE RawArray.

E.g. Muse: `timestamps,TP9,AF7,AF8,TP10,Right AUX`. The timestamp column is the first whose
name contains 'time'; other numeric columns are channels, non-numeric ones are dropped
(with the reason), and rows with no channel value (event/marker rows) are ignored.

Units: channel columns are read as microvolts (`units` scales other units) and turned into
volts for MNE's `RawArray`, so ingest scales every source back to µV identically.
Timestamps are seconds or milliseconds (`time_unit`; "auto" reads a median step >= 0.1 as
milliseconds, since a 10 Hz rate is not EEG); sfreq is 1 / the median step; a step > 1.5x
the median is a recording gap and becomes a zero-length `BAD_gap` annotation, which ingest
treats as a segment boundary.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eegwb.data.layout import DatasetError
from eegwb.data.raw_source import RawSource

CSV_UNIT_SCALE = {"uV": 1.0, "mV": 1e3, "V": 1e6}  # multiply by this to get µV
CSV_GAP_FACTOR = 1.5  # a timestamp step this many medians long is a dropout


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
    is_gap = steps > CSV_GAP_FACTOR * median
    # The mean step between gaps, not the median: timestamps rounded to whole ms (256 Hz:
    # steps of 3 and 4 ms) have a median of 4 ms, which would read as 250 Hz.
    mean = float(steps[~is_gap].mean())
    step_s = mean / 1000.0 if unit == "ms" else mean
    sfreq = 1.0 / step_s
    if abs(sfreq - round(sfreq)) / sfreq < 0.005:  # LSL jitter around a nominal rate
        sfreq = float(round(sfreq))
    gaps = np.flatnonzero(is_gap) + 1
    note = f"timestamps read as {unit} ({time_unit}); mean step {mean:g} -> sfreq {sfreq:g} Hz"
    return sfreq, gaps, note


def read_csv_raw(path: Path, *, time_unit: str = "auto", units: str = "uV") -> RawSource:
    """A timestamp + channels CSV as an MNE RawArray (volts), gaps annotated `BAD_gap`."""
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
