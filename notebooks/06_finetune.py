import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # 06 · Fine-tune: a clinical label from a pretrained backbone, evaluated without leaks

    Pick a pretrained backbone (a checkpoint file, an MLflow pretraining run, or the name
    the original derived from the model), a label (each file's metadata, or a CSV/Parquet
    per participant or per recording) and the strategies: **frozen** backbone + head (the
    original), **full** fine-tune, and **scratch** (same model, random init: did
    pretraining help?). Press **Fine-tune**: participants are split (never a person on
    both sides), the leakage gate runs, every strategy and the band-power + logistic
    regression **baseline** are trained on the same people, and all are scored on the same
    held-out participants: AUROC and balanced accuracy with participant-bootstrap 95% CIs,
    at the sequence, recording and participant level, and ROC curves. Every row says what
    one prediction is: one channel-sequence for the deep models, one all-channel window for
    the baseline; a recording or a participant averages its predictions.

    **The length trap.** On EEGMAT (rest, 180 s, vs mental arithmetic, 60 s) rest recordings
    give 22 windows of 8 s and arithmetic ones 7. Fine-tuned with `max_windows: 32`, models
    that had learnt nothing scored recording AUROC 0.88 (full) and 0.91 (scratch), tight
    CIs: sequence length gave the label. Cutting the rest test recordings to their first 7
    windows dropped all three strategies to 0.43-0.44; with `max_windows: 7` the 1-window
    tail chunks that only rest recordings have gave frozen AUROC 0.986 [0.917, 1.000], 0.49
    without them. So by default every unit is cropped to one length at the same offsets
    (`data.length_match: crop`; the length used is printed under the table), and the
    **shortcut gate** audits those very units before training: a nuisance the pipeline can
    remove (length, position) that predicts the label stops the run; design confounds (on
    EEGMAT: rest was always recorded first) are listed under the table.

    - Interactive: `marimo edit notebooks/06_finetune.py` (or `marimo run` as an app)
    - Headless: `python notebooks/06_finetune.py --config configs/finetune_tiny.yaml
      --set pretrained.checkpoint=PATH`, with any config value set as `eegwb finetune` sets
      it (`--set data.root=DIR --set "train.strategies=[frozen, full]" --set data.kfold=5
      ...`, `--overwrite`, `--no-track`)
    - Report (opens offline): `eegwb report notebooks/06_finetune.py -o reports/06_finetune.html --
      --config configs/finetune_tiny.yaml --set pretrained.checkpoint=PATH`
    - Same run from the shell: `eegwb finetune --config configs/finetune.yaml`
    """)
    return


@app.cell
def _():
    import marimo as mo

    from eegwb.config import ConfigError, apply_overrides, from_dict, load_config, to_dict
    from eegwb.data.cohorts import MUSE, missing_dataset, synth_command
    from eegwb.data.synthetic import generate_cohort
    from eegwb.evaluation.metrics import roc_chart
    from eegwb.experiments.autopsy import autopsy_once
    from eegwb.notebook import (
        arg,
        autorun,
        config_overrides,
        default_config,
        load_config_or_stop,
        stop_or_exit,
        table_numbers,
    )
    from eegwb.train.finetune import finetune
    from eegwb.train.finetune_config import STRATEGIES, FinetuneConfig
    from eegwb.train.finetune_data import checkpoint_source, pretrained_choices
    from eegwb.train.finetune_summary import conclusions, roc_frame

    return (
        MUSE,
        conclusions,
        default_config,
        generate_cohort,
        missing_dataset,
        roc_chart,
        roc_frame,
        synth_command,
        table_numbers,
        config_overrides,
        load_config_or_stop,
        stop_or_exit,
        ConfigError,
        FinetuneConfig,
        STRATEGIES,
        apply_overrides,
        arg,
        autopsy_once,
        autorun,
        checkpoint_source,
        finetune,
        from_dict,
        load_config,
        mo,
        pretrained_choices,
        to_dict,
    )


@app.cell
def _(arg, default_config, mo):
    _default = default_config("configs/finetune_tiny.yaml", "configs/finetune.yaml")
    config_path = mo.ui.text(
        value=str(arg("config", _default)),
        label="Config file (default: finetune_tiny.yaml on a CPU, finetune.yaml with a GPU)",
        full_width=True,
    )
    config_path
    return (config_path,)


@app.cell
def _(FinetuneConfig, config_overrides, config_path, load_config_or_stop):
    base, _shown = load_config_or_stop(FinetuneConfig, config_path.value, config_overrides())
    _shown
    return (base,)


@app.cell
def _(base, checkpoint_source, mo, pretrained_choices, STRATEGIES):
    # The widgets start from the config (with the run's --set overrides applied).
    _by_config = (
        f"from config: {checkpoint_source(base)[0]}"
        if not base.pretrained.mlflow_run
        else (f"from config: MLflow run {base.pretrained.mlflow_run}")
    )
    _choices = {
        _by_config: "",
        **pretrained_choices(base.pretrained.checkpoint_dir, base.tracking.uri),
    }
    backbone = mo.ui.dropdown(
        _choices, value=next(iter(_choices)), label="Pretrained backbone", full_width=True
    )
    data_root = mo.ui.text(value=str(base.data.root), label="Dataset", full_width=True)
    channels = mo.ui.text(value=",".join(base.data.channels or []), label="Channels (empty: all)")
    label = mo.ui.text(value=base.labels.name, label="Label")
    label_file = mo.ui.text(
        value=str(base.labels.path or ""), label="Label file (empty: file metadata)"
    )
    positive = mo.ui.text(
        value="" if base.labels.positive is None else str(base.labels.positive),
        label="Positive value",
    )
    strategies = mo.ui.multiselect(
        list(STRATEGIES), value=list(base.train.strategies), label="Strategies"
    )
    with_baseline = mo.ui.checkbox(value=base.baseline.enabled, label="Band-power baseline")
    kfold = mo.ui.number(start=0, stop=50, value=base.data.kfold, label="k-fold (0: one split)")
    epochs = mo.ui.number(start=1, stop=1000, value=base.train.epochs, label="Epochs")
    overwrite = mo.ui.checkbox(
        value=base.train.overwrite, label="Replace existing fine-tuned checkpoints"
    )
    level = mo.ui.dropdown(
        ["prediction", "recording", "participant"],
        value=base.eval.level,
        label="Level for the ROC chart",
    )
    run_button = mo.ui.run_button(label="Fine-tune", kind="success")
    mo.vstack(
        [
            backbone,
            data_root,
            mo.hstack([channels, label, label_file, positive]),
            mo.hstack([strategies, with_baseline, kfold, epochs]),
            mo.hstack([overwrite, run_button]),
        ]
    )
    return (
        backbone,
        channels,
        data_root,
        epochs,
        kfold,
        label,
        label_file,
        level,
        overwrite,
        positive,
        run_button,
        strategies,
        with_baseline,
    )


@app.cell
def _(mo):
    synth_button = mo.ui.run_button(label="Write the synthetic Muse cohort there")
    return (synth_button,)


@app.cell
def _(MUSE, data_root, generate_cohort, missing_dataset, mo, synth_button, synth_command):
    # The configs read a synthetic Muse cohort by default: offer to write it where it is missed.
    if synth_button.value and missing_dataset(data_root.value):
        with mo.status.spinner(title=f"Writing a synthetic Muse cohort to {data_root.value}"):
            generate_cohort(data_root.value, MUSE, progress=False)
    no_data = missing_dataset(data_root.value)
    _offer = mo.callout(
        mo.vstack(
            [
                mo.md(
                    f"**No dataset yet**: {no_data}. Ingest your labelled recordings (notebook "
                    "01), or write the synthetic 4-channel Muse cohort the configs expect (24 "
                    f"people, a planted remission effect): `{synth_command(data_root.value)}`, "
                    "or press"
                ),
                synth_button,
            ]
        ),
        kind="warn",
    )
    _offer if no_data else None
    return (no_data,)


@app.cell
def _(
    apply_overrides,
    backbone,
    base,
    channels,
    checkpoint_source,
    ConfigError,
    data_root,
    epochs,
    FinetuneConfig,
    from_dict,
    kfold,
    label,
    label_file,
    mo,
    no_data,
    overwrite,
    positive,
    stop_or_exit,
    strategies,
    synth_command,
    to_dict,
    with_baseline,
):
    stop_or_exit(bool(no_data), mo.md(""), f"{no_data} (make it: {synth_command(data_root.value)})")
    _chans = [c.strip().upper() for c in channels.value.split(",") if c.strip()]
    _changes = {
        "data.root": data_root.value,
        "data.channels": _chans or None,
        "labels.name": label.value,
        "labels.path": label_file.value or None,
        "labels.positive": positive.value or None,
        "train.strategies": list(strategies.value),
        "baseline.enabled": with_baseline.value,
        "data.kfold": int(kfold.value),
        "train.epochs": int(epochs.value),
        "train.overwrite": overwrite.value,
    }
    if backbone.value:
        _changes |= {"pretrained.checkpoint": backbone.value, "pretrained.mlflow_run": None}
    _error = ""
    try:
        cfg = from_dict(FinetuneConfig, apply_overrides(FinetuneConfig, to_dict(base), _changes))
        cfg.check_paths()
    except ConfigError as _err:
        cfg, _error = None, f"invalid setting: {_err}"
        _shown = mo.callout(mo.md(f"**Invalid setting.** {_err}"), kind="danger")
    else:
        _shown = mo.md(
            f"Fine-tunes **{', '.join(cfg.train.strategies)}**"
            + (" and the baseline" if cfg.baseline.enabled else "")
            + f" on `{cfg.data.root}`, label `{cfg.labels.name}`; "
            + (
                f"participant-grouped {cfg.data.kfold}-fold"
                if cfg.data.kfold
                else f"participants split {list(cfg.data.split_fractions)} (train/val/test)"
            )
            + f"; checkpoints in `{cfg.train.checkpoint_dir}`."
        )
    stop_or_exit(cfg is None, _shown, _error)
    _weights, _found_by = checkpoint_source(cfg)
    _needs = [s for s in cfg.train.strategies if s != "scratch"]
    _missing = (
        f"no pretrained backbone at {_weights} (found by {_found_by}), which "
        f"{', '.join(_needs)} start from: pretrain it (notebook 03, or `eegwb pretrain "
        "--config configs/tiny.yaml` for finetune_tiny.yaml), pick one above, or fine-tune "
        "`scratch` only"
    )
    _warn = mo.callout(mo.md(f"**No backbone yet**: {_missing}."), kind="warn")
    stop_or_exit(bool(_needs) and not _weights.is_file(), mo.vstack([_shown, _warn]), _missing)
    _shown
    return (cfg,)


@app.cell
def _(autopsy_once, autorun, cfg, finetune, mo, run_button):
    mo.stop(
        not (run_button.value or autorun()), mo.md("Press **Fine-tune** to train and evaluate.")
    )
    _total = len(cfg.train.strategies) * cfg.train.epochs * max(1, cfg.data.kfold)
    with mo.status.progress_bar(total=_total, title="Fine-tuning", remove_on_exit=True) as _bar:

        def _on_epoch(event: dict) -> None:
            _bar.update(
                subtitle=f"{event['fold']} {event['strategy']} epoch {event['epoch']}: "
                f"train {event['train_loss']:.3f}, val {event['val_loss']:.3f}"
            )

        try:
            result = finetune(cfg, _on_epoch, autopsy=autopsy_once)
        except Exception as _err:
            if autorun():
                raise  # headless: fail loudly (non-zero exit)
            mo.stop(
                True,
                mo.callout(
                    mo.md(f"**Fine-tuning stopped.** {type(_err).__name__}: {_err}"), kind="danger"
                ),
            )
    print(result.format("all"))
    return (result,)


@app.cell
def _(conclusions, mo, result, table_numbers):
    _head = result.headline()
    _rows = "\n".join(
        f"| {r['strategy']} | {r['auroc']:.3f} [{r['auroc_low']:.3f}, {r['auroc_high']:.3f}] | "
        f"{r['balanced_accuracy']:.3f} [{r['balanced_accuracy_low']:.3f}, "
        f"{r['balanced_accuracy_high']:.3f}] | "
        f"{r['n_participants']} | {r['threshold']:.3f} | {r['unit']} |"
        for r in _head.iter_rows(named=True)
    )
    _not_scored = "".join(
        f"\n- {_lvl} level not scored: {_why}" for _lvl, _why in result.dropped.items()
    )
    _flagged = (
        result.shortcuts.filter(result.shortcuts["status"] != "pass")
        if result.shortcuts is not None
        else None
    )
    _gate = (
        "shortcut gate: off"
        if _flagged is None
        else f"shortcut audit of these units: {_flagged.height} of {result.shortcuts.height} "
        "nuisance variables flagged"
        + "".join(
            f"\n    - **{r['status']}** `{r['check']}`: {r['summary']}"
            for r in _flagged.iter_rows(named=True)
        )
    )
    _saved = ", ".join(f"`{p}`" for ps in result.checkpoints.values() for p in ps) or "none"
    mo.vstack(
        [
            mo.md(f"""
### Results on held-out participants ({result.level} level)

| strategy | AUROC [95% CI] | bal. acc. [95% CI] | test people | threshold (val) | one unit |
|---|---|---|---|---|---|
{_rows}
{_not_scored}
- units: {result.length_match}
- {_gate}
- pretrained backbone: `{result.pretrained}`; fine-tuned checkpoints: {_saved}
- MLflow: {f"run `{result.run_id}`" if result.run_id else "not logged"}
- {
                "**LEAKY** (allowed): "
                + (", ".join(result.pretraining_overlap) or "see the leakage summary")
                if result.leaky
                else "leakage gate: passed"
            }
"""),
            mo.md(
                "**Did pretraining help?**\n\n" + "\n".join(f"- {c}" for c in conclusions(result))
            ),
            mo.ui.table(
                table_numbers(result.table.fill_nan(None)),
                selection=None,
                page_size=max(1, result.table.height),
            ),
        ]
    )
    return


@app.cell
def _(level, mo, result, roc_chart, roc_frame):
    _title = f"ROC on held-out participants ({level.value} level)"
    mo.vstack([level, roc_chart(roc_frame(result, level.value), title=_title)])
    return


@app.cell(hide_code=True)
def _(cfg, mo):
    from eegwb.data.layout import recordings_index as _recordings_index

    _sources = " ".join(_recordings_index(cfg.data.root)["source_file"].to_list()).lower()
    mo.md(
        "Data: PhysioNet *EEG During Mental Arithmetic Tasks* (Zyma et al. 2019, Data 4(1):14; "
        "Goldberger et al., PhysioNet, Circulation 2000), ODC-By 1.0."
    ) if "eegmat" in _sources or "subject00_" in _sources else None
    return


if __name__ == "__main__":
    app.run()
