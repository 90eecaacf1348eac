"""Ingesting one source: read, pick channels, filter, resample, window -> one recording table.

In this order: channel names are normalised and non-EEG signals dropped (`raw_source.py`);
electrode positions come from `montage.py`; then, with MNE, notch (`notch_hz` and its
harmonics below Nyquist) and band-pass (`l_freq`, `h_freq`) at the source rate, resampling
to `sfreq`, cropping (`crop_start_seconds`, `crop_end_seconds`), and windowing over good
segments (`windowing.py`). NaN/Inf samples outside BAD spans are an error, before and after
filtering; inside them they are zeroed first. `window_start` counts from the first sample of
the uncropped (resampled) recording, so a window still points at its place in the source.

Scaling: MNE returns EEG in volts; stored samples are `float32(raw.get_data() * 1e6)`,
microvolts, exactly (CSV sources are read as µV, see `csv_source.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from eegwb.data.ingest_config import IngestConfig
from eegwb.data.ingest_report import SourceResult
from eegwb.data.layout import DatasetError, RecordingMeta, build_table, recording_filename
from eegwb.data.montage import MONTAGES, MontageError, electrode_positions, known_channels
from eegwb.data.raw_source import select_channels
from eegwb.data.source_ids import Source
from eegwb.data.sources import read_source
from eegwb.data.windowing import good_segments, window_starts


def montage_name(channels: Sequence[str], elc_path: str | None) -> str:
    """The smallest named montage holding every channel, else the standard template's name."""
    if elc_path:
        return "custom"
    for name, members in sorted(MONTAGES.items(), key=lambda kv: len(kv[1])):
        if set(channels) <= set(members):
            return name
    from eegwb.data.montage import standard_montage_name

    return standard_montage_name()


def _check_finite(
    path: Path, data: np.ndarray, names: Sequence[str], spans, sfreq: float, stage: str
) -> None:
    for start, stop in spans:
        finite = np.isfinite(data[:, start:stop])  # (c, n)
        if not finite.all():
            ch, idx = np.argwhere(~finite)[0]
            sample = start + int(idx)
            raise DatasetError(
                f"{path}: channel {names[ch]!r} has NaN/Inf samples {stage} "
                f"(first at sample {sample}, {sample / sfreq:.3f} s)"
            )


def _zero_non_finite(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, 0.0)


# Segments MNE filters separately: its defaults, and the timestamp gaps of CSV sources
# (a filter run across a dropout rings on both sides of it).
FILTER_SEGMENT_BOUNDARIES = ("edge", "bad_acq_skip", "bad_gap")


def _filter_resample(raw, cfg: IngestConfig, path: Path) -> None:
    """Notch and band-pass at the source rate, each segment on its own, then resample (MNE,
    in place). Resampling still runs across CSV gaps: MNE's resample has no segments."""
    source_sfreq = raw.info["sfreq"]
    nyquist = (cfg.sfreq or source_sfreq) / 2
    if cfg.h_freq and cfg.h_freq >= nyquist:
        raise DatasetError(f"{path}: h_freq {cfg.h_freq} Hz is not below Nyquist ({nyquist} Hz)")
    if cfg.notch_hz and cfg.notch_hz < source_sfreq / 2:
        raw.notch_filter(
            np.arange(cfg.notch_hz, source_sfreq / 2, cfg.notch_hz),
            skip_by_annotation=FILTER_SEGMENT_BOUNDARIES,
            verbose="error",
        )
    if cfg.l_freq or cfg.h_freq:
        raw.filter(
            cfg.l_freq, cfg.h_freq, skip_by_annotation=FILTER_SEGMENT_BOUNDARIES, verbose="error"
        )
    if cfg.sfreq and cfg.sfreq != source_sfreq:
        raw.resample(cfg.sfreq, verbose="error")


def _crop(raw, cfg: IngestConfig, path: Path) -> int:
    """Drop the configured seconds from both ends (MNE, in place) -> samples dropped at the start.

    Runs after filtering and resampling so that their edge transients, which sit at the
    recording's ends, go with the crop instead of into windows."""
    sfreq = raw.info["sfreq"]
    start = round(cfg.crop_start_seconds * sfreq)
    stop = raw.n_times - round(cfg.crop_end_seconds * sfreq)
    if stop == raw.n_times and not start:
        return 0  # no crop: a too-short recording is reported by the windowing step
    if stop - start < cfg.window_samples:
        raise DatasetError(
            f"{path}: cropping {cfg.crop_start_seconds:g} s at the start and "
            f"{cfg.crop_end_seconds:g} s at the end of {raw.n_times / sfreq:g} s leaves "
            f"{max(stop - start, 0)} samples at {sfreq:g} Hz, less than one window of "
            f"{cfg.window_samples}"
        )
    raw.crop(start / sfreq, (stop - 1) / sfreq, verbose="error")
    return start


def process_source(
    source: Source, cfg: IngestConfig, labels: dict[str, object], digest: str
) -> tuple[pa.Table, SourceResult]:
    """Read, clean, filter, resample and window one source -> (pyarrow Table, SourceResult)."""
    path = source.path
    rs = read_source(source, csv_time_unit=cfg.csv_time_unit, csv_units=cfg.csv_units)
    kept, dropped = select_channels(path, rs, cfg.channels)
    names = list(kept.values())
    try:
        positions = electrode_positions(names, elc_path=cfg.elc_path)
    except MontageError as err:
        known = known_channels(elc_path=cfg.elc_path)
        raise MontageError(err.unknown, known, f"{path}: {str(err).split(': ', 1)[0]}") from err
    raw = rs.raw.load_data().pick(list(kept)).rename_channels(kept)
    data = raw.get_data()
    _check_finite(path, data, names, good_segments(raw)[0], raw.info["sfreq"], "in the source")
    if not np.isfinite(data).all():  # only inside BAD spans: zero them so filters don't spread NaN
        raw.apply_function(_zero_non_finite, channel_wise=False)
    _filter_resample(raw, cfg, path)
    offset = _crop(raw, cfg, path)
    sfreq = float(raw.info["sfreq"])
    spans, n_bad = good_segments(raw)
    data = raw.get_data()  # (c, n) volts
    data *= 1e6  # -> µV
    _check_finite(path, data, names, spans, sfreq, "after filtering/resampling")
    w, hop = cfg.window_samples, cfg.hop
    window_start, parents, subs = window_starts(spans, w, hop)
    if not len(window_start):
        longest = max((b - a for a, b in spans), default=0)
        raise DatasetError(
            f"{path}: no window fits: longest good segment has {longest} samples at {sfreq:g} Hz, "
            f"window_samples is {w}"
        )
    index = window_start[:, None] + np.arange(w)  # (n_windows, w)
    signals = {name: data[i][index].astype(np.float32) for i, name in enumerate(names)}
    unwindowed_s = float((raw.n_times - n_bad - len(np.unique(index))) / sfreq)
    meta = RecordingMeta(
        sfreq=sfreq,
        window_samples=w,
        hop_samples=hop,
        channel_positions=positions,
        montage=montage_name(names, cfg.elc_path),
        source_file=str(path),
        source_hash=digest,
        labels=labels,
        meas_date=_iso_date(rs.raw.info["meas_date"]),
    )
    ids = (source.participant, source.run)
    table = build_table(*ids, signals, window_start + offset, meta, parents, subs)
    result = SourceResult(
        str(path),
        "written",
        *ids,
        recording_filename(*ids),
        len(window_start),
        names,
        sfreq,
        dropped,
        unwindowed_s,
        n_bad / sfreq,
        notes=rs.notes,
        warnings=rs.warnings,
    )
    return table, result


def _iso_date(meas_date: object) -> str:
    """MNE's info['meas_date'] (a UTC datetime, or None) as ISO 8601; "" when absent."""
    return meas_date.isoformat() if hasattr(meas_date, "isoformat") else ""
