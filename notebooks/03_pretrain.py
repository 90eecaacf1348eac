import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # 03 · Pretrain: masked reconstruction on windowed EEG

    Loads a pretraining config (`configs/*.yaml`), lets you change the parts that matter
    (dataset, mask ratio and style, target, backbone, direction, width, depth, the
    encoding switches of the control experiments, epochs, learning rate, seed) and trains
    when you press **Train**: a live loss chart per epoch, a progress bar, then the
    per-epoch table with the original's collapse checks, gates, checkpoints, the MLflow
    run and which kernel path ran. Changing a widget never starts a training by itself.

    - Interactive: `marimo edit notebooks/03_pretrain.py` (or `marimo run` as an app)
    - Headless: `python notebooks/03_pretrain.py --config configs/tiny.yaml`, with any
      config value set as `eegwb pretrain` sets it (`--set masking.mask_ratio=0.8
      --set model.d_model=64 --set data.root=DIR ...`, `--overwrite`, `--no-track`)
    - Report (opens offline): `eegwb report notebooks/03_pretrain.py -o reports/03_pretrain.html --
      --config configs/tiny.yaml`
    - Same run from the shell: `eegwb pretrain --config configs/tiny.yaml`
    """)
    return


@app.cell
def _():
    import contextlib

    import marimo as mo

    from eegwb.config import ConfigError, apply_overrides, from_dict, load_config, to_dict
    from eegwb.errors import InputError
    from eegwb.experiments.autopsy import autopsy_once
    from eegwb.experiments.control import floor_lines
    from eegwb.model.config import BACKBONES, MASK_STYLES, TARGETS
    from eegwb.notebook import (
        arg,
        autorun,
        config_overrides,
        default_config,
        load_config_or_stop,
        stop_or_exit,
        table_numbers,
    )
    from eegwb.train.checkpoints import checkpoint_name
    from eegwb.train.config import PretrainConfig
    from eegwb.train.estimate import estimate_pretrain
    from eegwb.train.pretrain import loss_chart, pretrain

    return (
        InputError,
        default_config,
        estimate_pretrain,
        floor_lines,
        table_numbers,
        config_overrides,
        load_config_or_stop,
        stop_or_exit,
        BACKBONES,
        ConfigError,
        MASK_STYLES,
        PretrainConfig,
        TARGETS,
        apply_overrides,
        arg,
        autopsy_once,
        autorun,
        checkpoint_name,
        contextlib,
        from_dict,
        load_config,
        loss_chart,
        mo,
        pretrain,
        to_dict,
    )


@app.cell
def _(arg, default_config, mo):
    # On a CPU the original's model (pretrain.yaml: d_model 128, 6 layers) trains for hours.
    config_path = mo.ui.text(
        value=str(arg("config", default_config("configs/tiny.yaml", "configs/pretrain.yaml"))),
        label="Config file (default: tiny.yaml on a CPU, pretrain.yaml with a GPU)",
        full_width=True,
    )
    config_path
    return (config_path,)


@app.cell
def _(PretrainConfig, config_overrides, config_path, load_config_or_stop):
    base, _shown = load_config_or_stop(PretrainConfig, config_path.value, config_overrides())
    _shown
    return (base,)


@app.cell
def _(BACKBONES, base, MASK_STYLES, mo, TARGETS):
    # The widgets start from the config (with the run's --set overrides applied).
    data_root = mo.ui.text(value=str(base.data.root), label="Dataset", full_width=True)
    mask_ratio = mo.ui.slider(
        0.0,
        1.0,
        step=0.05,
        value=float(base.masking.mask_ratio),
        label="Mask ratio",
        show_value=True,
    )
    style = mo.ui.dropdown(list(MASK_STYLES), value=base.masking.style, label="Masking")
    target = mo.ui.dropdown(list(TARGETS), value=base.model.target, label="Target")
    backbone = mo.ui.dropdown(list(BACKBONES), value=base.model.backbone, label="Backbone")
    bidirectional = mo.ui.checkbox(value=base.model.bidirectional, label="Bidirectional")
    d_model = mo.ui.number(start=8, stop=1024, step=8, value=base.model.d_model, label="d_model")
    layers = mo.ui.number(start=1, stop=48, value=base.model.n_layers, label="Layers")
    no_temporal = mo.ui.checkbox(
        value=base.model.disable_temporal_encoding, label="Disable temporal encoding"
    )
    no_spatial = mo.ui.checkbox(
        value=base.model.disable_spatial_encoding, label="Disable spatial encoding"
    )
    epochs = mo.ui.number(start=1, stop=1000, value=base.train.epochs, label="Epochs")
    lr = mo.ui.number(start=1e-6, stop=1.0, step=1e-6, value=base.train.lr, label="Learning rate")
    seed = mo.ui.number(start=0, stop=2**31 - 1, value=base.train.seed, label="Seed")
    overwrite = mo.ui.checkbox(
        value=base.train.overwrite, label="Replace existing checkpoints of this name"
    )
    run_button = mo.ui.run_button(label="Train", kind="success")
    mo.vstack(
        [
            data_root,
            mo.hstack([mask_ratio, style, target]),
            mo.hstack([backbone, bidirectional, d_model, layers]),
            mo.hstack([no_temporal, no_spatial]),
            mo.hstack([epochs, lr, seed]),
            mo.hstack([overwrite, run_button]),
        ]
    )
    return (
        backbone,
        bidirectional,
        d_model,
        data_root,
        epochs,
        layers,
        lr,
        mask_ratio,
        no_spatial,
        no_temporal,
        overwrite,
        run_button,
        seed,
        style,
        target,
    )


@app.cell
def _(
    apply_overrides,
    backbone,
    base,
    bidirectional,
    checkpoint_name,
    ConfigError,
    d_model,
    data_root,
    epochs,
    from_dict,
    layers,
    lr,
    mask_ratio,
    mo,
    no_spatial,
    no_temporal,
    overwrite,
    PretrainConfig,
    seed,
    stop_or_exit,
    style,
    target,
    to_dict,
):
    _changes = {
        "data.root": data_root.value,
        "masking.mask_ratio": round(float(mask_ratio.value), 4),
        "masking.style": style.value,
        "model.target": target.value,
        "model.backbone": backbone.value,
        "model.bidirectional": bidirectional.value,
        "model.d_model": int(d_model.value),
        "model.n_layers": int(layers.value),
        "model.disable_temporal_encoding": no_temporal.value,
        "model.disable_spatial_encoding": no_spatial.value,
        "train.epochs": int(epochs.value),
        "train.lr": float(lr.value),
        "train.seed": int(seed.value),
        "train.overwrite": overwrite.value,
    }
    _error = ""
    try:
        cfg = from_dict(PretrainConfig, apply_overrides(PretrainConfig, to_dict(base), _changes))
        cfg.check_paths()
    except ConfigError as _err:
        cfg, _error = None, f"invalid setting: {_err}"
        _shown = mo.callout(mo.md(f"**Invalid setting.** {_err}"), kind="danger")
    else:
        _shown = mo.md(
            f"Checkpoints: `{cfg.train.checkpoint_dir}/{checkpoint_name(cfg)}` (best) and "
            f"`{checkpoint_name(cfg, 'last')}`; MLflow experiment `{cfg.tracking.experiment}`"
            + ("" if cfg.tracking.enabled else " (tracking off)")
        )
    stop_or_exit(cfg is None, _shown, _error)
    _shown
    return (cfg,)


@app.cell
def _(InputError, cfg, estimate_pretrain, floor_lines, mo):
    # Said before Train is pressed: two steps of this model on this data, measured here.
    try:
        with mo.status.spinner(title="Timing two training steps"):
            plan = estimate_pretrain(cfg)
            floors = floor_lines(cfg)
        _shown = mo.md(f"A run will take **{plan.text()}**.")
    except InputError as _err:  # data it cannot open, a batch larger than the data
        plan, floors = None, None
        _shown = mo.callout(mo.md(f"**No time estimate.** {_err}"), kind="warn")
    print(f"estimate: {plan.text()}" if plan else "estimate: none")
    _shown
    return (floors,)


@app.cell
def _(autopsy_once, autorun, cfg, contextlib, floors, loss_chart, mo, pretrain, run_button):
    mo.stop(not (run_button.value or autorun()), mo.md("Press **Train** to start pretraining."))
    _history: list[dict] = []

    with contextlib.ExitStack() as _stack:
        _bar = []

        def _on_progress(event: dict) -> None:
            if not _bar:  # the step count is known once the data are split
                _bar.append(
                    _stack.enter_context(
                        mo.status.progress_bar(
                            total=event["total_steps"], title="Pretraining", remove_on_exit=True
                        )
                    )
                )
            if event["kind"] == "step":
                _bar[0].update(subtitle=f"epoch {event['epoch']}, loss {event['train_loss']:.4f}")
            elif event["kind"] == "epoch":
                _history.append(event)
                _title = f"epoch {event['epoch']}/{cfg.train.epochs}"
                mo.output.replace(loss_chart(_history, title=_title, floors=floors))

        try:
            result = pretrain(cfg, _on_progress, bar=False, autopsy=autopsy_once)
        except Exception as _err:
            if autorun():
                raise  # headless: fail loudly (non-zero exit)
            mo.stop(
                True,
                mo.callout(
                    mo.md(f"**Training stopped.** {type(_err).__name__}: {_err}"), kind="danger"
                ),
            )
    print("pretraining:", ", ".join(f"{k}={v}" for k, v in result.summary().items()))
    loss_chart(
        result.history,
        title=f"loss per epoch · {cfg.model.backbone} d{cfg.model.d_model}",
        floors=floors,
    )
    return (result,)


@app.cell
def _(mo, result, table_numbers):
    _summary = result.summary()
    _leaky = " · **leaky splits**" if result.leaky else ""
    _epochs = result.history_frame()
    _epochs = _epochs.filter(_epochs["kind"] == "epoch").drop("kind", "warnings", strict=False)
    _warnings = [w for h in result.history for w in h.get("warnings", [])]
    _gates = [
        f"- epoch {g['epoch']}: {g['metric']} = {g['value']:.4g} "
        f"{'passed' if g['passed'] else 'FAILED'} ({g['action']})"
        for g in result.gates
    ]
    _mlflow = (
        f"run `{result.run_id}` at `{result.tracking_uri}`"
        if result.run_id
        else "not logged"
        + (
            f" ({len(result.tracking_failures)} failed calls)"
            if result.tracking_failures
            else " (tracking off)"
        )
    )
    _parts = [
        mo.md(f"""
### Result: {_summary["stopped"]} after {_summary["epochs"]} epochs ({_summary["steps"]} steps)

- best validation loss **{result.best_val_loss:.4f}**; kernel path **{result.kernel_path}**
- checkpoints: `{result.best_checkpoint}` (best), `{result.last_checkpoint}` (last)
- MLflow: {_mlflow}
- dataset fingerprint `{result.fingerprint.get("dataset", "")}`{_leaky}
"""),
        mo.md("**Gates**\n\n" + "\n".join(_gates)) if _gates else None,
        mo.callout(mo.md("\n".join(f"- {w}" for w in _warnings)), kind="warn")
        if _warnings
        else None,
        mo.ui.table(table_numbers(_epochs), selection=None, page_size=max(1, _epochs.height)),
    ]
    mo.vstack([_p for _p in _parts if _p is not None])  # a None would show as "None"
    return


if __name__ == "__main__":
    app.run()
