"""`eegwb floors DATA`: the floor ladder of real EEG without a checkpoint, transfer floors
learnt on other participants, and bad input (a learnt target, a missing dataset) exit 2."""

from __future__ import annotations

import json

from eegwb.cli import main


def test_floor_ladder_of_real_eeg(eegmat_small, tmp_path, capsys):
    out = tmp_path / "floors.json"
    args = ["floors", str(eegmat_small), "--set", "data.max_windows=7",
            "--set", "data.split_fractions=[0.5, 0.5, 0.0]", "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "group means learnt on the train split (4 participants)" in text
    assert "people/group" in text and "a token: one channel's window" in text
    floors = json.loads(out.read_text())
    assert floors["n_participants"] == 4 and floors["n_train_participants"] == 4
    for kind in ("nothing", "position", "channel", "channel_position"):
        f = floors[kind]
        assert f["mse"] <= f["mse_unbiased"]  # in-sample is the optimistic end
        assert f["mse_transfer"] > 0 and f["participants_per_group"] >= 1
    # any finer grouping that transfers worse than a coarser one comes with its reason
    worse = [k for k in ("position", "channel", "channel_position")
             if floors[k]["mse_transfer"] > floors["nothing"]["mse_transfer"]]  # fmt: skip
    for kind in worse:
        label = {"position": "position only", "channel": "channel only"}.get(
            kind, "channel x position"
        )
        assert f"{label} transfers worse than" in text
    assert main(args) == 2 and "already exists" in capsys.readouterr().err


def test_learnt_target_and_missing_data_exit_2(eegmat_small, tmp_path, capsys):
    assert main(["floors", str(eegmat_small), "--target", "ema"]) == 2
    assert "learnt by the model" in capsys.readouterr().err
    assert main(["floors", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
