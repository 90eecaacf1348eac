"""Ingest real EEG into the dataset layout (`eegwb/data/layout.py`): read, clean, window, write.

Per source (see `eegwb/data/sources.py` for what a source is and how ids are found):
channel names are normalised and non-EEG signals dropped (`channels.classify_channel`,
each drop reported with its reason); electrode positions come from `montage.py`; then,
with MNE and in this order, notch (`notch_hz` and its harmonics below Nyquist) and
band-pass (`l_freq`, `h_freq`) at the source rate, resampling to `sfreq`, and windowing.

Scaling: MNE returns EEG in volts; stored samples are `float32(raw.get_data() * 1e6)`,
microvolts, exactly (CSV sources are read as µV, see sources.py).

Windows: annotations whose description starts with "BAD" or "EDGE" (MNE's
`BAD_ACQ_SKIP` for EDF+D gaps, `BAD_gap` for CSV dropouts, user BAD spans) cut the
recording into contiguous good segments; `parent_window_id` is the segment's index,
`sub_window_id` the window's index within it, and `window_start`/`window_end` are sample
indices of the (resampled) recording. Samples no window covers are counted in the report.

Atomic and resumable: each file is written by `write_recording` (temp + rename);
`dataset.json` records the ingest options (a fingerprint of everything that changes the
output) and is rewritten when the run ends. A re-run with the same options skips every
source whose xxh3_128 hash equals the `source_hash` in its existing output file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from eegwb.atomic import OutputExistsError, atomic_write_text
from eegwb.data.layout import (
    DatasetError,
    RecordingMeta,
    build_table,
    channel_columns,
    read_meta,
    recording_filename,
    write_recording,
)
from eegwb.data.montage import MONTAGES, MontageError, electrode_positions, known_channels
from eegwb.data.sources import (
    CSV_UNIT_SCALE,
    Source,
    assign_ids,
    clean_id,
    expand_sources,
    join_reasons,
    labels_for,
    read_label_table,
    read_source,
    select_channels,
    source_hash,
)

# Re-exported: the preview half of ingest's public API lives in sources.py.
from eegwb.data.sources import SourceInfo as SourceInfo
from eegwb.data.sources import preview_frame as preview_frame
from eegwb.data.sources import preview_sources as preview_sources

log = logging.getLogger(__name__)
DATASET_JSON = "dataset.json"


@dataclass
class IngestConfig:
    """Everything that decides what ingest writes (all of it goes into dataset.json)."""

    window_samples: int = 2048  # the original pipeline's window (8 s at 256 Hz)
    hop_samples: int | None = None  # None = window_samples: no overlap, no shared samples
    sfreq: float | None = None  # resample to this rate (Hz); None keeps each source's rate
    l_freq: float | None = None  # band-pass high-pass edge (Hz); None = no high-pass
    h_freq: float | None = None  # band-pass low-pass edge (Hz); None = no low-pass
    notch_hz: float | None = None  # line frequency (50/60 Hz); its harmonics below Nyquist too
    participant_pattern: str | None = None  # regex with named groups participant[, run]
    labels: tuple[str, ...] = ()  # CSV files: participant[, run] + label columns
    run_labels: dict[str, object] | None = None  # run id -> label value, e.g. {"1": 0, "2": 1}
    run_label_name: str = "task"  # the label name run_labels is stored under
    channels: tuple[str, ...] | None = None  # required channels (normalised); others dropped
    elc_path: str | None = None  # ASA .elc positions instead of MNE's standard montage
    csv_time_unit: str = "auto"  # "s", "ms" or "auto" (see sources.py)
    csv_units: str = "uV"  # unit of CSV channel columns: "uV", "mV" or "V"
    on_error: str = "raise"  # "raise" stops at the first bad source; "skip" reports it and goes on

    def __post_init__(self) -> None:
        if int(self.window_samples) <= 0 or int(self.hop) <= 0:
            raise ValueError(
                f"IngestConfig.window_samples ({self.window_samples}) and hop_samples "
                f"({self.hop_samples}) must be > 0"
            )
        for name in ("sfreq", "l_freq", "h_freq", "notch_hz"):
            value = getattr(self, name)
            if value is not None and not float(value) > 0:
                raise ValueError(f"IngestConfig.{name} must be > 0 or None, got {value}")
        if self.l_freq and self.h_freq and self.l_freq >= self.h_freq:
            raise ValueError(
                f"IngestConfig: l_freq {self.l_freq} must be below h_freq {self.h_freq}"
            )
        if self.participant_pattern:
            try:
                groups = re.compile(self.participant_pattern).groupindex
            except re.error as err:
                raise ValueError(f"IngestConfig.participant_pattern is not a regex: {err}") from err
            if "participant" not in groups:
                raise ValueError("IngestConfig.participant_pattern needs a (?P<participant>) group")
        choices = {"on_error": ("raise", "skip"), "csv_time_unit": ("auto", "s", "ms")}
        for name, allowed in {**choices, "csv_units": tuple(CSV_UNIT_SCALE)}.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"IngestConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        self.labels = tuple(str(p) for p in self.labels)
        for path in (*self.labels, *([self.elc_path] if self.elc_path else [])):
            if not Path(path).is_file():
                raise ValueError(f"{path}: file does not exist")
        if self.run_labels is not None:
            self.run_labels = {clean_id(k): v for k, v in self.run_labels.items()}
        if self.channels is not None:
            self.channels = tuple(str(c).upper() for c in self.channels)

    @property
    def hop(self) -> int:
        """Samples between window starts (hop_samples, or window_samples when None)."""
        return self.window_samples if self.hop_samples is None else self.hop_samples

    def fingerprint(self) -> dict[str, object]:
        """The options that change the output, plus hashes of the files they name."""
        out = {k: v for k, v in asdict(self).items() if k != "on_error"} | {"hop_samples": self.hop}
        # Files by content, not by path: the same labels read from elsewhere change nothing.
        out["labels"] = [source_hash(Path(p)) for p in self.labels]
        out["elc_path"] = source_hash(Path(self.elc_path)) if self.elc_path else None
        return json.loads(json.dumps(out, sort_keys=True))


@dataclass
class SourceResult:
    """What happened to one source: written, skipped (unchanged) or failed (with the reason)."""

    source: str
    status: str
    participant: str | None = None
    run: str | None = None
    file: str | None = None
    n_windows: int = 0
    channels: list[str] = field(default_factory=list)
    sfreq: float | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    unwindowed_s: float = 0.0  # good signal in no window (segment tails, short segments)
    bad_s: float = 0.0  # signal inside BAD/EDGE annotations
    reason: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    out: Path
    results: list[SourceResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # files removed: overwrite, temp leftovers

    def _with(self, status: str) -> list[SourceResult]:
        return [r for r in self.results if r.status == status]

    @property
    def written(self) -> list[SourceResult]:
        return self._with("written")

    @property
    def skipped(self) -> list[SourceResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[SourceResult]:
        return self._with("failed")

    def to_frame(self) -> "pl.DataFrame":  # noqa: F821
        """One row per source: status, ids, file, windows, channels kept/dropped, reason."""
        import polars as pl

        first = ("status", "source", "participant", "run", "file", "n_windows")
        rows = [
            {c: getattr(r, c) for c in first}
            | {"n_channels": len(r.channels), "dropped": join_reasons(r.dropped)}
            | {"unwindowed_s": r.unwindowed_s, "bad_s": r.bad_s, "reason": r.reason}
            for r in self.results
        ]
        strings = {"participant": pl.String, "run": pl.String, "file": pl.String}
        return pl.DataFrame(rows, schema_overrides=strings)

    def summary(self) -> str:
        return (
            f"{self.out}: {len(self.written)} written, {len(self.skipped)} skipped (unchanged), "
            f"{len(self.failed)} failed, {len(self.warnings)} warnings"
        )


def montage_name(channels: Sequence[str], elc_path: str | None) -> str:
    """The smallest named montage holding every channel, else the standard template's name."""
    if elc_path:
        return "custom"
    for name, members in sorted(MONTAGES.items(), key=lambda kv: len(kv[1])):
        if set(channels) <= set(members):
            return name
    from eegwb.data.montage import standard_montage_name

    return standard_montage_name()


def _segments(raw) -> tuple[list[tuple[int, int]], int]:
    """Good [start, stop) sample spans between BAD/EDGE annotations, and the BAD sample count."""
    n = raw.n_times
    bad = np.zeros(n, dtype=bool)
    cuts = set()
    ann = raw.annotations
    # With no measurement date MNE stores onsets shifted by first_time; undo that.
    shift = raw.first_time if ann.orig_time is None else 0.0
    for onset, duration, desc in zip(ann.onset, ann.duration, ann.description):
        if not desc.upper().startswith(("BAD", "EDGE")):
            continue
        start, stop = raw.time_as_index(
            [onset - shift, onset - shift + duration], use_rounding=True, origin=ann.orig_time
        )
        start, stop = int(np.clip(start, 0, n)), int(np.clip(stop, 0, n))
        if stop > start:
            bad[start:stop] = True
        else:
            cuts.add(start)  # a zero-length boundary: no window may straddle it
    edges = np.flatnonzero(np.diff(np.concatenate([[True], bad, [True]]).astype(np.int8)))
    spans = list(zip(edges[::2], edges[1::2]))  # runs of good samples
    out = []
    for start, stop in spans:
        inner = sorted(c for c in cuts if start < c < stop)
        bounds = [int(start), *inner, int(stop)]
        out.extend(zip(bounds[:-1], bounds[1:]))
    return out, int(bad.sum())


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


def window_starts(spans: Sequence[tuple[int, int]], w: int, hop: int) -> tuple[np.ndarray, ...]:
    """(window_start, parent_window_id, sub_window_id), each (n_windows,), over good spans."""
    parts = [np.arange(a, b - w + 1, hop, dtype=np.int64) for a, b in spans]
    parents = [np.full(len(p), seg, np.int32) for seg, p in enumerate(parts)]
    subs = [np.arange(len(p), dtype=np.int32) for p in parts]
    empty = [np.zeros(0, np.int64)]
    return tuple(np.concatenate(x or empty) for x in (parts, parents, subs))


def _zero_non_finite(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, 0.0)


def _filter_resample(raw, cfg: IngestConfig, path: Path) -> None:
    """Notch and band-pass at the source rate, then resample (MNE, in place)."""
    source_sfreq = raw.info["sfreq"]
    nyquist = (cfg.sfreq or source_sfreq) / 2
    if cfg.h_freq and cfg.h_freq >= nyquist:
        raise DatasetError(f"{path}: h_freq {cfg.h_freq} Hz is not below Nyquist ({nyquist} Hz)")
    if cfg.notch_hz and cfg.notch_hz < source_sfreq / 2:
        raw.notch_filter(np.arange(cfg.notch_hz, source_sfreq / 2, cfg.notch_hz), verbose="error")
    if cfg.l_freq or cfg.h_freq:
        raw.filter(cfg.l_freq, cfg.h_freq, verbose="error")
    if cfg.sfreq and cfg.sfreq != source_sfreq:
        raw.resample(cfg.sfreq, verbose="error")


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
    _check_finite(path, data, names, _segments(raw)[0], raw.info["sfreq"], "in the source")
    if not np.isfinite(data).all():  # only inside BAD spans: zero them so filters don't spread NaN
        raw.apply_function(_zero_non_finite, channel_wise=False)
    _filter_resample(raw, cfg, path)
    sfreq = float(raw.info["sfreq"])
    spans, n_bad = _segments(raw)
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
    )
    ids = (source.participant, source.run)
    table = build_table(*ids, signals, window_start, meta, parents, subs)
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
    )
    return table, result


def _existing_outputs(
    out: Path, fingerprint: dict, overwrite: bool, report: IngestReport
) -> dict[str, tuple]:
    """Check the output directory -> {file: (source_hash, n_windows, channels, sfreq)} to reuse.

    Reuse needs the same options (dataset.json). `overwrite` removes every recording file
    first, so a crash midway can never leave old-option files that a resume would trust.
    """
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: output path exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return {}
    info_path = out / DATASET_JSON
    previous = None
    if info_path.is_file():
        try:
            previous = json.loads(info_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetError(f"{info_path}: not valid JSON ({err})") from err
    if not isinstance(previous, dict) or previous.get("kind") != "eegwb.ingest":
        why = "holds no eegwb ingest dataset.json"
    else:
        old = previous.get("options", {})
        changed = sorted(k for k in {*fingerprint, *old} if fingerprint.get(k) != old.get(k))
        why = f"was ingested with different options {changed}" if changed else ""
    if why and not overwrite:
        raise OutputExistsError(
            f"{out}: output directory is not empty and {why}; "
            "pass overwrite=True (--overwrite) to replace it"
        )
    for tmp in sorted(out.glob(".*.tmp")):  # left by an interrupted run; never complete
        tmp.unlink()
        report.removed.append(f"{tmp.name} (unfinished temporary file)")
    if overwrite:
        for path in sorted(out.glob("sub-*_run-*.parquet")) + [
            p for p in [out / "manifest.json"] if p.is_file()
        ]:
            path.unlink()
            report.removed.append(f"{path.name} (replaced: overwrite)")
        return {}
    reusable = {}
    for path in sorted(out.glob("sub-*_run-*.parquet")):
        try:
            meta, schema, n_rows = read_meta(path)
        except DatasetError as err:
            raise DatasetError(
                f"{err}; delete the file or pass overwrite=True (--overwrite)"
            ) from err
        reusable[path.name] = (meta.source_hash, n_rows, channel_columns(schema), meta.sfreq)
    return reusable


def _failure(cfg: IngestConfig, path: Path, src: Source | None, err: Exception) -> SourceResult:
    """Raise `err` (on_error="raise") or turn it into a reported failure ("skip")."""
    if cfg.on_error == "raise":
        raise err
    return SourceResult(
        str(path), "failed", src and src.participant, src and src.run, reason=str(err)
    )


def _plan(paths: Sequence[Path], cfg: IngestConfig, report: IngestReport) -> list[Source]:
    """Ids for every file; a source without a unique, labelled id fails (raised or reported)."""
    planned: dict[tuple[str, str], list[Source]] = {}
    for path, src in zip(paths, assign_ids(paths, cfg.participant_pattern)):
        try:
            if isinstance(src, DatasetError):
                raise src
            if cfg.run_labels is not None and src.run not in cfg.run_labels:
                raise DatasetError(
                    f"{path}: run {src.run!r} has no entry in run_labels {cfg.run_labels}"
                )
        except DatasetError as err:
            known = src if isinstance(src, Source) else None
            report.results.append(_failure(cfg, path, known, err))
            continue
        planned.setdefault((src.participant, src.run), []).append(src)
    out = []
    for (participant, run), group in planned.items():
        if len(group) > 1:
            names = ", ".join(str(s.path) for s in group)
            err = DatasetError(f"{names}: duplicated (participant, run) ({participant!r}, {run!r})")
            report.results.extend(_failure(cfg, src.path, src, err) for src in group)
        else:
            out.append(group[0])
    return out


def ingest(
    sources: Iterable[str | Path] | str | Path,
    out: str | Path,
    config: IngestConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    on_progress: Callable[[SourceResult], None] | None = None,
    **options,
) -> IngestReport:
    """Ingest `sources` into the dataset directory `out`; options are IngestConfig fields.

    `on_progress(result)` is called after each source (notebook progress bars). With
    `on_error="raise"` the first bad source raises DatasetError/MontageError after the
    files already written are kept (a re-run resumes); with "skip" it is reported.
    """
    from tqdm.auto import tqdm

    cfg = replace(config, **options) if config is not None else IngestConfig(**options)
    out = Path(out)
    report = IngestReport(out)
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)

    tables = [read_label_table(p) for p in cfg.labels]
    ignored: dict[Path, str] = {}
    planned = _plan(expand_sources(sources, ignored), cfg, report)
    report.warnings += [f"{path}: ignored: {why}" for path, why in ignored.items()]
    fingerprint = cfg.fingerprint()
    reusable = _existing_outputs(out, fingerprint, overwrite, report)
    _label_warnings(tables, planned, report)
    record = {
        "kind": "eegwb.ingest",
        "complete": False,
        "options": fingerprint,
        "config": asdict(cfg),
        "sources": [str(s) for s in sources],
    }

    def save_record() -> None:  # before the first recording file, so a crash can resume
        atomic_write_text(out / DATASET_JSON, json.dumps(record, indent=2))

    if out.is_dir():
        save_record()
    try:
        for src in tqdm(planned, desc="ingest", unit="file", disable=not progress):
            result = _ingest_one(src, cfg, out, tables, reusable, save_record)
            report.results.append(result)
            if on_progress is not None:
                on_progress(result)
        record["complete"] = True
        _consistency_warnings(report)
    finally:
        if out.is_dir():  # else nothing was written: leave no directory behind
            record["files"] = {
                r.file: {"source": r.source, "status": r.status}
                for r in report.results
                if r.status != "failed"
            }
            record["failed"] = {r.source: r.reason for r in report.failed}
            record["warnings"] = report.warnings
            save_record()
    log.info(report.summary())
    return report


def _ingest_one(
    src: Source,
    cfg: IngestConfig,
    out: Path,
    tables,
    reusable: dict,
    before_write: Callable[[], None],
) -> SourceResult:
    name = recording_filename(src.participant, src.run)
    try:
        digest = source_hash(src.path)
        if name in reusable and reusable[name][0] == digest:
            _, n_rows, channels, sfreq = reusable[name]
            return SourceResult(
                str(src.path),
                "skipped",
                src.participant,
                src.run,
                name,
                n_rows,
                channels,
                sfreq=sfreq,
                reason="unchanged source (same xxh3_128 hash as the existing file)",
            )
        labels: dict[str, object] = dict(src.entities)
        labels.update(labels_for(tables, src.participant, src.run)[0])
        if cfg.run_labels is not None:
            labels[cfg.run_label_name] = cfg.run_labels[src.run]
        table, result = process_source(src, cfg, labels, digest)
        if name in reusable:
            result.notes.append("source changed since the last ingest: file rewritten")
        if not (out / DATASET_JSON).is_file():
            before_write()
        write_recording(out, table, overwrite=name in reusable)
        return result
    except (DatasetError, MontageError) as err:
        return _failure(cfg, src.path, src, err)


def _label_warnings(tables, planned: Sequence[Source], report: IngestReport) -> None:
    """Label rows that match no recording, and recordings with no row, both reported."""
    participants = {s.participant for s in planned}
    lacking: dict[str, list[str]] = {}
    for src in planned:
        for path in labels_for(tables, src.participant, src.run)[1]:
            lacking.setdefault(path, []).append(f"{src.participant}/{src.run}")
    for table in tables:
        unmatched = sorted({p for p, _ in table.rows if p not in participants})
        if unmatched:
            report.warnings.append(
                f"{table.path}: rows for participants {unmatched} match no source"
            )
        if lacking.get(str(table.path)):
            report.warnings.append(
                f"{table.path}: no row for recordings {lacking[str(table.path)]}"
            )


def _consistency_warnings(report: IngestReport) -> None:
    done = report.written + report.skipped
    channel_sets = {tuple(r.channels) for r in done}
    if len(channel_sets) > 1:
        report.warnings.append(f"recordings have {len(channel_sets)} different channel sets")
    rates = sorted({r.sfreq for r in done})
    if len(rates) > 1:
        report.warnings.append(
            f"recordings have different sampling rates {rates} Hz (set sfreq to resample)"
        )
