"""eegwb.train.pretrain.loss_chart: zoomed to the losses, the data's floors drawn on it."""

from __future__ import annotations

from eegwb.train.pretrain_steps import loss_chart

HISTORY = [
    {"kind": "epoch", "epoch": e, "train_loss": 1.1 - 0.03 * e, "val_loss": 1.05 - 0.02 * e}
    for e in range(1, 5)
]


def test_floors_are_labelled_lines_on_a_zoomed_axis() -> None:
    spec = loss_chart(
        HISTORY, floors={"dataset mean": 1.02, "position": 0.97, "channel x position": float("nan")}
    ).to_dict()
    rules, labels, lines = spec["layer"]
    assert (rules["mark"]["type"], labels["mark"]["type"]) == ("rule", "text")
    texts = [row["floor"] for d in spec["datasets"].values() for row in d if "floor" in row]
    assert texts == ["dataset mean floor 1.0200", "position floor 0.9700"]  # NaN: not drawn
    low, high = lines["encoding"]["y"]["scale"]["domain"]
    assert 0.9 < low < 0.97 and 1.07 < high < 1.2  # 0.97 vs 1.02 is the question: no axis from 0


def test_without_floors_it_is_the_plain_line_chart() -> None:
    spec = loss_chart(HISTORY).to_dict()
    assert spec["mark"]["type"] == "line" and "layer" not in spec
