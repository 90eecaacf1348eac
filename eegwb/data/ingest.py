"""Ingest real EEG into the dataset layout (`eegwb/data/layout.py`): read, clean, window, write.

Sources are found and given ids as `sources.py` describes; each is turned into one
recording table by `ingest_source.process_source` (channels, filters, resampling, µV
scaling) over the good segments of `windowing.py`; labels join from `labels_table.py`. The
options are an `IngestConfig` (`ingest_config.py`), the outcome an `IngestReport`
(`ingest_report.py`); their public names, and preview's, are re-exported here.

Atomic and resumable: each file is written by `write_recording` (temp + rename); the
records of the run (`dataset.json` when it finishes, `dataset.incomplete.json` while it
has not; see dataset_record.py) hold the ingest options, a fingerprint of everything that
changes the output. A re-run with the same options skips every source whose xxh3_128 hash
equals the `source_hash` in its existing output file. One ingest at a time writes a
folder (a lock held for the run, eegwb.locks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from eegwb.atomic import OutputExistsError
from eegwb.data.dataset_record import (
    DATASET_JSON,
    LOCK_NAME,
    finish_record,
    governing_record,
    save_progress,
    start_record,
)
from eegwb.data.ingest_config import IngestConfig
from eegwb.data.ingest_report import IngestReport, SourceResult
from eegwb.data.ingest_source import montage_name, process_source
from eegwb.data.labels_table import (
    label_table_column,
    label_warnings,
    labels_for,
    read_label_table,
)
from eegwb.data.layout import (
    RECORDING_NAME,
    DatasetError,
    channel_columns,
    read_meta,
    recording_filename,
    write_recording,
)
from eegwb.data.montage import MontageError
from eegwb.data.source_files import expand_sources, source_hash
from eegwb.data.source_ids import Source, assign_ids
from eegwb.data.sources import SourceInfo, preview_frame, preview_sources
from eegwb.data.windowing import window_starts
from eegwb.locks import hold

__all__ = [
    "DATASET_JSON",
    "IngestConfig",
    "IngestReport",
    "SourceInfo",
    "SourceResult",
    "ingest",
    "montage_name",
    "preview_frame",
    "preview_sources",
    "process_source",
    "window_starts",
]

log = logging.getLogger(__name__)


def _recording_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("sub-*_run-*.parquet") if RECORDING_NAME.match(p.name))


def _check_outputs(out: Path, fingerprint: dict, overwrite: bool) -> None:
    """Refuse a non-empty `out` that holds another ingest (other options, or none), unless
    `overwrite`. The options that count are those of the recordings now in `out`: an
    unfinished run's (dataset.incomplete.json), else the last finished one's."""
    if not out.is_dir() or all(p.name == LOCK_NAME for p in out.iterdir()):
        return
    previous = governing_record(out)
    if not isinstance(previous, dict) or previous.get("kind") != "eegwb.ingest":
        why = f"holds no eegwb ingest {DATASET_JSON}"
    else:
        old = previous.get("options", {})
        changed = sorted(k for k in {*fingerprint, *old} if fingerprint.get(k) != old.get(k))
        why = f"was ingested with different options {changed}" if changed else ""
    if why and not overwrite:
        raise OutputExistsError(
            f"{out}: output directory is not empty and {why}; "
            "pass overwrite=True (--overwrite) to replace it"
        )


def _reusable(out: Path) -> dict[str, tuple]:
    """{file: (source_hash, n_windows, channels, sfreq, source_file)} of the recordings in `out`."""
    reusable = {}
    for path in _recording_files(out):
        try:
            meta, schema, n_rows = read_meta(path)
        except DatasetError as err:
            raise DatasetError(
                f"{err}; delete the file or pass overwrite=True (--overwrite)"
            ) from err
        reusable[path.name] = (
            meta.source_hash,
            n_rows,
            channel_columns(schema),
            meta.sfreq,
            meta.source_file,
        )
    return reusable


def _refuse_stale(out: Path, reusable: dict, planned: Sequence[Source]) -> None:
    """A re-run may not leave recordings behind that these sources no longer produce: a
    removed participant, or a run whose id changed, would stay in the dataset (or twice)."""
    stale = sorted(set(reusable) - {recording_filename(s.participant, s.run) for s in planned})
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        raise OutputExistsError(
            f"{out}: holds recordings that these sources no longer produce ({shown}): sources "
            "removed, renamed or given other ids since the last ingest; pass overwrite=True "
            "(--overwrite) to rebuild the directory from these sources, or use a new one"
        )


def _stem_id_warnings(planned: Sequence[Source]) -> list[str]:
    """Whole file stems as participant ids (`S001R01.edf` -> participant 'S001R01') make
    every file its own participant, so a participant split can leak one person's runs."""
    by_stem = [s for s in planned if s.id_source == "file stem"]
    if len(by_stem) == 1:  # one such file is worth a word too: its id is a guess
        (src,) = by_stem
        dropped = sorted({c for c in src.path.name.removesuffix(src.path.suffix) if not (
            c.isascii() and c.isalnum())})  # fmt: skip
        return [
            f"{src.path}: no participant/run in its name that eegwb recognises: stored as "
            f"participant {src.participant!r}, run '1'"
            + (f" (characters {dropped} dropped)" if dropped else "")
            + "; set participant_pattern (--participant-pattern) if that is not who it is"
        ]
    if not by_stem:
        return []
    shown = ", ".join(s.path.name for s in by_stem[:4]) + (", ..." if len(by_stem) > 4 else "")
    return [
        (
            f"{len(by_stem)} sources have no participant/run in their names that eegwb "
            f"recognises ({shown}): each file became its own participant with run '1'; if a "
            "person has several files, set participant_pattern (--participant-pattern, "
            "searched in the file name) with named groups, e.g. "
            "'S(?P<participant>\\d+)R(?P<run>\\d+)'"
        )
    ]


def _ignored_warnings(ignored: dict[Path, str], labels: Sequence[str]) -> list[str]:
    """Files left out of the sources, said once: a labels table passed as labels is in use
    (nothing to say); one that is not gets a hint to pass it."""
    used = {Path(p).resolve() for p in labels}
    out = []
    for path, why in ignored.items():
        if path in used:
            continue
        column = label_table_column(path) if path.suffix.lower() == ".csv" else None
        if column is not None:
            out.append(
                f"{path}: a labels table (participant column {column!r}), not a "
                "recording; pass it as labels (--labels) to join its columns"
            )
        else:
            out.append(f"{path}: ignored: {why}")
    return out


def _same_source(recorded: str, path: Path) -> bool:
    return not recorded or recorded == str(path) or Path(recorded).resolve() == path.resolve()


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
    One ingest at a time writes `out`: another one running there makes this one fail at
    once (eegwb.locks), naming it.
    """
    cfg = replace(config, **options) if config is not None else IngestConfig(**options)
    out = Path(out)
    report = IngestReport(out)
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)

    tables = [read_label_table(p) for p in cfg.labels]
    ignored: dict[Path, str] = {}
    planned = _plan(expand_sources(sources, ignored), cfg, report)
    report.warnings += _ignored_warnings(ignored, cfg.labels)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: output path exists and is not a directory")
    existed = out.is_dir()  # else a run that writes nothing leaves no directory behind
    with hold(out / LOCK_NAME, f"ingest output directory {out}"):
        _ingest_locked(
            planned, out, cfg, tables, sources, overwrite, progress, on_progress, report, existed
        )
    for line in report.channel_decisions():
        log.info("%s", line)
    log.info(report.summary())
    return report


def _ingest_locked(
    planned,
    out,
    cfg,
    tables,
    sources,
    overwrite,
    progress,
    on_progress,
    report: IngestReport,
    existed: bool,
) -> None:
    """The run proper, while this process owns `out` (see `ingest` and dataset_record.py)."""
    from tqdm.auto import tqdm

    fingerprint = cfg.fingerprint()
    _check_outputs(out, fingerprint, overwrite)
    record = start_record(
        options=fingerprint, config=asdict(cfg), sources=[str(s) for s in sources]
    )
    changed = False

    def before_change() -> None:  # the folder's record says a run is under way before it changes
        nonlocal changed
        if not changed:
            save_progress(out, record)
            changed = True

    for tmp in sorted(out.glob(".*.tmp")):  # left by a killed run (we own `out` now)
        tmp.unlink()
        report.removed.append(f"{tmp.name} (unfinished temporary file)")
    reusable = {}
    if overwrite:
        doomed = _recording_files(out) + [p for p in [out / "manifest.json"] if p.is_file()]
        if doomed:
            before_change()
        for path in doomed:
            path.unlink()
            report.removed.append(f"{path.name} (replaced: overwrite)")
    else:
        reusable = _reusable(out)
    _refuse_stale(out, reusable, planned)
    report.warnings += _stem_id_warnings(planned) + label_warnings(tables, planned)
    try:
        for src in tqdm(planned, desc="ingest", unit="file", disable=not progress):
            result = _ingest_one(src, cfg, out, tables, reusable, before_change)
            report.results.append(result)
            report.warnings += [f"{src.path}: {w}" for w in result.warnings]
            if on_progress is not None:
                on_progress(result)
        _consistency_warnings(report)
    except BaseException:
        if changed:  # say what this run did before it stopped; dataset.json stays as it was
            save_progress(out, _outcome(record, report))
        raise
    if existed or changed:
        finish_record(out, _outcome(record, report))


def _outcome(record: dict, report: IngestReport) -> dict:
    return {
        **record,
        "files": {
            r.file: {"source": r.source, "status": r.status}
            for r in report.results
            if r.status != "failed"
        },
        "failed": {r.source: r.reason for r in report.failed},
        "warnings": report.warnings,
    }


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
            _, n_rows, channels, sfreq, _ = reusable[name]
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
        if name in reusable and not _same_source(reusable[name][4], src.path):
            raise DatasetError(
                f"{out / name}: holds {reusable[name][4]}, not {src.path} (same participant "
                "and run, other file); pass overwrite=True (--overwrite) to replace it"
            )
        labels: dict[str, object] = dict(src.entities)
        labels.update(labels_for(tables, src.participant, src.run)[0])
        if cfg.run_labels is not None:
            labels[cfg.run_label_name] = cfg.run_labels[src.run]
        table, result = process_source(src, cfg, labels, digest)
        if name in reusable:
            result.notes.append("source changed since the last ingest: file rewritten")
        before_write()
        write_recording(out, table, overwrite=name in reusable)
        return result
    except (DatasetError, MontageError) as err:
        return _failure(cfg, src.path, src, err)


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
