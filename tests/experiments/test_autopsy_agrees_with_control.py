"""One answer per question: the autopsy's floors are control's (same code, same training
participants, same keys), so on the same tokens they are the same numbers; and the
autopsy's advice reads the checkpoint's config instead of recommending what it already does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from autopsy_helpers import pretrained_checkpoint, tiny_cohort

from eegwb.evaluation.floors import KINDS, FloorAccumulator, compute_floors
from eegwb.experiments.autopsy import Autopsy, AutopsyConfig
from eegwb.experiments.control import run_control
from eegwb.experiments.reconstruction import reconstruction_findings


def test_autopsy_and_control_give_the_same_floors(tmp_path):
    torch.set_num_threads(1)
    root = tiny_cohort(tmp_path / "data")  # 6 people, split 3 train / 3 val
    ckpt = pretrained_checkpoint(root, tmp_path / "ckpt", masking={"mask_ratio": 1.0})
    # mask 1.0: the autopsy's probe (all 12 val sequences) and control score the same tokens
    autopsy = Autopsy(ckpt, config=AutopsyConfig(max_sequences=64))
    numbers = autopsy.run("predictions").numbers
    control = run_control(ckpt)
    assert numbers["floors"] == "transfer" == control.floors.basis
    assert numbers["floor_train_participants"] == control.floors.n_train_participants == 3
    for kind in KINDS:
        assert numbers[f"mse_floor_{kind}"] == pytest.approx(
            control.floors.reference(kind), rel=1e-9
        )
        assert numbers[f"mse_floor_{kind}_in_sample"] == pytest.approx(
            control.floors.mse(kind), rel=1e-9
        )
    assert numbers["mse"] == pytest.approx(control.diagnostics.val_loss, rel=1e-5)
    table = autopsy.sections["predictions"].tables["baselines"]
    assert table["predictor"].to_list()[1:] == [
        f"{label} floor (transfer)"
        for label in (
            "nothing (dataset mean)",
            "position only",
            "channel only",
            "channel x position",
        )
    ]


def _floors(train: bool):
    """Floors whose channel groups really differ (learnt on 4 others when `train`)."""
    rng = np.random.default_rng(0)
    index = [0, 1] * 8
    channel = [c for c in range(2) for _ in range(8)]
    values = rng.normal(size=(16, 3)) + [[3.0 * c] * 3 for c in channel]
    fitted = None
    if train:
        fitted = FloorAccumulator()
        fitted.update(torch.tensor(values + 0.1), torch.tensor(index), torch.full((16,), 2),
                      torch.tensor(channel), torch.arange(16) % 4)  # fmt: skip
    return compute_floors(values, index, [2] * 16, channel, [9] * 16, train=fitted)


@pytest.mark.parametrize("target, says, never", [
    ("signal", "try 'ema' targets", "try 'signal'"),
    ("ema", "try 'signal' or 'embedding_stopgrad'", "'ema' or"),
    ("embedding", "an 'embedding' target can collapse", "try 'embedding'"),
])  # fmt: skip
def test_collapse_advice_never_recommends_the_target_in_use(target, says, never):
    floors = _floors(train=True)
    numbers = {"var_ratio": 0.001, "improvement_over_mean": 0.0, "mse": 9.0, "residual_mean": 0.0,
               "target_std": 1.0}  # fmt: skip
    config = {"model": {"target": target}, "masking": {"mask_ratio": 0.5}}
    (collapse, *_) = reconstruction_findings(numbers, floors, config)
    assert collapse.severity == "fail" and says in collapse.recommendation
    assert never not in collapse.recommendation
    assert "mask_ratio" not in collapse.recommendation  # 0.5 shows context already
    config["masking"]["mask_ratio"] = 1.0
    high = reconstruction_findings(numbers, floors, config)[0]
    assert "lower masking.mask_ratio (now 1)" in high.recommendation


def test_channel_advice_reads_the_spatial_encoding_and_says_which_floors():
    floors = _floors(train=True)  # channel means learnt on 4 people carry over: floor << model
    numbers = {"var_ratio": 1.0, "improvement_over_mean": 0.5, "mse": 5.0, "residual_mean": 0.0,
               "target_std": 1.0}  # fmt: skip
    on = reconstruction_findings(numbers, floors, {"model": {"disable_spatial_encoding": False}})
    (channel,) = [f for f in on if "each channel's mean" in f.what]
    assert "learnt on 4 training participants" in channel.what
    assert "spatial encoding is on" in channel.recommendation
    off = reconstruction_findings(numbers, floors, {"model": {"disable_spatial_encoding": True}})
    (channel,) = [f for f in off if "each channel's mean" in f.what]
    assert "turn it on (model.disable_spatial_encoding=false)" in channel.recommendation
