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
      --config configs/ingest_eegmat.yaml`: the ingest options are read exactly as `eegwb
      ingest` reads them (`--config`, `--set KEY=VALUE`, and its flags: `--window-samples`,
      `--hop-samples`, `--sfreq`, `--l-freq`, `--h-freq`, `--notch`, `--crop-start`,
      `--crop-end` (eegmat's last ~3 s are tapered to zero: 3), `--labels CSV`,
      `--run-labels 1=0,2=1`, `--run-label-name`, `--participant-pattern`, `--on-error skip`);
      also `--overwrite true`. `--source synthetic` runs the generator with
      `--window-samples`, `--sfreq` (default 256), `--montage`, `--n-participants`.
    - Report (opens offline): `eegwb report notebooks/01_ingest.py -o reports/01_ingest.html --
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

    from eegwb.config import load_config
    from eegwb.data.ingest import IngestConfig, ingest, preview_frame, preview_sources
    from eegwb.data.layout import recordings_index
    from eegwb.data.montage import MONTAGES, MontageError, electrode_positions, plot_layout
    from eegwb.data.sources import parse_run_labels
    from eegwb.errors import InputError
    from eegwb.notebook import arg, autorun, ingest_config_args, load_config_or_stop, stop_or_exit

    return (
        IngestConfig,
        InputError,
        MONTAGES,
        MontageError,
        Path,
        alt,
        arg,
        autorun,
        electrode_positions,
        ingest,
        ingest_config_args,
        load_config,
        load_config_or_stop,
        mo,
        parse_run_labels,
        plot_layout,
        preview_frame,
        preview_sources,
        recordings_index,
        stop_or_exit,
    )


@app.cell
def _(IngestConfig, ingest_config_args, load_config_or_stop, mo):
    # The ingest options as `eegwb ingest` reads them: --config, --set, then its flags.
    config_path, cli_overrides = ingest_config_args()
    config_text = mo.ui.text(
        value=config_path or "", label="Ingest config (YAML, empty: defaults)", full_width=True
    )
    base, _shown = load_config_or_stop(IngestConfig, config_path, cli_overrides)
    mo.vstack([config_text, _shown])
    return base, cli_overrides, config_text


@app.cell
def _(arg, base, mo):
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
        value=base.participant_pattern or "",
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
    InputError,
    mo,
    pattern_text,
    preview_frame,
    preview_sources,
    source_paths,
    stop_or_exit,
    synthetic,
):
    try:
        infos = (
            preview_sources(source_paths, participant_pattern=pattern_text.value or None)
            if source_paths
            else []
        )
    except InputError as _err:  # a missing path, a bad pattern: say which
        stop_or_exit(
            True,
            mo.callout(mo.md(f"**Cannot read the sources.** {_err}"), kind="danger"),
            str(_err),
        )
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
def _(arg, base, mo):
    # The widgets start from the ingest config (file, --set and flags applied).
    window_samples = mo.ui.number(
        start=16, stop=65536, value=base.window_samples, label="Window (samples)"
    )
    hop_samples = mo.ui.number(
        start=0, stop=65536, value=base.hop_samples or 0, label="Hop (samples, 0 = window)"
    )
    sfreq = mo.ui.number(
        start=0, stop=10000, value=base.sfreq or 0, label="Resample to Hz (0 = keep)"
    )
    l_freq = mo.ui.number(
        start=0, stop=1000, value=base.l_freq or 0, label="High-pass Hz (0 = off)"
    )
    h_freq = mo.ui.number(start=0, stop=5000, value=base.h_freq or 0, label="Low-pass Hz (0 = off)")
    notch = mo.ui.number(start=0, stop=1000, value=base.notch_hz or 0, label="Notch Hz (0 = off)")
    crop_start = mo.ui.number(
        start=0, stop=3600, value=base.crop_start_seconds, label="Crop start (s)"
    )
    crop_end = mo.ui.number(start=0, stop=3600, value=base.crop_end_seconds, label="Crop end (s)")
    labels_csv = mo.ui.text(
        value=",".join(base.labels),
        label="Labels CSV (participant[, run], labels)",
        full_width=True,
    )
    run_labels = mo.ui.text(
        value=",".join(f"{k}={v}" for k, v in (base.run_labels or {}).items()),
        label="Run labels (e.g. 1=0,2=1)",
    )
    run_label_name = mo.ui.text(value=base.run_label_name, label="Run label name")
    on_error = mo.ui.dropdown(["raise", "skip"], value=base.on_error, label="On a bad file")
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
    InputError,
    cli_overrides,
    config_text,
    crop_end,
    crop_start,
    h_freq,
    hop_samples,
    l_freq,
    labels_csv,
    load_config,
    mo,
    notch,
    on_error,
    parse_run_labels,
    pattern_text,
    run_label_name,
    run_labels,
    sfreq,
    stop_or_exit,
    window_samples,
):
    # Built as `eegwb ingest` builds it: the file, its overrides, then the widgets' values.
    config, _error = None, ""
    try:
        _widgets = [
            ("window_samples", int(window_samples.value)),
            ("hop_samples", int(hop_samples.value) or None),
            ("sfreq", sfreq.value or None),
            ("l_freq", l_freq.value or None),
            ("h_freq", h_freq.value or None),
            ("notch_hz", notch.value or None),
            ("crop_start_seconds", crop_start.value or 0.0),
            ("crop_end_seconds", crop_end.value or 0.0),
            ("participant_pattern", pattern_text.value or None),
            ("labels", [p.strip() for p in labels_csv.value.split(",") if p.strip()]),
            (
                "run_labels",
                parse_run_labels(run_labels.value) if run_labels.value.strip() else None,
            ),
            ("run_label_name", run_label_name.value),
            ("on_error", on_error.value),
        ]
        config = load_config(IngestConfig, config_text.value or None, [*cli_overrides, *_widgets])
    except InputError as _err:
        _error = f"invalid ingest option: {_err}"
    stop_or_exit(
        config is None,
        mo.callout(mo.md(f"**Invalid ingest option.** {_error}"), kind="danger"),
        _error,
    )
    return (config,)


@app.cell
def _(
    InputError,
    Path,
    autorun,
    config,
    infos,
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
            # one step per recording found (a folder is one path but many recordings)
            with mo.status.progress_bar(total=max(1, len(infos)), title="Ingesting") as _bar:
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
    except InputError as _err:
        stop_or_exit(
            True, mo.callout(mo.md(f"**Ingest stopped.** {_err}"), kind="danger"), str(_err)
        )
    return out_dir, report


@app.cell
def _(mo, report):
    mo.stop(report is None)
    _frame = report.to_frame()
    _failed = _frame.filter(_frame["status"] == "failed")
    _parts = [
        mo.md(f"**{report.summary()}**"),
        mo.callout(mo.md("\n".join(f"- {w}" for w in report.warnings)), kind="warn")
        if report.warnings
        else None,
        mo.ui.table(_failed, selection=None) if _failed.height else None,
        mo.accordion({"Per-source report": mo.ui.table(_frame, selection=None, page_size=200)}),
    ]
    mo.vstack([_p for _p in _parts if _p is not None])  # a None would show as "None"
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
