import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # 04 · Control experiments: information floors, 100%-mask diagnostics, verdicts

    With 100% of windows masked and both positional encodings off, the original
    pipeline's loss still fell. Was it a leak, or the model learning the dataset mean?
    This notebook answers in minutes. For fixed targets it computes the **information
    floors** of the data — the lowest MSE reachable knowing *nothing*, only *position*,
    only *channel*, or *channel × position* (closed form, no training) — and places the
    model's validation loss on that ladder, beside the original hand analysis's numbers
    (variance ratio, correlation with t/T, std of per-channel means, …) made precise.
    The verdict: no information, position only (implicit when the encodings are off),
    channel only, position + channel, uses context, target collapse, or **leak suspected**
    (a loss below the floor of the information the inputs carry).

    **Floors a model could reach.** A floor computed on the validation tokens themselves
    (in-sample, even Bessel-corrected) treats a participant's 19 strongly correlated
    channels as 19 independent samples: on EEGMAT with 4 validation participants it said
    position alone is "worth 11.5% of the target variance", and the finer channel x
    position floor came out worse (1.0889) than position alone (0.9647). So each floor is
    also computed as a **transfer** floor: group means learnt on the *training*
    participants, scored on the validation ones, with the number of independent training
    participants behind each group mean; verdicts compare the loss with the best transfer
    floor of that information or any coarser one, and a finer grouping that transfers worse
    says why. `eegwb floors DATA` prints this ladder without any model.

    **A related trap, in fine-tuning.** Sequence length can carry a label: EEGMAT's rest
    recordings give 22 windows of 8 s, arithmetic ones 7, and fine-tuned models that had
    learnt nothing scored recording AUROC 0.88-0.91 on length alone (0.43-0.44 once rest
    was cut to 7 windows). Fine-tuning now crops every unit to one length by default, and
    `eegwb validate --label NAME` audits such shortcuts (notebooks 02 and 06).

    Pick a model (a checkpoint, an MLflow run, or train the control configs
    `configs/control_*.yaml` on the control cohort, whose position, channel and context
    information is planted), then press **Run controls**.

    - Interactive: `marimo edit notebooks/04_control_experiments.py`
    - Headless: `python notebooks/04_control_experiments.py --train a,b,c,d`
      (writes the control cohort to `data/control` if it is missing; also `--data DIR
      --epochs N --checkpoint-dir DIR`, and what `eegwb pretrain` takes: `--set KEY=VALUE`,
      `--no-track`, `--overwrite`), or `--checkpoint PATH [--data DIR]
      [--split val]`, or `--tracking-uri URI --experiment NAME [--run-id ID]`; `--json OUT`
      saves the reports (an existing file only with `--overwrite true`)
    - Report (opens offline): `eegwb report notebooks/04_control_experiments.py -o
      reports/04_control_experiments.html -- --train a,b,c,d`
    - Same numbers from the shell: `eegwb control --checkpoint PATH`
    """)
    return


@app.cell
def _():
    from pathlib import Path

    import marimo as mo

    from eegwb.data.layout import DatasetError, list_recordings
    from eegwb.experiments.control import (
        CONTROLS,
        ladder_chart,
        run_control,
        save_reports_json,
        summary_frame,
        train_controls,
        write_control_cohort,
    )
    from eegwb.notebook import arg, autorun, config_overrides, flag, stop_or_exit, table_numbers
    from eegwb.train.checkpoints import CheckpointError
    from eegwb.train.tracking import default_tracking_uri, find_runs

    return (
        CONTROLS,
        CheckpointError,
        DatasetError,
        Path,
        arg,
        autorun,
        config_overrides,
        default_tracking_uri,
        find_runs,
        flag,
        ladder_chart,
        list_recordings,
        mo,
        run_control,
        save_reports_json,
        stop_or_exit,
        summary_frame,
        table_numbers,
        train_controls,
        write_control_cohort,
    )


@app.cell
def _(arg, mo):
    _modes = ["train the control configs", "a checkpoint", "an MLflow run"]
    _default = (
        _modes[0]
        if arg("train")
        else _modes[1]
        if arg("checkpoint")
        else _modes[2]
        if arg("tracking-uri") or arg("run-id")
        else _modes[0]
    )
    mode = mo.ui.radio(_modes, value=_default, label="Model")
    mode
    return (mode,)


@app.cell
def _(CONTROLS, arg, default_tracking_uri, mo, mode):
    _train = str(arg("train", "a,b,c,d"))
    controls = mo.ui.multiselect(
        list(CONTROLS), value=[c for c in _train.split(",") if c in CONTROLS], label="Controls"
    )
    data_dir = mo.ui.text(
        value=str(arg("data", "data/control" if mode.value.startswith("train") else "")),
        label="Dataset (empty: the checkpoint's own)",
        full_width=True,
    )
    epochs = mo.ui.number(
        start=1, stop=500, value=int(arg("epochs", 30)), label="Epochs per control"
    )
    checkpoint = mo.ui.text(value=str(arg("checkpoint", "")), label="Checkpoint", full_width=True)
    split = mo.ui.dropdown(["val", "train", "all"], value=str(arg("split", "val")), label="Split")
    uri = mo.ui.text(
        value=str(arg("tracking-uri", default_tracking_uri())),
        label="Tracking URI",
        full_width=True,
    )
    experiment = mo.ui.text(value=str(arg("experiment", "control")), label="Experiment")
    run_button = mo.ui.run_button(label="Run controls", kind="success")
    _parts = {
        "train the control configs": [mo.hstack([controls, epochs]), data_dir],
        "a checkpoint": [checkpoint, mo.hstack([data_dir, split])],
        "an MLflow run": [mo.hstack([uri, experiment])],
    }[mode.value]
    mo.vstack([*_parts, run_button])
    return checkpoint, controls, data_dir, epochs, experiment, run_button, split, uri


@app.cell
def _(arg, experiment, find_runs, mo, mode, stop_or_exit, uri):
    runs_table = None
    if mode.value == "an MLflow run":
        _runs = find_runs(uri.value or None, experiment.value)
        _runs = _runs.filter(_runs["checkpoint"] != "")
        if arg("run-id"):
            _runs = _runs.filter(_runs["run_id"] == str(arg("run-id")))
        _missing = f"No run with a checkpoint in experiment `{experiment.value}` at `{uri.value}`."
        stop_or_exit(_runs.height == 0, mo.callout(mo.md(_missing), kind="warn"), _missing)
        _cols = [c for c in _runs.columns if not c.startswith("params.")]
        runs_table = mo.ui.table(
            _runs.select(_cols),
            selection="single",
            initial_selection=[0],
            page_size=10,
            label="Pick a run (newest first)",
        )
    runs_table
    return (runs_table,)


@app.cell
def _(Path, arg, checkpoint, mode, runs_table):
    def _checkpoints() -> dict[str, Path]:
        """{name: checkpoint} of the model(s) picked (empty when training the controls)."""
        if mode.value == "a checkpoint":
            return {Path(checkpoint.value).stem: Path(checkpoint.value)} if checkpoint.value else {}
        if mode.value == "an MLflow run" and runs_table is not None and runs_table.value.height:
            _row = runs_table.value.row(0, named=True)
            return {_row["run_name"] or _row["run_id"]: Path(_row["checkpoint"])}
        return {}

    picked = _checkpoints()
    return (picked,)


@app.cell
def _(
    CONTROLS,
    CheckpointError,
    DatasetError,
    Path,
    arg,
    autorun,
    config_overrides,
    controls,
    data_dir,
    epochs,
    experiment,
    flag,
    list_recordings,
    mo,
    mode,
    picked,
    run_button,
    run_control,
    split,
    stop_or_exit,
    train_controls,
    uri,
    write_control_cohort,
):
    mo.stop(not (run_button.value or autorun()), mo.md("Press **Run controls**."))
    _json = arg("json")
    _refused = f"{_json}: already exists (pass --overwrite true to replace it)"
    stop_or_exit(
        bool(_json) and Path(_json).exists() and not flag("overwrite"),
        mo.callout(mo.md(_refused), kind="danger"),
        _refused,
    )
    reports = []
    if mode.value == "train the control configs":
        _unknown = [
            c for c in str(arg("train", "")).split(",") if c.strip() and c.strip() not in CONTROLS
        ]
        _why = f"unknown control(s) {_unknown}: --train takes some of {','.join(CONTROLS)}"
        stop_or_exit(bool(_unknown), mo.callout(mo.md(_why), kind="danger"), _why)
        stop_or_exit(
            not controls.value,
            mo.callout(mo.md("Pick a control first."), kind="warn"),
            f"no control selected: --train takes some of {','.join(CONTROLS)}",
        )
        _root = Path(data_dir.value or "data/control")
        try:
            list_recordings(_root)
        except DatasetError:  # the control cohort is cheap: write it where it was asked for
            write_control_cohort(_root)
        _overrides = [
            f"train.epochs={int(epochs.value)}",
            f"tracking.experiment={experiment.value}",
        ]
        _overrides += [] if flag("no-track") else [f"tracking.uri={uri.value}"]
        _overrides += (
            config_overrides()
        )  # --set, --no-track, --overwrite: as `eegwb pretrain` reads them
        _ckpt_dir = str(arg("checkpoint-dir", "checkpoints/control"))
        for _name in mo.status.progress_bar(list(controls.value), title="Training the controls"):
            _result = train_controls(
                [_name], data_root=_root, checkpoint_dir=_ckpt_dir, overrides=_overrides
            )[_name]
            reports.append(run_control(_result.best_checkpoint, name=_name))
    else:
        stop_or_exit(
            not picked,
            mo.callout(mo.md("Pick a checkpoint or a run first."), kind="warn"),
            "no model: give --checkpoint PATH, --tracking-uri/--experiment, or --train a,b,c,d",
        )
        for _name, _path in picked.items():
            with mo.status.spinner(title=f"Probing {_name}"):
                try:
                    reports.append(
                        run_control(_path, data_dir.value or None, split=split.value, name=_name)
                    )
                except (CheckpointError, DatasetError) as _err:  # a bad path: say which
                    stop_or_exit(
                        True,
                        mo.callout(mo.md(f"**Cannot probe {_name}.** {_err}"), kind="danger"),
                        str(_err),
                    )
    for _r in reports:
        print(f"{_r.name}: {_r.verdict.title} (loss {_r.diagnostics.val_loss:.4f})")
    return (reports,)


@app.cell
def _(arg, flag, reports, save_reports_json):
    if arg("json"):
        save_reports_json(reports, arg("json"), overwrite=flag("overwrite"))
    return


@app.cell
def _(ladder_chart, mo, reports, summary_frame, table_numbers):
    mo.stop(not reports, mo.callout(mo.md("No control selected."), kind="warn"))
    _same_targets = (
        len({_r.inputs.target for _r in reports}) == 1 and reports[0].inputs.target == "signal"
    )
    _charts = (
        [ladder_chart(reports)]
        if _same_targets
        else [ladder_chart(_r, title=f"floor ladder · {_r.name}") for _r in reports]
    )
    mo.vstack(
        [
            mo.md(
                "## Floor ladder\nDots: the floor each kind of information allows a model that "
                "learnt it from the training participants (transfer floor, or the best coarser "
                "one; without a training split the unbiased in-sample floor). The tick: the "
                "exact in-sample floor (the leak test's bound). Dashed lines: each model's "
                "validation loss on the same tokens (a token: one channel's window). The axis is "
                "zoomed to the values: small differences are the answer."
            ),
            *_charts,
            mo.ui.table(table_numbers(summary_frame(reports)), selection=None),
        ]
    )
    return


@app.cell
def _(mo, reports, table_numbers):
    _kinds = {"leak_suspected": "danger", "target_collapse": "danger", "uses_context": "success"}

    def _panel(r):
        _verdict = r.verdict
        return mo.vstack(
            [
                mo.callout(
                    mo.md(f"**Verdict: {_verdict.title}.** {_verdict.headline}"),
                    kind=_kinds.get(_verdict.label, "info"),
                ),
                mo.md("\n".join(f"- {n}" for n in _verdict.notes)),
                mo.md("**Diagnostics** (the original analysis's threshold beside each number)"),
                mo.ui.table(table_numbers(r.diagnostics_frame()), selection=None, page_size=20),
                mo.md("**Floors**"),
                mo.ui.table(table_numbers(r.floor_frame()), selection=None),
            ]
        )

    mo.ui.tabs({f"{_r.name}: {_r.verdict.title}": _panel(_r) for _r in reports})
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ### Reading the original findings

    - **(a) mask 1.0, encodings off.** Every input token is identical, yet a recurrent
      backbone knows position: its state builds up from the sequence start, its
      convolution pads there, and the reversed pass starts at the true end. A falling loss
      is then honest down to the *position* floor; below it, something leaks.
    - **(b) temporal on, spatial off.** Predictions follow t/T and the std of per-channel
      mean predictions is exactly 0: channels get identical inputs. The original's
      "0.0000" is a property of the setup, not a finding about the data.
    - **(c) both on.** Whether channel helps depends on the data: compare its channel ×
      position floor with its position floor, then see how much of that gap the model
      captured (the original suspected its spatial encoding was drowned out).
    - **(d) mask 0.5.** With neighbours visible, a model that uses them beats the
      channel × position floor.
    """)
    return


if __name__ == "__main__":
    app.run()
