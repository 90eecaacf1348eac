"""The autopsy end to end on checkpoint files: the report renders every section (markdown and
HTML), is logged under the checkpoint's MLflow run, `eegwb autopsy` exits by what it found,
and `autopsy_once` runs once."""

from __future__ import annotations

import html
import json
import os
import time

import pytest
import torch
from autopsy_helpers import finetuned_checkpoint, pretrained_checkpoint, tiny_cohort

from eegwb.atomic import OutputExistsError
from eegwb.cli import main
from eegwb.experiments.attributions import AttributionConfig
from eegwb.experiments.autopsy import (
    SECTIONS,
    AutopsyConfig,
    autopsy_once,
    marker_name,
    run_autopsy,
)

TINY = AutopsyConfig(max_sequences=6, attribution=AttributionConfig(baselines=("zero",), n_steps=8))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_cohort(tmp_path_factory.mktemp("autopsy") / "data")
    torch.set_num_threads(before)


def test_report_renders_every_section_and_is_logged_under_the_checkpoints_run(cohort, tmp_path):
    from mlflow import MlflowClient

    from eegwb.train.tracking import TAG_CHECKPOINT, Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ckpt = pretrained_checkpoint(cohort, tmp_path / "ckpt", tracking_uri=uri)
    with Tracker(
        uri, "autopsy-test", run_name="pretraining", tags={TAG_CHECKPOINT: str(ckpt)}
    ) as tracker:
        parent = tracker.run_id  # what pretraining leaves behind: a run tagged with its checkpoint
    out = tmp_path / "report"
    report = run_autopsy(ckpt, sections=",".join(SECTIONS), out_dir=out, config=TINY)

    assert list(report.sections) == list(SECTIONS)
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for text, heading in ((md, "## {}"), (page, "<h2>{}</h2>")):
        assert heading.format("Detected issues and recommendations") in text
        for section in report.sections.values():
            assert (
                heading.format(html.escape(section.title) if text is page else section.title)
                in text
            )
        assert "reference PyTorch path" in text and str(ckpt) in text and str(cohort) in text
    assert (
        page.count("<svg") >= 10 and "data:image/png;base64," in page
    )  # Altair charts + MNE topomaps
    for chart in (out / "charts").glob("*.svg"):
        assert f"charts/{chart.name}" in md
    numbers = json.loads((out / "report.json").read_text())["sections"]["predictions"]["numbers"]
    assert numbers["var_ratio"] == pytest.approx(
        report.sections["predictions"].numbers["var_ratio"]
    )
    with pytest.raises(OutputExistsError):
        report.write(out)  # no silent overwrite

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(report.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.metrics["predictions.var_ratio"] == pytest.approx(numbers["var_ratio"])
    logged = {a.path for a in client.list_artifacts(report.run_id, "autopsy")}
    assert {"autopsy/report.md", "autopsy/report.html", "autopsy/report.json"} <= logged


def test_cli_exit_code_follows_the_findings(cohort, tmp_path, capsys):
    ckpt = finetuned_checkpoint(cohort, tmp_path)
    out = tmp_path / "out"
    code = main(
        [
            "autopsy",
            "--checkpoint",
            str(ckpt),
            "--sections",
            "predictions,failures",
            "--out",
            str(out),
            "--max-sequences",
            "8",
            "--no-track",
        ]
    )
    stdout = capsys.readouterr().out
    findings = json.loads((out / "report.json").read_text())["findings"]
    assert code == (1 if any(f["severity"] == "fail" for f in findings) else 0)
    assert str(out / "report.html") in stdout
    md = (out / "report.md").read_text()
    assert (
        "## Predictions vs labels" in md
        and "## Failure modes" in md
        and "## Gradient flow" not in md
    )
    assert "calibration" in md and "per participant" in md and "worst" in md

    assert main(["autopsy", "--checkpoint", str(tmp_path / "missing.pt"), "--no-track"]) == 2
    assert "missing.pt: checkpoint does not exist" in capsys.readouterr().err
    assert main(["autopsy", "--checkpoint", str(ckpt), "--sections", "nonsense", "--no-track"]) == 2


def test_autopsy_once_runs_once_and_never_raises(cohort, tmp_path):
    ckpt = pretrained_checkpoint(cohort, tmp_path / "ckpt")
    out = tmp_path / "once"
    once = {"out_dir": out, "sections": ["predictions"], "config": TINY, "track": False}
    first = autopsy_once(ckpt, **once)
    assert (
        first is not None
        and (out / "report.html").is_file()
        and (out / marker_name(ckpt)).is_file()
    )
    assert autopsy_once(ckpt, **once) is None  # stopped early, then finished: one autopsy
    os.utime(ckpt, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new training run rewrote it
    assert autopsy_once(ckpt, **once) is not None
    assert [p.name for p in out.glob("autopsy.*.started.json")] == [marker_name(ckpt)]
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert autopsy_once(broken, out_dir=tmp_path / "broken", track=False) is None
    assert "cannot read checkpoint" in (tmp_path / "broken" / "autopsy.failed.txt").read_text()


@pytest.mark.parametrize("style", ["mae", "bert"])
def test_at_100_percent_mask_only_bert_leaves_windows_to_attribute(cohort, tmp_path, style):
    """MAE hides every window; BERT style leaves ~10% of them as they were, which the model
    sees, so attributions must run on those rather than report "every window is masked"."""
    from eegwb.experiments.autopsy import Autopsy

    ckpt = pretrained_checkpoint(
        cohort, tmp_path / style, masking={"mask_ratio": 1.0, "style": style}
    )
    autopsy = Autopsy(ckpt, None, AutopsyConfig(max_sequences=12, seed=3))
    probe = autopsy.probe
    assert bool(probe.mask[~probe.pad_mask].all())  # every real window is scored
    if style == "mae":
        assert not autopsy.sees_input() and probe.kept is None
        return
    kept = probe.kept & ~probe.pad_mask
    assert autopsy.sees_input() and 0 < int(kept.sum()) < int((~probe.pad_mask).sum()) // 4
    assert torch.equal(probe.visible, kept)  # exactly the unchanged windows are visible
    section = autopsy.run("attributions")
    assert not any("Every window is masked" in f.what for f in section.findings)
