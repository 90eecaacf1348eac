import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # 05 · Model autopsy

    Why does a trained model do what it does? Pick a checkpoint (pretrained masked
    reconstruction, or fine-tuned classifier) and a split. The cheap sections run at once:
    **predictions** vs targets and the information floors (collapse check), **gradient flow** on one
    batch (dead layers), **activations** of every Linear/Conv1d and block (dead units), and
    **failure modes** (worst samples, bias by target range and participant). The expensive
    ones wait for **Run attributions and ablations**: Captum Integrated Gradients (zero /
    mean / noise baselines) profiled per channel, window, time bin and frequency band, a
    layer attribution on each Mamba-2 conv1d, and ablations whose ranking is compared with
    IG's. The model runs on the reference PyTorch path so every hook fires.

    - Interactive: `marimo edit notebooks/05_autopsy.py`
    - Headless: `python notebooks/05_autopsy.py --checkpoint
      checkpoints/tiny/mamba2_eeg_d32_l2_m50_mae.pt [--data DIR] [--split val]
      [--max-sequences 32] [--ig-steps 24] [--baselines zero,mean,noise]
      [--out reports/autopsy/NAME] [--overwrite true] [--track true]`
    - Report (opens offline): `eegwb report notebooks/05_autopsy.py -o reports/05_autopsy.html --
      --checkpoint PATH`
    - CLI: `eegwb autopsy --checkpoint PATH` writes the same report (markdown + HTML).

    On the synthetic cohort, a classifier of its label is checked against the manifest's
    planted channels and band.

    **One answer with `eegwb control`.** A reconstruction model is compared with the same
    floors control uses (group means learnt on the training participants, scored on the
    probe's masked tokens), not with means of the probe set itself: those once made the
    autopsy warn "predicting each channel's mean window beats the model" (0.997 vs 1.065,
    ~14 tokens per channel) while control put the channel floor at no gain. Its advice
    reads the checkpoint's config, so it never recommends the target already in use.
    For a classifier, what one prediction is matters: one channel-sequence (a fine-tuned
    deep model) is not one all-channel window (the band-power baseline); and a label that
    differs only in recording length is a shortcut, not a finding (EEGMAT: rest 22 windows,
    arithmetic 7; length alone gave recording AUROC 0.88-0.91; see notebook 06).
    """)
    return


@app.cell
def _():
    from pathlib import Path

    import marimo as mo

    from eegwb.errors import InputError
    from eegwb.experiments.ablations import AblationConfig
    from eegwb.experiments.attributions import AttributionConfig
    from eegwb.experiments.autopsy import CHEAP_SECTIONS, Autopsy, AutopsyConfig
    from eegwb.experiments.report import numbers_frame
    from eegwb.notebook import arg, autorun, stop_or_exit

    return (
        AblationConfig,
        AttributionConfig,
        Autopsy,
        AutopsyConfig,
        CHEAP_SECTIONS,
        InputError,
        Path,
        arg,
        autorun,
        mo,
        numbers_frame,
        stop_or_exit,
    )


@app.cell
def _(Path, arg, mo):
    _found = (
        sorted(str(p) for p in Path("checkpoints").glob("**/*.pt"))
        if Path("checkpoints").is_dir()
        else []
    )
    _given = str(arg("checkpoint", "") or "")
    checkpoint_text = mo.ui.text(
        value=_given or (_found[0] if _found else ""), label="Checkpoint", full_width=True
    )
    data_text = mo.ui.text(
        value=str(arg("data", "") or ""),
        label="Dataset (empty = the checkpoint's)",
        full_width=True,
    )
    split = mo.ui.dropdown(
        ["default", "val", "train", "test", "all"],
        value=str(arg("split", "default")),
        label="Split (default: val / fine-tuning test)",
    )
    max_sequences = mo.ui.number(
        start=4, stop=4096, value=int(arg("max-sequences", 32)), label="Probe sequences"
    )
    ig_steps = mo.ui.number(start=4, stop=512, value=int(arg("ig-steps", 24)), label="IG steps")
    baselines = mo.ui.multiselect(
        ["zero", "mean", "noise"],
        value=str(arg("baselines", "zero,mean,noise")).split(","),
        label="IG baselines",
    )
    mo.vstack(
        [
            mo.md(
                "Checkpoints under `checkpoints/`: "
                f"{', '.join(f'`{f}`' for f in _found[:6]) or 'none'}"
            ),
            checkpoint_text,
            data_text,
            mo.hstack([split, max_sequences, ig_steps, baselines]),
        ]
    )
    return baselines, checkpoint_text, data_text, ig_steps, max_sequences, split


@app.cell
def _(
    AblationConfig,
    AttributionConfig,
    Autopsy,
    AutopsyConfig,
    InputError,
    baselines,
    checkpoint_text,
    data_text,
    ig_steps,
    max_sequences,
    mo,
    split,
    stop_or_exit,
):
    stop_or_exit(
        not checkpoint_text.value,
        mo.callout(mo.md("Enter a checkpoint path."), kind="warn"),
        "no checkpoint: give --checkpoint PATH",
    )
    _cfg = AutopsyConfig(
        split=None if split.value == "default" else split.value,
        max_sequences=int(max_sequences.value),
        attribution=AttributionConfig(
            baselines=tuple(baselines.value) or ("zero",), n_steps=int(ig_steps.value)
        ),
        ablation=AblationConfig(),
    )
    try:
        with mo.status.spinner(title="Loading the checkpoint and the probe set"):
            autopsy = Autopsy(checkpoint_text.value, data_text.value or None, _cfg)
        _error = None
    except InputError as _err:
        autopsy, _error = None, str(_err)
    _shown = mo.callout(mo.md(f"**Cannot open the autopsy.** {_error}"), kind="danger")
    stop_or_exit(autopsy is None, _shown, f"cannot open the autopsy: {_error}")
    _h = autopsy.header()
    mo.vstack(
        [
            mo.ui.table(
                [
                    {"": k, "value": str(v)}
                    for k, v in _h.items()
                    if k not in ("config", "kernel_note")
                ],
                selection=None,
                page_size=20,
            ),
            mo.md(_h["kernel_note"]),
        ]
    )
    return (autopsy,)


@app.cell
def _(CHEAP_SECTIONS, autopsy, mo):
    with mo.status.spinner(title="Predictions, gradients, activations, failures"):
        cheap = {_name: autopsy.run(_name) for _name in CHEAP_SECTIONS}
    return (cheap,)


@app.cell
def _(mo, numbers_frame):
    def show(report, names):
        """Findings, numbers, charts and topomaps of the named sections of a report."""
        charts, topomaps, parts = report.charts(), report.topomaps(), []
        kinds = {"fail": "danger", "warn": "warn", "info": "info"}
        for name in names:
            section = report.sections.get(name)
            if section is None:
                continue
            parts.append(mo.md(f"### {section.title}"))
            parts += [mo.md(note) for note in section.notes]
            parts += [
                mo.callout(
                    mo.md(f"**{f.severity.upper()}** {f.what}<br>→ {f.recommendation}"),
                    kind=kinds[f.severity],
                )
                for f in section.findings
            ]
            numbers = numbers_frame(section.numbers)  # 4 significant digits
            parts.append(mo.ui.table(numbers, selection=None, page_size=12))
            parts += [chart for key, chart in charts.items() if key.startswith(name + ".")]
            if name in topomaps:
                parts.append(mo.image(topomaps[name], width=340))  # as wide as the charts
        return mo.vstack(parts)

    return (show,)


@app.cell
def _(autopsy, cheap, show):
    show(autopsy.report(cheap), list(cheap))
    return


@app.cell
def _(mo):
    expensive_button = mo.ui.run_button(label="Run attributions and ablations")
    expensive_button
    return (expensive_button,)


@app.cell
def _(autopsy, autorun, expensive_button, mo):
    mo.stop(
        not (expensive_button.value or autorun()),
        mo.md(
            "Integrated Gradients and ablations take minutes on a large model: press the button."
        ),
    )
    _steps = len(autopsy.cfg.attribution.baselines) + 1
    with mo.status.progress_bar(total=_steps, title="Attributions and ablations") as _bar:
        _attr = autopsy.run("attributions", progress=lambda _what: _bar.update(subtitle=_what))
        expensive = {
            "attributions": _attr,
            "ablations": autopsy.run("ablations", attributions=_attr),
        }
        _bar.update(subtitle="done")
    return (expensive,)


@app.cell
def _(autopsy, cheap, expensive, show):
    report = autopsy.report({**cheap, **expensive})
    show(report, list(expensive) + ["planted"])
    return (report,)


@app.cell
def _(arg, mo, report):
    print(f"autopsy: {len(report.findings)} finding(s)")
    for _sec, _f in report.findings:
        print(f"{_f.severity.upper():>4} {_sec}: {_f.what}")
    _lines = [f"- **{_f.severity.upper()}** ({_sec}): {_f.what}" for _sec, _f in report.findings]
    # `--overwrite` with no value arrives as '' from mo.cli_args(): present means yes.
    _flag = arg("overwrite")
    out_text = mo.ui.text(value=str(arg("out", "") or ""), label="Report folder", full_width=True)
    overwrite = mo.ui.checkbox(
        value=_flag is not None and str(_flag).lower() not in ("false", "0", "no"),
        label="Replace an existing report",
    )
    track = mo.ui.checkbox(
        value=str(arg("track", "false")).lower() in ("true", "1", "yes", ""),
        label="Log to MLflow (under the checkpoint's run)",
    )
    write_button = mo.ui.run_button(label="Write report (markdown + HTML)")
    mo.vstack(
        [
            mo.md("## Detected issues"),
            mo.md("\n".join(_lines) or "No issues detected."),
            out_text,
            mo.hstack([overwrite, track, write_button]),
        ]
    )
    return out_text, overwrite, track, write_button


@app.cell
def _(arg, autopsy, autorun, mo, out_text, overwrite, report, track, write_button):
    mo.stop(not (write_button.value or (autorun() and (out_text.value or track.value))))
    _done = []
    if out_text.value:
        report.write(out_text.value, overwrite=overwrite.value)
        _done.append(f"report written to {out_text.value}")
    if track.value:
        _done.append(
            "MLflow run: "
            f"{autopsy.log(report, run_id=arg('run-id'), tracking_uri=arg('tracking-uri'))}"
        )
    print("\n".join(_done))
    mo.md("<br>".join(_done) or "Enter a report folder or tick MLflow.")
    return


if __name__ == "__main__":
    app.run()
