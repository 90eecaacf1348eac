import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # 01 · Ingest EEG into an eegwb dataset

    Turns recordings (EDF/BDF/FIF/BrainVision/EEGLAB files, a folder, a BIDS root, or
    Muse-style CSV exports) — or the synthetic generator — into the windowed Parquet
    layout every other notebook reads. Preview what was found (channels kept and dropped,
    sampling rates, durations, electrode layout), choose window length, hop, resampling,
    filters and labels, then press **Ingest**. The run is atomic and resumable: a re-run
    skips recordings whose source file is unchanged.

    - Interactive: `marimo edit notebooks/01_ingest.py`
    - Headless: `python notebooks/01_ingest.py --source ../shared/data/eegmat --out data/eegmat
      --window-samples 512` (`--source synthetic` runs the generator, with `--window-samples`,
      `--sfreq` (default 256), `--montage`, `--n-participants`; for recordings `--hop-samples`,
      `--sfreq`, `--l-freq`, `--h-freq`, `--notch`, `--crop-start`, `--crop-end` (seconds
      dropped from each recording's ends after filtering; eegmat's last ~3 s are tapered to
      zero, use `--crop-end 3`), `--labels CSV`, `--run-labels 1:0,2:1`, `--run-label-name`,
      `--participant-pattern`, `--on-error skip`, `--overwrite true`)
    - Report: `marimo export html notebooks/01_ingest.py -o reports/01_ingest.html --
      --source ../shared/data/eegmat --out data/eegmat --window-samples 512`

    Real EEG shown here: PhysioNet "EEG During Mental Arithmetic Tasks" (Zyma et al., 2019,
    Data 4(1):14; Goldberger et al., PhysioNet, Circulation 2000), ODC-By 1.0.
    """)
    return


@app.cell
def _():
    from pathlib import Path

    import altair as alt
    import marimo as mo

    from eegwb.atomic import OutputExistsError
    from eegwb.data.ingest import IngestConfig, ingest, preview_frame, preview_sources
    from eegwb.data.layout import DatasetError, recordings_index
    from eegwb.data.montage import MONTAGES, MontageError, electrode_positions, plot_layout
    from eegwb.data.sources import parse_run_labels
    from eegwb.notebook import arg, autorun, stop_or_exit

    return (
        DatasetError,
        IngestConfig,
        MONTAGES,
        MontageError,
        OutputExistsError,
        Path,
        alt,
        arg,
        autorun,
        electrode_positions,
        ingest,
        mo,
        parse_run_labels,
        plot_layout,
        preview_frame,
        preview_sources,
        recordings_index,
        stop_or_exit,
    )


@app.cell
def _(arg, mo):
    _synthetic = str(arg("source", "")) == "synthetic"
    source_kind = mo.ui.radio(
        ["recordings (files, folder, BIDS root)", "synthetic generator"],
        value="synthetic generator" if _synthetic else "recordings (files, folder, BIDS root)",
        label="Source",
    )
    source_text = mo.ui.text(
        value="" if _synthetic else str(arg("source", "../shared/data/eegmat")),
        label="Paths (comma-separated)",
        full_width=True,
    )
    out_text = mo.ui.text(
        value=str(arg("out", "data/eegmat")), label="Output dataset folder", full_width=True
    )
    pattern_text = mo.ui.text(
        value=str(arg("participant-pattern", "")),
        label="Participant pattern (regex, optional)",
        full_width=True,
    )
    mo.vstack([source_kind, source_text, out_text, pattern_text])
    return out_text, pattern_text, source_kind, source_text


@app.cell
def _(MONTAGES, arg, mo, source_kind):
    synth_montage = mo.ui.dropdown(
        sorted(MONTAGES), value=str(arg("montage", "standard_1020")), label="Synthetic montage"
    )
    synth_participants = mo.ui.number(
        start=2, stop=200, value=int(arg("n-participants", 20)), label="Synthetic participants"
    )
    _synthetic = source_kind.value == "synthetic generator"
    _shown = mo.hstack([synth_montage, synth_participants]) if _synthetic else mo.md("")
    _shown
    return synth_montage, synth_participants


@app.cell
def _(Path, source_kind, source_text):
    synthetic = source_kind.value == "synthetic generator"
    source_paths = (
        [] if synthetic else [Path(p.strip()) for p in source_text.value.split(",") if p.strip()]
    )
    return source_paths, synthetic


@app.cell
def _(
    DatasetError, mo, pattern_text, preview_frame, preview_sources, source_paths, stop_or_exit,
    synthetic,
):
    try:
        infos = (
            preview_sources(source_paths, participant_pattern=pattern_text.value or None)
            if source_paths
            else []
        )
    except (DatasetError, ValueError) as _err:  # a missing path, a bad pattern: say which
        stop_or_exit(True, mo.callout(mo.md(f"**Cannot read the sources.** {_err}"), kind="danger"),
                     str(_err))
    if synthetic:
        _shown = mo.md("The synthetic generator writes a cohort with planted, known effects.")
    elif not infos:
        _shown = mo.callout(mo.md("Enter a file, folder or BIDS root."), kind="warn")
    else:
        _shown = mo.vstack(
            [
                mo.md(f"**Found {len(infos)} recordings**"),
                mo.ui.table(preview_frame(infos), selection=None, page_size=min(len(infos), 200)),
            ]
        )
    _shown
    return (infos,)


@app.cell
def _(
    MONTAGES, MontageError, electrode_positions, infos, mo, plot_layout, synth_montage, synthetic
):
    if synthetic:
        _channels = list(MONTAGES[synth_montage.value])
    else:
        _channels = sorted({ch for _info in infos for ch in _info.kept})
    try:
        _figure = plot_layout(electrode_positions(_channels), title=f"{len(_channels)} channels")
    except MontageError as _err:
        _figure = mo.callout(mo.md(f"**No position for some channels.** {_err}"), kind="danger")
    _figure
    return


@app.cell
def _(arg, mo):
    window_samples = mo.ui.number(
        start=16, stop=65536, value=int(arg("window-samples", 2048)), label="Window (samples)"
    )
    hop_samples = mo.ui.number(
        start=0, stop=65536, value=int(arg("hop-samples", 0)), label="Hop (samples, 0 = window)"
    )
    sfreq = mo.ui.number(
        start=0, stop=10000, value=float(arg("sfreq", 0)), label="Resample to Hz (0 = keep)"
    )
    l_freq = mo.ui.number(
        start=0, stop=1000, value=float(arg("l-freq", 0)), label="High-pass Hz (0 = off)"
    )
    h_freq = mo.ui.number(
        start=0, stop=5000, value=float(arg("h-freq", 0)), label="Low-pass Hz (0 = off)"
    )
    notch = mo.ui.number(
        start=0, stop=1000, value=float(arg("notch", 0)), label="Notch Hz (0 = off)"
    )
    crop_start = mo.ui.number(
        start=0, stop=3600, value=float(arg("crop-start", 0)), label="Crop start (s)"
    )
    crop_end = mo.ui.number(
        start=0, stop=3600, value=float(arg("crop-end", 0)), label="Crop end (s)"
    )
    labels_csv = mo.ui.text(
        value=str(arg("labels", "")),
        label="Labels CSV (participant[, run], labels)",
        full_width=True,
    )
    run_labels = mo.ui.text(value=str(arg("run-labels", "")), label="Run labels (e.g. 1:0,2:1)")
    run_label_name = mo.ui.text(value=str(arg("run-label-name", "task")), label="Run label name")
    on_error = mo.ui.dropdown(
        ["raise", "skip"], value=str(arg("on-error", "raise")), label="On a bad file"
    )
    # `--overwrite` with no value arrives as '' from mo.cli_args(): present means yes.
    _flag = arg("overwrite")
    overwrite = mo.ui.checkbox(
        value=_flag is not None and str(_flag).lower() not in ("false", "0", "no"),
        label="Overwrite a different dataset",
    )
    run_button = mo.ui.run_button(label="Ingest")
    # The synthetic generator takes only the window size and the rate (0 = its 256 Hz):
    # filters, hop, crop and labels apply to recordings, so they are not shown for it.
    for_synthetic = mo.vstack(
        [
            mo.hstack([window_samples, sfreq]),
            mo.md(
                "The generator writes at the resample rate (0 = 256 Hz, at least 128) in "
                "windows of this size; filters, hop, crop, labels and the participant pattern "
                "apply to recordings only."
            ),
            mo.hstack([overwrite, run_button]),
        ]
    )
    for_recordings = mo.vstack(
        [
            mo.hstack([window_samples, hop_samples, sfreq]),
            mo.hstack([l_freq, h_freq, notch]),
            mo.hstack([crop_start, crop_end]),
            mo.md(
                "Cropping drops seconds from each recording's ends after filtering: edges "
                "tapered to zero (eegmat's last ~3 s) look alike across people and the leakage "
                "audit flags them as near-duplicates."
            ),
            labels_csv,
            mo.hstack([run_labels, run_label_name]),
            mo.hstack([on_error, overwrite, run_button]),
        ]
    )
    return (
        crop_end,
        crop_start,
        for_recordings,
        for_synthetic,
        h_freq,
        hop_samples,
        l_freq,
        labels_csv,
        notch,
        on_error,
        overwrite,
        run_button,
        run_label_name,
        run_labels,
        sfreq,
        window_samples,
    )


@app.cell
def _(for_recordings, for_synthetic, synthetic):
    for_synthetic if synthetic else for_recordings
    return


@app.cell
def _(
    IngestConfig,
    crop_end,
    crop_start,
    h_freq,
    hop_samples,
    l_freq,
    labels_csv,
    notch,
    on_error,
    parse_run_labels,
    pattern_text,
    run_label_name,
    run_labels,
    sfreq,
    window_samples,
):
    config = IngestConfig(
        window_samples=int(window_samples.value),
        hop_samples=int(hop_samples.value) or None,
        sfreq=sfreq.value or None,
        l_freq=l_freq.value or None,
        h_freq=h_freq.value or None,
        notch_hz=notch.value or None,
        crop_start_seconds=crop_start.value or 0.0,
        crop_end_seconds=crop_end.value or 0.0,
        participant_pattern=pattern_text.value or None,
        labels=tuple(p.strip() for p in labels_csv.value.split(",") if p.strip()),
        run_labels=parse_run_labels(run_labels.value) if run_labels.value.strip() else None,
        run_label_name=run_label_name.value,
        on_error=on_error.value,
    )
    return (config,)


@app.cell
def _(
    DatasetError,
    MontageError,
    OutputExistsError,
    Path,
    autorun,
    config,
    ingest,
    mo,
    out_text,
    overwrite,
    run_button,
    source_paths,
    stop_or_exit,
    synth_montage,
    synth_participants,
    synthetic,
):
    mo.stop(not (run_button.value or autorun()), mo.md("Set the options, then press **Ingest**."))
    out_dir = Path(out_text.value)
    report = None
    try:
        if synthetic:
            from eegwb.data.synthetic import SynthConfig, generate_cohort

            _cfg = SynthConfig(
                n_participants=int(synth_participants.value),
                montage=synth_montage.value,
                window_samples=config.window_samples,
                sfreq=float(config.sfreq or SynthConfig.sfreq),
            )
            with mo.status.spinner(
                title=f"Generating {_cfg.n_participants} synthetic participants"
            ):
                generate_cohort(out_dir, _cfg, overwrite=overwrite.value, progress=False)
        else:
            with mo.status.progress_bar(total=len(source_paths), title="Ingesting") as _bar:
                report = ingest(
                    source_paths,
                    out_dir,
                    config,
                    overwrite=overwrite.value,
                    progress=False,
                    on_progress=lambda r: _bar.update(
                        subtitle=f"{r.status}: {Path(r.source).name}"
                    ),
                )
            print(report.summary())
    except (DatasetError, MontageError, OutputExistsError) as _err:
        stop_or_exit(True, mo.callout(mo.md(f"**Ingest stopped.** {_err}"), kind="danger"), str(_err))
    return out_dir, report


@app.cell
def _(mo, report):
    mo.stop(report is None)
    _frame = report.to_frame()
    _failed = _frame.filter(_frame["status"] == "failed")
    mo.vstack(
        [
            mo.md(f"**{report.summary()}**"),
            mo.callout(mo.md("\n".join(f"- {w}" for w in report.warnings)), kind="warn")
            if report.warnings
            else None,
            mo.ui.table(_failed, selection=None) if _failed.height else None,
            mo.accordion({"Per-source report": mo.ui.table(_frame, selection=None, page_size=200)}),
        ]
    )
    return


@app.cell
def _(alt, mo, out_dir, recordings_index):
    index = recordings_index(out_dir)
    _chart = (
        alt.Chart(index.select("participant", "run", "n_windows"))
        .mark_bar()
        .encode(
            x=alt.X("participant:N"),
            y=alt.Y("sum(n_windows):Q", title="windows"),
            color="run:N",
            tooltip=["participant", "run", "n_windows"],
        )
        .properties(title="Windows per participant and run", height=220)
    )
    _counts = f"{index.height} recordings, {index['participant'].n_unique()} participants"
    print(f"dataset {out_dir}: {_counts}, {int(index['n_windows'].sum())} windows")
    mo.vstack(
        [
            mo.md(f"### Dataset `{out_dir}`: {_counts}"),
            # every row on one page, so a static HTML export holds the whole table
            mo.ui.table(
                index.drop("source_hash"), selection=None, page_size=min(index.height, 500)
            ),
            _chart,
        ]
    )
    return (index,)


if __name__ == "__main__":
    app.run()
