"""eegwb/validation/quality_charts.py: charts that show what they are for (bars of a
visible width, every channel, colours over the data's range)."""

from __future__ import annotations

import numpy as np
import polars as pl

from eegwb.data.montage import MONTAGES, electrode_positions
from eegwb.validation.quality_charts import channel_chart, label_chart, topomap_figure

CHANNELS = list(MONTAGES["standard_1020"])


def test_label_bars_have_a_width_per_bar() -> None:
    labels = pl.DataFrame(
        {
            "label": ["remission"] * 6,
            "split": ["train"] * 4 + ["val", "test"],
            "value": ["0", "1", "0", "1", "1", "0"],
        }
    )
    spec = label_chart(labels).to_dict()
    # a facet's fixed width split over value x split drew hairlines; a step per bar does not
    assert spec["spec"]["width"] == {"step": 18}
    assert spec["spec"]["encoding"]["xOffset"]["sort"] == ["train", "val", "test"]
    assert label_chart(labels.clear()) is None


def test_channel_chart_marks_every_channel() -> None:
    rng = np.random.default_rng(0)
    rows = [
        {
            "file": f"f{i}",
            "channel": ch,
            "mean_uv": (3.0 if ch in ("FP1", "FP2") else 0.0) + rng.normal(0, 0.01),
        }
        for i in range(4)
        for ch in CHANNELS
    ]
    spec = channel_chart(pl.DataFrame(rows), "mean_uv").to_dict()
    ticks, medians = spec["layer"]
    assert ticks["mark"]["type"] == "tick" and medians["mark"]["type"] == "point"
    data = {name: values for name, values in spec["datasets"].items()}
    shown = [sorted({row["channel"] for row in values}) for values in data.values()]
    assert all(s == sorted(CHANNELS) for s in shown)  # 19 channels, a tick per file and a median
    assert ticks["encoding"]["y"]["scale"] == {"zero": False}


def test_topomap_colours_span_the_values_and_few_channels_are_dots() -> None:
    positions = electrode_positions(CHANNELS)
    values = {ch: 12.0 + 0.1 * i for i, ch in enumerate(CHANNELS)}  # one-signed, 12..13.8
    fig = topomap_figure(values, positions, "robust std", "µV")
    image = fig.axes[0].images[0]
    assert image.get_clim() == (12.0, 12.0 + 0.1 * 18)  # not from 0: the head is not one colour
    signed = topomap_figure({ch: v - 12.9 for ch, v in values.items()}, positions)
    low, high = signed.axes[0].images[0].get_clim()
    assert low == -high and signed.axes[0].images[0].get_cmap().name == "RdBu_r"
    four = topomap_figure({"F3": 0.2, "CZ": 0.5, "PZ": 0.1, "O1": 0.3}, positions)
    assert not four.axes[0].images  # no surface interpolated through 4 points
    dots = four.axes[0].collections[0]
    assert len(dots.get_offsets()) == 4 and dots.get_clim() == (0.1, 0.5)
