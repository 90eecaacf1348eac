import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # 02 · Validate a dataset and its splits

    Before any training: is the data sound, and do the splits keep evaluation data out of
    training data? Pick a dataset and a splits file (or a default participant-grouped
    split), press **Validate**, and every check reports **pass / warn / fail** with its
    numbers and concrete examples:

    - **leakage audit**, every pair of splits: (1) participant, (2) run or source
      recording, (3) the same or time-overlapping windows of one recording, (4) identical
      z-scored content under other ids, (5) near duplicates (cosine ≥ threshold);
    - **data quality**: NaN/Inf, flat windows, outliers, normalisation, 50/60 Hz line
      noise, windows that share samples, electrode positions, label balance across
      splits (chi-square / KS) and band-power shift between splits (KS, BH-corrected);
    - **shortcut audit** (pick a label): can the label be predicted from nuisance variables
      alone (recording length, a window's position in its recording, recording order and
      date, amplitude, line noise, channel set, sampling rate, every other metadata
      column)? Each is a participant-grouped, cross-validated AUROC with a bootstrap CI.
      On EEGMAT, rest recordings give 22 windows of 8 s and arithmetic ones 7: length alone
      has AUROC 1.0, and a fine-tuned model that had learnt nothing scored recording AUROC
      0.88-0.91 on it. Fine-tuning crops every unit to one length by default
      (`data.length_match: crop`); this audit shows what is left.

    - Interactive: `marimo edit notebooks/02_validate_data.py`
    - Headless (like `eegwb validate`: exit 1 when a check fails, 2 when the data or splits
      cannot be read):
      `python notebooks/02_validate_data.py --data data/synthetic [--splits splits.json]
      [--near-dup-threshold 0.995] [--label remission]`
    - Report (opens offline): `eegwb report notebooks/02_validate_data.py -o
      reports/02_validate_data.html -- --data data/synthetic`
      (the HTML is written; the command also exits 1 when a check fails)

    Real EEG, when shown: PhysioNet "EEG During Mental Arithmetic Tasks" (Zyma et al., 2019,
    Data 4(1):14; Goldberger et al., PhysioNet, Circulation 2000), ODC-By 1.0.
    """)
    return


@app.cell
def _():
    from pathlib import Path

    import marimo as mo

    from eegwb.errors import InputError
    from eegwb.notebook import arg, autorun, stop_or_exit
    from eegwb.train.labels import audit_label, metadata_label_names
    from eegwb.validation.leakage import LeakageConfig
    from eegwb.validation.quality_charts import (
        STATUS_COLORS,
        channel_chart,
        checks_frame,
        label_chart,
        per_channel,
        positions_of,
        spectra_chart,
        topomap_figure,
    )
    from eegwb.validation.validation import resolve_splits, validate

    return (
        InputError,
        LeakageConfig,
        Path,
        STATUS_COLORS,
        arg,
        audit_label,
        autorun,
        channel_chart,
        checks_frame,
        label_chart,
        metadata_label_names,
        mo,
        per_channel,
        positions_of,
        resolve_splits,
        spectra_chart,
        stop_or_exit,
        topomap_figure,
        validate,
    )


@app.cell
def _(arg, mo):
    data_text = mo.ui.text(
        value=str(arg("data", "data/synthetic")), label="Dataset folder", full_width=True
    )
    splits_text = mo.ui.text(
        value=str(arg("splits", "")),
        label="Splits file (empty = default split by participant)",
        full_width=True,
    )
    test_fraction = mo.ui.slider(
        0.1,
        0.5,
        step=0.05,
        value=float(arg("test-fraction", 0.2)),
        label="Default split: val + test fraction",
    )
    seed = mo.ui.number(
        start=0, stop=10_000, value=int(arg("seed", 0)), label="Default split: seed"
    )
    threshold = mo.ui.number(
        start=0.9,
        stop=1.0,
        step=0.0005,
        value=float(arg("near-dup-threshold", 0.995)),
        label="Near-duplicate cosine",
    )
    run_button = mo.ui.run_button(label="Validate")
    mo.vstack([data_text, splits_text, mo.hstack([test_fraction, seed, threshold, run_button])])
    return data_text, run_button, seed, splits_text, test_fraction, threshold


@app.cell
def _(InputError, data_text, mo, resolve_splits, seed, splits_text, stop_or_exit, test_fraction):
    _held = float(test_fraction.value)
    try:
        splits, source = resolve_splits(
            data_text.value or None,
            splits_text.value or None,
            seed=int(seed.value),
            fractions=(1 - _held, _held / 2, _held / 2),
        )
    except InputError as _err:
        splits, source = None, str(_err)
    stop_or_exit(
        splits is None,
        mo.callout(mo.md(f"**Cannot resolve the splits.** {source}"), kind="danger"),
        f"cannot resolve the splits: {source}",
    )
    _sizes = [
        {
            "split": _name,
            "root": str(_s.root),
            "participants": _s.resolved()["participant"].n_unique(),
            "windows": _s.n_windows(),
        }
        for _name, _s in splits.items()
    ]
    mo.vstack([mo.md(f"Splits from {source}"), mo.ui.table(_sizes, selection=None)])
    return source, splits


@app.cell
def _(InputError, arg, metadata_label_names, mo, splits):
    _root = next(iter(splits.values())).root
    try:
        _names = metadata_label_names(_root)
    except InputError:
        _names = []
    _asked = str(arg("label", ""))
    label_pick = mo.ui.dropdown(
        ["(none)", *_names],
        value=_asked if _asked in _names else "(none)",
        label="Shortcut audit for label",
    )
    positive_text = mo.ui.text(
        value=str(arg("positive", "")), label="its class-1 value (empty: 0/1 labels)"
    )
    mo.hstack([label_pick, positive_text], justify="start")
    return label_pick, positive_text


@app.cell
def _(
    InputError,
    LeakageConfig,
    audit_label,
    autorun,
    label_pick,
    mo,
    positive_text,
    run_button,
    source,
    splits,
    stop_or_exit,
    threshold,
    validate,
):
    mo.stop(not (run_button.value or autorun()), mo.md("Press **Validate** to run every check."))
    _root = next(iter(splits.values())).root
    try:
        _label = (
            audit_label(_root, label_pick.value, positive_text.value or None)
            if label_pick.value != "(none)"
            else None
        )
        _error = None
    except InputError as _err:
        _label, _error = None, str(_err)
    stop_or_exit(
        _error is not None,
        mo.callout(mo.md(f"**Cannot read the label.** {_error}"), kind="danger"),
        f"cannot read the label: {_error}",
    )
    with mo.status.spinner(title="Data quality, leakage and shortcut audits"):
        report = validate(
            splits,
            source=source,
            leakage_cfg=LeakageConfig(near_dup_threshold=float(threshold.value)),
            label=_label,
        )
    print(report.summary())
    return (report,)


@app.cell
def _(STATUS_COLORS, checks_frame, mo, report):
    _frame = checks_frame(report.checks)
    _counts = {s: int((_frame["status"] == s).sum()) for s in STATUS_COLORS}
    _kind = {"pass": "success", "warn": "warn", "fail": "danger"}[report.status]
    _details = {
        f"{_c.status.upper()} {_c.name}": mo.ui.table(_c.examples, selection=None)
        for _c in report.checks
        if _c.status != "pass" and _c.examples
    }
    _parts = [
        mo.callout(
            mo.md(
                f"**Overall: {report.status.upper()}** — {_counts['pass']} passed, "
                f"{_counts['warn']} warnings, {_counts['fail']} failed"
            ),
            kind=_kind,
        ),
        mo.ui.table(_frame, selection=None, page_size=30),
        mo.accordion(_details) if _details else None,
    ]
    mo.vstack([_p for _p in _parts if _p is not None])  # a None would show as "None"
    return


@app.cell
def _(mo, report):
    _s = report.shortcuts
    if _s is None:
        _out = mo.md(
            "### Shortcut audit\n_Pick a label above to ask whether nuisance variables alone "
            "predict it._"
        )
    else:
        _out = mo.vstack(
            [
                mo.md(
                    "### Shortcut audit: the label from nuisance variables alone\n"
                    "Cross-validated over participants (a model is fitted on some people and "
                    "scored on others), AUROC with a participant-bootstrap 95% CI. **fail**: "
                    "AUROC >= 0.7 with the CI above 0.5; **warn**: the CI above 0.5 (or a "
                    "strong AUROC from too few people); a constant variable carries nothing. "
                    "Length and position are removed by fine-tuning's length matching; "
                    "recording order, date, amplitude, line noise and metadata are in the "
                    "data's design and stay: judge them."
                ),
                _s.chart(),
                mo.ui.table(_s.table(), selection=None, page_size=20),
            ]
        )
    _out
    return


@app.cell
def _(channel_chart, label_chart, mo, report, spectra_chart):
    _q = report.quality
    _labels = label_chart(_q.labels)
    mo.vstack(
        [
            mo.md("### Label distribution per split"),
            _labels if _labels is not None else mo.md("_No labels in this dataset._"),
            mo.md("### Per-channel statistics"),
            channel_chart(_q.channel_stats, "robust_std_uv"),
            channel_chart(_q.channel_stats, "mean_uv"),
            mo.md("### Spectra per split"),
            spectra_chart(_q.spectra),
        ]
    )
    return


@app.cell
def _(mo):
    topo_stat = mo.ui.dropdown(
        [
            "robust_std_uv",
            "mean_uv",
            "line_ratio_50",
            "line_ratio_60",
            "outlier_fraction",
            "n_flat_windows",
        ],
        value="robust_std_uv",
        label="Per-channel number on the scalp",
    )
    topo_stat
    return (topo_stat,)


@app.cell
def _(mo, per_channel, positions_of, report, topo_stat, topomap_figure):
    _q = report.quality
    _positions = positions_of(_q.files)
    _values = per_channel(_q.channel_stats, topo_stat.value)
    try:
        _fig = topomap_figure(_values, _positions, title=f"median over files: {topo_stat.value}")
    except ValueError as _err:
        _fig = mo.callout(mo.md(f"No topomap: {_err}"), kind="warn")
    _fig
    return


@app.cell
def _(autorun, mo, report):
    # Headless runs exit 1 when a check fails, like `eegwb validate` (a CI gate).
    if autorun() and report.failed:
        raise SystemExit(1)
    mo.md(f"Validation status: **{report.status}**")
    return


if __name__ == "__main__":
    app.run()
