"""The nuisance variables of a shortcut audit: one row per unit of prediction.

A unit is a window range of one recording, given as a selection row (`file, participant,
run, row_start, row_end`): a whole recording, a crop of it, or one window. Each unit gets
what a model could score on without the label's physiology:

    n_windows         windows in the unit: its length (a sequence model sees it)
    position_s        seconds from the recording's first window to the unit's first
    recording_order   rank of the run among the participant's runs (run ids in natural order)
    recording_date    days since the dataset's earliest `meas_date` (where sources had one)
    sfreq             sampling rate, Hz
    channel_set       the recording's channels (or the channels a model uses), one string
    amplitude_uv      median over channels of the robust std (1.4826 MAD), µV
    line_noise        share of power within ±1 Hz of 50 or 60 Hz, the larger of the two
    null_space        log10 of the channel covariance's smallest eigenvalue over its median:
                      very negative when spatial components were removed (ICA cleaning,
                      re-referencing), which a model that mixes channels can read
    metadata:<name>   every metadata label of the recording except the target, and the
                      columns of an extra (per-participant) table

Amplitude, line noise and the null space come from evenly spaced windows of the
recording's units (all of them when there are few), read once per file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from eegwb.data.labels_table import LabelTable
from eegwb.data.layout import DatasetError, channel_array, recordings_index
from eegwb.data.splits import read_rows

UNIT_COLUMNS = ("file", "participant", "run", "row_start", "row_end")
BUILTIN = ("n_windows", "position_s", "recording_order", "recording_date", "sfreq",
           "channel_set", "amplitude_uv", "line_noise", "null_space")  # fmt: skip
METADATA_PREFIX = "metadata:"
DESCRIPTIONS = {
    "n_windows": "length of the unit (windows)",
    "position_s": "position of the unit in its recording (s from its first window)",
    "recording_order": "recording order (rank of the run among the participant's runs)",
    "recording_date": "recording date (days since the earliest meas_date)",
    "sfreq": "sampling rate (Hz)",
    "channel_set": "channel set",
    "amplitude_uv": "amplitude scale (median channel robust std, µV)",
    "line_noise": "line noise (power share at 50/60 Hz)",
    "null_space": "spatial rank deficit (log10 smallest / median covariance eigenvalue)",
}
SIGNAL_VARIABLES = ("amplitude_uv", "line_noise", "null_space")  # read from the samples


def describe(variable: str) -> str:
    if variable.startswith(METADATA_PREFIX):
        return f"metadata column {variable.removeprefix(METADATA_PREFIX)!r}"
    return DESCRIPTIONS.get(variable, variable)


def _natural_key(run: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", run)]


def _recording_order(index: pl.DataFrame) -> dict[tuple[str, str], int]:
    out = {}
    for (participant,), runs in index.group_by("participant"):
        for k, run in enumerate(sorted(runs["run"].to_list(), key=_natural_key)):
            out[(participant, run)] = k + 1
    return out


def _days(iso: str, first: dt.datetime | None) -> float | None:
    if not iso or first is None:
        return None
    return (dt.datetime.fromisoformat(iso) - first).total_seconds() / 86400.0


def _spaced(rows: np.ndarray, k: int) -> np.ndarray:
    if len(rows) <= k:
        return rows
    return rows[np.unique(np.linspace(0, len(rows) - 1, k).round().astype(int))]


def signal_stats(
    path: Path,
    rows: np.ndarray,
    channels: Sequence[str],
    *,
    max_windows: int,
    line_hz: Sequence[float] = (50.0, 60.0),
    halfwidth_hz: float = 1.0,
) -> tuple[float, float, float]:
    """(amplitude_uv, line_noise, null_space) of one recording from up to `max_windows` of
    its `rows`.

    amplitude: median over channels of 1.4826 x the median absolute deviation (µV), robust
    to blinks; line noise: per channel the power within ±halfwidth of each mains frequency
    below Nyquist over the total, median over channels, the larger of 50 and 60 Hz (NaN when
    both are past Nyquist); null space: log10 of the smallest eigenvalue of the channel
    covariance over the median one (NaN for one channel). Removing k ICA components leaves k
    eigenvalues at rounding level (~1e-9 of the median), where a full-rank recording's
    smallest sits near 1e-2."""
    meta, table = read_rows(path, _spaced(np.sort(rows), max_windows), channels)
    x = np.stack([channel_array(table, ch) for ch in channels]).astype(np.float64)  # (c, w, t)
    flat = x.reshape(len(channels), -1)
    mad = np.median(np.abs(flat - np.median(flat, axis=1, keepdims=True)), axis=1) * 1.4826
    t = x.shape[-1]
    freqs = np.fft.rfftfreq(t, 1.0 / meta.sfreq)
    centred = (x - x.mean(-1, keepdims=True)) * np.hanning(t)
    psd = (np.abs(np.fft.rfft(centred, axis=-1)) ** 2).mean(axis=1)  # (c, f), Hann periodogram
    total = psd.sum(axis=1)
    shares = [
        np.median(psd[:, np.abs(freqs - hz) <= halfwidth_hz].sum(axis=1) / np.maximum(total, 1e-30))
        for hz in line_hz
        if hz + halfwidth_hz < meta.sfreq / 2
    ]
    line = float(max(shares)) if shares else float("nan")
    return float(np.median(mad)), line, _null_space(flat)


def _null_space(flat: np.ndarray) -> float:
    """flat (c, n) samples -> log10(smallest / median eigenvalue of their covariance)."""
    if flat.shape[0] < 2:
        return float("nan")
    eig = np.linalg.eigvalsh(np.cov(flat))  # ascending, (c,)
    median = float(np.median(eig))
    if median <= 0:
        return float("nan")
    return float(np.log10(max(float(eig[0]), 1e-30) / median))


def _window_starts(path: Path) -> np.ndarray:
    return pq.read_table(path, columns=["window_start"]).column(0).to_numpy()


def _numeric_or_string(values: list) -> pl.Series:
    """Numbers (and numeric strings, as a CSV gives them) as Float64, anything else String."""

    def number(v: object) -> float | None:
        if v is None or isinstance(v, bool):
            return None if v is None else float(v)
        try:
            return float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError from None

    try:
        return pl.Series([number(v) for v in values], dtype=pl.Float64)
    except TypeError:
        return pl.Series([None if v is None else str(v) for v in values], dtype=pl.String)


def nuisance_frame(
    root: str | Path,
    units: pl.DataFrame,
    *,
    exclude: Sequence[str] = (),
    extra: pl.DataFrame | None = None,
    channels: Sequence[str] | None = None,
    max_windows_read: int = 16,
    line_hz: Sequence[float] = (50.0, 60.0),
    signal: bool = True,
) -> pl.DataFrame:
    """The unit rows with one column per nuisance variable (see the module docstring).

    exclude: metadata names to leave out (the label itself); extra: a table with a
    `participant` column (and optionally `run`) whose other columns become
    `metadata:<name>` too; channels: the channels a model uses (amplitude and line noise
    are then measured on these, and channel_set is them) instead of each file's own;
    signal False: no samples read (amplitude, line noise and null space left NaN)."""
    root = Path(root)
    missing = [c for c in UNIT_COLUMNS if c not in units.columns]
    if missing:
        raise ValueError(f"nuisance_frame: units lack columns {missing}")
    index = recordings_index(root).filter(pl.col("file").is_in(units["file"].unique().to_list()))
    order = _recording_order(recordings_index(root))
    dates = [dt.datetime.fromisoformat(d) for d in index["meas_date"].to_list() if d]
    first = min(dates) if dates else None
    per_file: dict[str, dict] = {}
    for rec in index.iter_rows(named=True):
        chans = list(channels) if channels is not None else rec["channels"]
        sel = units.filter(pl.col("file") == rec["file"])
        rows = np.unique(
            np.concatenate([np.arange(a, b) for a, b in sel.select("row_start", "row_end").rows()])
        )
        amp, line, null = (
            signal_stats(
                root / rec["file"], rows, chans, max_windows=max_windows_read, line_hz=line_hz
            )
            if signal
            else (float("nan"),) * 3
        )
        labels = {k: v for k, v in json.loads(rec["labels"]).items() if k not in exclude}
        per_file[rec["file"]] = {
            "starts": _window_starts(root / rec["file"]),
            "sfreq": rec["sfreq"],
            "recording_order": order[(rec["participant"], rec["run"])],
            "recording_date": _days(rec["meas_date"], first),
            "channel_set": ",".join(chans),
            "amplitude_uv": amp,
            "line_noise": line,
            "null_space": null,
            "labels": {
                k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in labels.items()
            },
        }
    files = units["file"].to_list()
    starts = [per_file[f]["starts"] for f in files]
    first_start = np.array([s[0] for s in starts], dtype=np.float64)
    unit_start = np.array(
        [s[r] for s, r in zip(starts, units["row_start"].to_list(), strict=True)], np.float64
    )
    sfreq = np.array([per_file[f]["sfreq"] for f in files])
    cols = {
        "n_windows": (units["row_end"] - units["row_start"]).cast(pl.Float64),
        "position_s": pl.Series((unit_start - first_start) / sfreq),
        **{k: pl.Series([per_file[f][k] for f in files])
           for k in ("recording_order", "recording_date", "sfreq", "channel_set", "amplitude_uv",
                     "line_noise", "null_space")},
    }  # fmt: skip
    names = sorted({k for f in per_file.values() for k in f["labels"]})
    for name in names:
        cols[METADATA_PREFIX + name] = _numeric_or_string(
            [per_file[f]["labels"].get(name) for f in files]
        )
    out = units.select(UNIT_COLUMNS).with_columns(**{k: pl.Series(k, v) for k, v in cols.items()})
    out = out.with_columns(
        pl.col("recording_date").cast(pl.Float64), pl.col("sfreq").cast(pl.Float64)
    )
    if extra is not None:
        out = _join_extra(out, extra, exclude)
    return out


def extra_columns(tables: Sequence[LabelTable]) -> pl.DataFrame:
    """Labels files (`eegwb.data.labels_table`, ids cleaned as ingest cleans them) as one
    table for `nuisance_frame(extra=...)`: participant, run (null on per-participant rows),
    one column per label column (later files win, as at ingest)."""
    rows: dict[tuple[str, str | None], dict[str, object]] = {}
    for table in tables:
        for key, values in table.rows.items():
            rows.setdefault(key, {}).update(values)
    per_run = [str(t.path) for t in tables if any(run is not None for _, run in t.rows)]
    if per_run:
        raise DatasetError(
            f"{per_run[0]}: per-run rows; ingest it with --labels instead (its "
            "columns then sit in each recording's metadata, which the audit reads)"
        )
    names = sorted({k for values in rows.values() for k in values})
    return pl.DataFrame(
        {
            "participant": [p for p, _ in rows],
            **{n: [None if (v := rows[k].get(n)) is None else str(v) for k in rows] for n in names},
        },
        schema={"participant": pl.String, **{n: pl.String for n in names}},
    )


def _join_extra(frame: pl.DataFrame, extra: pl.DataFrame, exclude: Sequence[str]) -> pl.DataFrame:
    """Columns of a per-participant (or per-recording) table as `metadata:<name>`; a name
    the recordings' metadata already has is not added twice."""
    keys = ["participant", "run"] if "run" in extra.columns else ["participant"]
    new = [c for c in extra.columns if c not in keys and c not in exclude
           and METADATA_PREFIX + c not in frame.columns]  # fmt: skip
    if not new:
        return frame
    table = extra.select(
        *[pl.col(k).cast(pl.String) for k in keys],
        *[pl.Series(METADATA_PREFIX + c, _numeric_or_string(extra[c].to_list())) for c in new],
    )
    return frame.join(table.unique(keys, keep="first"), on=keys, how="left", maintain_order="left")
