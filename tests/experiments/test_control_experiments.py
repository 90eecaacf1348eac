"""Control experiments (a)-(d) trained with the pretraining API on a cohort with planted
position, channel and context information, their verdicts, and a planted leak."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch

from eegwb.config import load_config
from eegwb.evaluation.floor_data import dataset_floors
from eegwb.experiments.control import (
    ControlCohortConfig,
    control_config_path,
    ladder_chart,
    run_control,
    summary_frame,
    train_controls,
    write_control_cohort,
)
from eegwb.experiments.model_probe import load_objective, open_split
from eegwb.model.masking import make_mask
from eegwb.model.objective import MaskedReconstruction, ObjectiveOutput, masked_mse
from eegwb.model.targets import make_target
from eegwb.train.config import PretrainConfig

# 8 participants x 2 runs x 4 channels train (4 steps per epoch), as many for validation.
COHORT = ControlCohortConfig(n_participants=16, runs_per_participant=2, seed=1)
COMMON = ["tracking.enabled=false", "train.lr=0.006", "train.batch_size=16"]
EPOCHS = {"a": 8, "b": 8, "c": 8, "d": 12}  # 32 / 48 steps: enough for each verdict


@pytest.fixture(scope="module")
def controls(tmp_path_factory):
    """{letter: (RunResult, ControlReport)} for the four control configs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is faster than two fighting
    logging.getLogger("eegwb").setLevel(logging.WARNING)
    try:
        root = tmp_path_factory.mktemp("control")
        write_control_cohort(root / "data", COHORT)
        out = {}
        for letter, epochs in EPOCHS.items():
            result = train_controls(
                [letter],
                data_root=root / "data",
                checkpoint_dir=root / "ckpt",
                overrides=[*COMMON, f"train.epochs={epochs}"],
            )[letter]
            out[letter] = (result, run_control(result.best_checkpoint, name=letter))
        yield root, out
    finally:
        torch.set_num_threads(threads)


def test_a_encodings_off_is_no_information_or_implicit_position(controls) -> None:
    _, reports = controls
    report = reports["a"][1]
    assert not report.inputs.temporal_encoding and not report.inputs.spatial_encoding
    assert report.verdict.label in ("no_information", "position_only"), report.verdict.text()
    if report.verdict.label == "position_only":
        assert report.verdict.implicit
        assert any("temporal encoding is off" in n for n in report.verdict.notes)
    # at or above the position floor: nothing else reaches the model
    assert report.diagnostics.val_loss >= report.floors.mse("position") * 0.98
    # identical inputs on every channel: predictions cannot differ by channel
    assert report.diagnostics.channel_eta2 < 1e-6


def test_b_temporal_only_is_position_only_with_no_channel_diversity(controls) -> None:
    _, reports = controls
    report = reports["b"][1]
    assert (report.verdict.label, report.verdict.implicit) == ("position_only", False), (
        report.verdict.text()
    )
    d = report.diagnostics
    assert d.channel_std < 0.01 and d.channel_eta2 < 1e-6  # the original's "0.0000"
    assert d.position_eta2 > 0.9
    rows = {r["diagnostic"]: r for r in report.diagnostics.rows()}
    assert rows["channel_std"]["reading"].startswith("no channel diversity")
    assert rows["channel_std"]["threshold"] == "< 0.01"


def test_c_both_encodings_reach_channel_x_position(controls) -> None:
    _, reports = controls
    report = reports["c"][1]
    f = report.floors
    # the planted channel waveforms make channel x position clearly better than position
    assert f.mse("channel_position", unbiased=True) < 0.8 * f.mse("position", unbiased=True)
    assert report.verdict.label == "position_and_channel", report.verdict.text()
    assert report.diagnostics.val_loss < f.mse("position", unbiased=True) * 0.9
    assert any("captured" in n for n in report.verdict.notes)
    assert report.diagnostics.channel_eta2 > 0.1


def test_d_half_masked_uses_context(controls) -> None:
    _, reports = controls
    report = reports["d"][1]
    assert report.verdict.label == "uses_context", report.verdict.text()
    d = report.diagnostics
    assert d.val_loss < 0.9 * report.floors.mse("channel_position", unbiased=True)
    # sample-specific predictions: a second mask moves a token's prediction less than
    # the spread between samples of its group
    assert 0.0 < d.consistency_ratio < 1.0


def test_floors_at_mask_one_are_the_data_floors(controls) -> None:
    """At mask 1.0 the probe scores every token, so its floors are the data's, transfer
    floors included: `eegwb floors` (no model) and `eegwb control` give one answer."""
    _, reports = controls
    report = reports["b"][1]
    _, cfg = load_objective(report.checkpoint)
    direct = dataset_floors(open_split(cfg, "val"), open_split(cfg, "train"))
    for kind in ("nothing", "position", "channel", "channel_position"):
        assert report.floors.mse(kind) == pytest.approx(direct.mse(kind), rel=1e-6)
        assert report.floors[kind].mse_transfer == pytest.approx(
            direct[kind].mse_transfer, rel=1e-6
        )
    assert report.floors.n_tokens == direct.n_tokens
    assert (report.floors.n_train_participants, report.floors.n_participants) == (8, 8)
    # the planted templates are the same for everyone: learnt on others, they still fit
    f = report.floors
    assert f.channel_position.mse_transfer < 0.8 * f.position.mse_transfer
    assert f.channel_position.participants_per_group == 8
    assert "floors learnt on 8 training participants" in report.verdict.notes[0]
    assert "transfer" in report.text() and "people/group" in report.text()


class LeakyReconstruction(MaskedReconstruction):
    """TEST ONLY: a planted leak. The mask is drawn and scored, but the model is fed the
    unmasked windows, as a pipeline bug that forgets to apply the mask would."""

    def forward(self, batch, generator=None) -> ObjectiveOutput:
        mask = make_mask(batch.pad_mask, self.masking.mask_ratio, generator=generator)
        pred = self.model(batch.x, batch.coords, batch.pad_mask)
        target = make_target(self.target_kind, batch.x, self.model.token_encoder, self.teacher)
        return ObjectiveOutput(masked_mse(pred, target, mask), pred, target, mask)


def test_planted_leak_is_suspected(controls, tmp_path: Path) -> None:
    from torch.utils.data import DataLoader

    from eegwb.data.dataset import collate
    from eegwb.model.eeg_model import EEGModel
    from eegwb.train.pretrain import make_optimizer, train_step

    root, _ = controls
    cfg = load_config(
        PretrainConfig, control_config_path("a"), [f"data.root={root / 'data'}", *COMMON]
    )
    assert cfg.masking.mask_ratio == 1.0 and cfg.model.disable_temporal_encoding
    torch.manual_seed(0)
    objective = LeakyReconstruction(EEGModel(cfg.model), cfg.masking)
    optimizer = make_optimizer(objective, cfg.train)
    train = open_split(cfg, "train")
    generator = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(6):
            for batch in DataLoader(train, batch_size=16, shuffle=True, collate_fn=collate):
                train_step(objective, optimizer, batch, lr=6e-3, grad_clip=1.0, generator=generator)
        report = run_control(objective, open_split(cfg, "val"), name="leak")
    finally:
        torch.set_num_threads(threads)
    assert report.verdict.label == "leak_suspected", report.verdict.text()
    assert report.diagnostics.val_loss < report.floors.mse("position")
    assert "position only" in report.verdict.headline  # the information the inputs carry


def test_cli_prints_table_and_verdict(controls, tmp_path: Path, capsys) -> None:
    from eegwb.cli import main

    _, reports = controls
    result = controls[1]["b"][0]
    out_json = tmp_path / "report.json"
    code = main(["control", "--checkpoint", str(result.best_checkpoint), "--json", str(out_json)])
    text = capsys.readouterr().out
    assert code == 0
    assert "Verdict: position only" in text and "channel x position" in text
    assert "0.0000 (channels ignored)" in text
    data = json.loads(out_json.read_text())
    assert data["verdict"]["label"] == "position_only"
    assert data["floors"]["position"]["mse"] == pytest.approx(
        reports["b"][1].floors.mse("position")
    )
    # another dataset directory, every sequence of it: all 32 recordings x 4 channels x 16 windows
    root = controls[0]
    args = [
        "control",
        "--checkpoint",
        str(result.best_checkpoint),
        "--data",
        str(root / "data"),
        "--split",
        "all",
        "--json",
        str(out_json),
    ]
    before = out_json.read_text()
    assert main(args) == 2  # the report exists: refused before any probing, file untouched
    captured = capsys.readouterr()
    assert "already exists" in captured.err and "tokens scored" not in captured.out
    assert out_json.read_text() == before
    code = main([*args, "--overwrite"])
    assert code == 0 and "tokens scored: 2048 masked x 32" in capsys.readouterr().out
    assert json.loads(out_json.read_text())["floors"]["n_tokens"] == 2048


def test_cli_bad_input_exits_2_not_the_verdicts_1(tmp_path: Path, capsys) -> None:
    """Exit 1 means "leak suspected / target collapse"; a missing file is not a verdict."""
    from eegwb.cli import main

    assert main(["control", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eegwb control: error:") and "missing.pt" in err


def test_summary_and_ladder_chart(controls) -> None:
    _, reports = controls
    ordered = [reports[k][1] for k in "abcd"]
    frame = summary_frame(ordered)
    assert frame["control"].to_list() == list("abcd")
    assert frame.filter(frame["control"] == "d")["verdict"].item() == "uses context"
    spec = ladder_chart(ordered).to_dict()
    layers = spec["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["point", "tick", "rule"]
    # zoomed to the values: an axis from 0 makes floors of 0.97 and 1.03 look equal
    low, high = layers[0]["encoding"]["y"]["scale"]["domain"]
    floors = [f["reference"] for f in ordered[0].floors.rows()]
    shown = [r.diagnostics.val_loss for r in ordered] + [f for f in floors if math.isfinite(f)]
    assert low <= min(shown) and max(shown) <= high and high - low < max(shown)
    values = [v for d in spec["datasets"].values() for v in d]
    assert sum("model" in v for v in values) == 4 and sum("information" in v for v in values) == 4


def _embedding_objective(cfg, target: str):
    from dataclasses import replace as dc_replace

    from eegwb.model.eeg_model import EEGModel

    torch.manual_seed(0)
    model = EEGModel(dc_replace(cfg.model, target=target))
    return MaskedReconstruction(model, cfg.masking)


def test_embedding_floors_use_the_checkpoint_encoder(controls) -> None:
    from eegwb.evaluation.floors import ChannelCoder, compute_floors

    root, _ = controls
    cfg = load_config(PretrainConfig, control_config_path("b"), [f"data.root={root / 'data'}"])
    objective = _embedding_objective(cfg, "embedding_stopgrad")
    val = open_split(cfg, "val")
    report = run_control(objective, val, name="embedding")
    # the same floors straight from the token encoder on every real window (mask 1.0)
    coder, rows = ChannelCoder(), []
    with torch.no_grad():
        for i in range(len(val)):
            item = val[i]
            emb = objective.model.token_encoder(torch.as_tensor(item["x"])[None])[0]  # (l, d)
            n = emb.shape[0]
            rows.append(
                (emb, torch.arange(n), torch.full((n,), n), coder(item["coords"][None]).repeat(n))
            )
    direct = compute_floors(*(torch.cat(parts) for parts in zip(*rows, strict=True)))
    assert report.floors.dim == cfg.model.d_model
    for kind in ("nothing", "position", "channel", "channel_position"):
        assert report.floors.mse(kind) == pytest.approx(direct.mse(kind), rel=1e-5)


def test_collapsed_embedding_targets_are_reported(controls) -> None:
    root, _ = controls
    cfg = load_config(PretrainConfig, control_config_path("b"), [f"data.root={root / 'data'}"])
    objective = _embedding_objective(cfg, "embedding")
    with torch.no_grad():  # the collapse a self-made target can reach: every window alike
        objective.model.token_encoder.norm.weight.mul_(1e-4)
    report = run_control(objective, open_split(cfg, "val"), name="collapsed")
    assert report.verdict.label == "target_collapse", report.verdict.text()
    assert report.floors.target_var < 1e-4
