"""Length-matched units and the shortcut gate, on real EEG: EEGMAT's rest recordings
(20-23 windows of 8 s) are 3x longer than its arithmetic ones (7), so length and position
give the label unless every unit is cut alike; the gate refuses to evaluate on them."""

from __future__ import annotations

import polars as pl
import pytest

from eegwb.config import load_config
from eegwb.data.layout import recordings_index
from eegwb.train.finetune import finetune
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.finetune_units import match_lengths, shortcut_gate
from eegwb.train.labels import recording_labels
from eegwb.validation.shortcuts import ShortcutError


def _cfg(root, out, *overrides) -> FinetuneConfig:
    return load_config(FinetuneConfig, None, [
        f"data.root={root}", f"pretrained.checkpoint_dir={out}", f"train.checkpoint_dir={out}",
        "train.strategies=[scratch]", "labels.name=task", "tracking.enabled=false",
        "data.channels=null", *overrides,
    ])  # fmt: skip


def _units(root, cfg):
    index = recordings_index(root)
    labels = recording_labels(root, cfg.labels, index)
    everything = index.select(
        "file",
        "participant",
        "run",
        pl.lit(0, pl.Int64).alias("row_start"),
        pl.col("n_windows").cast(pl.Int64).alias("row_end"),
    )
    lm = match_lengths(
        cfg.data.length_match, everything, cfg.data.max_windows, cfg.data.crop_windows, str(root)
    )
    return index, labels, everything, lm


def test_default_crop_takes_the_shortest_recordings_length_and_passes_the_gate(
    eegmat_small, tmp_path
):
    cfg = _cfg(eegmat_small, tmp_path)  # max_windows 32, length_match crop, gate refuse
    index, labels, everything, lm = _units(eegmat_small, cfg)
    assert (lm.windows, lm.offsets) == (7, (0,))  # arithmetic recordings hold 7 windows
    units = lm.units(everything)
    assert units.height == everything.height and set(units["row_end"] - units["row_start"]) == {7}
    text = lm.describe(everything, 8.0)
    assert (
        "every unit is 7 windows (56 s), at offsets [0]" in text
        and "shortest labelled recording has 7" in text
    )
    report = shortcut_gate(cfg, units, labels, index, lm)  # does not raise
    checks = {c.name: c for c in report.checks}
    assert (
        checks["shortcut/n_windows"].status == "pass"
        and checks["shortcut/position_s"].status == "pass"
    )
    assert checks["shortcut/n_windows"].numbers["unit"] == "crop of 7 windows"
    # rest always came first: reported (a design confound), not refused
    assert checks["shortcut/recording_order"].status == "fail"
    # shorter crops: as many as the shortest recording holds, at the same offsets everywhere
    _, _, _, lm3 = _units(eegmat_small, _cfg(eegmat_small, tmp_path, "data.crop_windows=3"))
    assert lm3.offsets == (0, 3) and lm3.units(everything).height == 2 * everything.height


@pytest.mark.parametrize("overrides, flagged", [
    (["data.length_match=none"], "shortcut/n_windows"),  # one 22-window vs one 7-window unit
    (["data.length_match=none", "data.max_windows=7"], "shortcut/position_s"),  # tail chunks
    (["data.length_match=crop_all"], "shortcut/position_s"),  # later crops: rest only
])  # fmt: skip
def test_gate_refuses_units_whose_length_or_position_gives_the_label(
    eegmat_small, tmp_path, overrides, flagged
):
    cfg = _cfg(eegmat_small, tmp_path / "out", *overrides)
    with pytest.raises(ShortcutError, match=flagged) as refused:
        finetune(cfg)
    assert "data.shortcut_gate=warn" in str(refused.value)
    assert not (tmp_path / "out").exists()  # refused before anything was trained or written
