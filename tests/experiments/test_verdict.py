"""Verdicts from constructed floors and model numbers whose right answer is known."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest

from eegwb.evaluation.floors import Floors, compute_floors
from eegwb.experiments.model_probe import ModelDiagnostics
from eegwb.experiments.verdict import InputInfo, VerdictConfig, decide


def _floors(
    pos_sd: float, chan_sd: float, noise_sd: float = 0.5, offset: float = 0.0, seed: int = 0
) -> Floors:
    """Tokens y = a(position) + b(channel) + noise, 200 sequences per channel."""
    rng = np.random.default_rng(seed)
    n_ch, length, n_seq, dim = 4, 8, 200, 3
    seq = np.arange(n_ch * n_seq)
    channel = np.repeat(seq % n_ch, length)
    index = np.tile(np.arange(length), len(seq))
    a = rng.normal(size=(length, dim)) * pos_sd
    b = rng.normal(size=(n_ch, dim)) * chan_sd
    y = offset + a[index] + b[channel] + rng.normal(size=(len(index), dim)) * noise_sd
    return compute_floors(y, index, np.full_like(index, length), channel)


def _diag(loss: float, position_eta2: float = 0.0, channel_eta2: float = 0.0) -> ModelDiagnostics:
    nan = math.nan
    return ModelDiagnostics(
        val_loss=loss,
        n_tokens=1000,
        pred_mean=0.0,
        target_mean=0.0,
        pred_var=0.5,
        target_var=1.0,
        var_ratio=0.5,
        corr_t=0.0,
        position_eta2=position_eta2,
        channel_eta2=channel_eta2,
        channel_position_eta2=max(position_eta2, channel_eta2),
        channel_std=0.0,
        top3_var=1.0,
        consistency_same=nan,
        consistency_between=nan,
        consistency_ratio=nan,
    )


MASK1_TEMPORAL = InputInfo(
    1.0, temporal_encoding=True, spatial_encoding=False, implicit_position=True
)
MASK1_BOTH_OFF = InputInfo(
    1.0, temporal_encoding=False, spatial_encoding=False, implicit_position=True
)
MASK1_BOTH_ON = InputInfo(
    1.0, temporal_encoding=True, spatial_encoding=True, implicit_position=True
)


def test_mean_predictor_is_no_information() -> None:
    f = _floors(1.0, 1.0)
    v = decide(f, _diag(f.mse("nothing", unbiased=True)), MASK1_BOTH_ON)
    assert v.label == "no_information"
    assert "dataset-mean floor" in v.headline
    assert v.numbers["reached"] == 1.0


def test_position_floor_with_temporal_encoding_is_position_only() -> None:
    f = _floors(1.0, 1.0)
    v = decide(f, _diag(f.mse("position", unbiased=True), position_eta2=0.8), MASK1_TEMPORAL)
    assert (v.label, v.implicit) == ("position_only", False)
    assert v.title == "position only"


def test_position_without_encodings_is_implicit() -> None:
    f = _floors(1.0, 1.0)
    v = decide(f, _diag(f.mse("position", unbiased=True) * 1.02, position_eta2=0.6), MASK1_BOTH_OFF)
    assert (v.label, v.implicit) == ("position_only", True)
    assert v.title == "position only (implicit)"
    assert any("temporal encoding is off" in n for n in v.notes)


def test_loss_below_the_floor_of_what_the_inputs_carry_is_a_leak() -> None:
    f = _floors(1.0, 1.0)
    # encodings off, mask 1.0: position (implicit) is all there is
    leak = decide(f, _diag(f.mse("position") * 0.9), MASK1_BOTH_OFF)
    assert leak.label == "leak_suspected"
    assert leak.numbers["leak_bound"] == pytest.approx(f.mse("position") * 0.98)
    # the same loss is legitimate once the spatial encoding is on (channel x position)
    ok = decide(f, _diag(f.mse("position") * 0.9), MASK1_BOTH_ON)
    assert ok.label != "leak_suspected"
    # a transformer without encodings knows nothing at mask 1.0: below the mean is a leak
    transformer = InputInfo(1.0, False, False, implicit_position=False)
    assert decide(f, _diag(f.mse("nothing") * 0.9), transformer).label == "leak_suspected"
    # with context visible a low loss is not a leak
    context = InputInfo(0.5, False, False, implicit_position=True)
    assert decide(f, _diag(f.mse("nothing") * 0.1), context).label == "uses_context"


def test_inputs_without_position_or_channel_only_allow_no_information_or_leak() -> None:
    # The reviewer's case: 20 tokens, so the unbiased floor sits ~5% above the exact one.
    rng = np.random.default_rng(0)
    index = np.arange(20) % 5
    f = compute_floors(rng.standard_normal((20, 4)), index, np.full(20, 5), np.arange(20) % 2)
    nothing_known = InputInfo(1.0, False, False, implicit_position=False)
    exact = f.mse("nothing")
    assert exact * 0.98 < exact * 0.985 < f.mse("nothing", unbiased=True) * 0.95
    v = decide(f, _diag(exact * 0.985), nothing_known)
    assert v.label == "no_information" and "neither position nor channel" in v.headline
    for loss in np.linspace(0.0, 1.2, 49) * f.mse("nothing", unbiased=True):
        v = decide(f, _diag(float(loss), 0.5, 0.5), nothing_known)
        assert v.label == ("leak_suspected" if loss < exact * 0.98 else "no_information"), loss


def test_both_keys_reach_channel_position() -> None:
    f = _floors(1.0, 1.0)
    v = decide(f, _diag(f.mse("channel_position", unbiased=True), 0.5, 0.5), MASK1_BOTH_ON)
    assert v.label == "position_and_channel"
    assert v.numbers["reached"] == 1.0
    captured = [n for n in v.notes if "captured" in n]
    assert captured and "100.0%" in captured[0]
    # a model that stops at the position floor with both encodings on: channel gain missed
    v2 = decide(f, _diag(f.mse("position", unbiased=True), 0.8, 0.0), MASK1_BOTH_ON)
    assert v2.label == "position_only"
    assert any("captured 0.0%" in n for n in v2.notes)


def test_channel_only() -> None:
    f = _floors(1.0, 1.0)
    spatial_only = InputInfo(1.0, False, True, implicit_position=False)
    v = decide(f, _diag(f.mse("channel", unbiased=True), 0.0, 0.7), spatial_only)
    assert v.label == "channel_only"


def test_equal_floors_are_split_by_what_predictions_vary_with() -> None:
    f = _floors(1.0, 1.0, seed=5)
    loss = max(f.mse("position", unbiased=True), f.mse("channel", unbiased=True))
    assert decide(f, _diag(loss, 0.7, 0.01), MASK1_BOTH_ON).label == "position_only"
    assert decide(f, _diag(loss, 0.01, 0.7), MASK1_BOTH_ON).label == "channel_only"


def test_uses_context_needs_the_stated_margin() -> None:
    f = _floors(1.0, 1.0)
    cxp = f.mse("channel_position", unbiased=True)
    half = InputInfo(0.5, True, True, implicit_position=True)
    assert decide(f, _diag(cxp * 0.5), half).label == "uses_context"
    assert decide(f, _diag(cxp * 0.95), half).label != "uses_context"
    stricter = VerdictConfig(context_margin=0.6)
    assert decide(f, _diag(cxp * 0.5), half, stricter).label != "uses_context"


def test_collapsed_targets_come_first() -> None:
    f = _floors(1e-3, 1e-3, noise_sd=1e-3, offset=1.0)
    v = decide(f, _diag(1e-9), MASK1_BOTH_OFF)
    assert v.label == "target_collapse"
    assert v.numbers["target_var_ratio"] < 0.01
    # embedding targets shrunk toward zero: tiny variance although the ratio looks healthy
    tiny = _floors(1e-3, 1e-3, noise_sd=1e-3)
    embedding = InputInfo(1.0, False, False, implicit_position=True, target="embedding")
    assert decide(tiny, _diag(1e-7), embedding).label == "target_collapse"
    # the same numbers as signal targets are data in small units, not a collapse
    assert (
        decide(tiny, _diag(tiny.mse("position", unbiased=True)), MASK1_BOTH_OFF).label
        != "target_collapse"
    )


def test_config_validation_and_serialisation() -> None:
    with pytest.raises(ValueError, match="VerdictConfig.gain_margin"):
        VerdictConfig(gain_margin=1.5)
    f = _floors(1.0, 0.0)
    v = decide(f, _diag(f.mse("position", unbiased=True)), MASK1_TEMPORAL)
    data = json.loads(json.dumps(v.to_dict()))
    assert data["label"] == "position_only" and data["title"] == "position only"
    assert v.text().startswith("Verdict: position only")
    # data notes: channel is worth little (or nothing) here, position a lot; never a
    # negative share of the variance
    assert any(re.search(r"channel only is worth (little|nothing)", n) for n in v.notes)
    assert any(re.search(r"position only is worth \d+\.\d%", n) for n in v.notes), v.notes
    assert not re.search(r"-\d[\d.]*%", " ".join(v.notes)), v.notes
    nan_loss = decide(f, replace(_diag(0.0), val_loss=math.nan), MASK1_TEMPORAL)
    assert nan_loss.label == "no_information" and "not finite" in nan_loss.headline


def test_input_info_from_configs() -> None:
    from eegwb.model.config import MaskingConfig, ModelConfig

    info = InputInfo.from_config(
        ModelConfig(disable_temporal_encoding=True), MaskingConfig(mask_ratio=1.0)
    )
    assert info.available == "channel_position" and info.implicit_position
    info = InputInfo.from_config(
        ModelConfig(disable_spatial_encoding=True), MaskingConfig(mask_ratio=0.5)
    )
    assert info.available is None and info.knows_position
    bert = InputInfo.from_config(ModelConfig(), MaskingConfig(mask_ratio=1.0, style="bert"))
    assert bert.mask_style == "bert" and bert.context_visible and bert.available is None


def test_bert_masking_at_100_percent_still_shows_windows_so_a_low_loss_is_no_leak() -> None:
    """BERT style leaves 10% of the masked windows unchanged: the model sees them, so a loss
    below the no-context floors is context, not a leak (as it would be under MAE style)."""
    f = _floors(1.0, 1.0)
    loss = _diag(f.mse("channel_position") * 0.5)  # below every floor without context
    mae = InputInfo(1.0, False, False, implicit_position=False, mask_style="mae")
    bert = replace(mae, mask_style="bert")
    assert decide(f, loss, mae).label == "leak_suspected"
    assert decide(f, loss, bert).label == "uses_context"


def test_data_notes_say_worth_nothing_instead_of_a_negative_share() -> None:
    from eegwb.experiments.verdict import _data_notes

    u = {"nothing": 1.0, "position": 0.9, "channel": 1.004, "channel_position": 0.998}
    notes = _data_notes(u, _floors(1.0, 0.0), VerdictConfig())  # notes[0]: floors compared
    assert "position only is worth 10.0% of the target variance" in notes[1]
    assert "channel only is worth nothing" in notes[2] and "-0.4%" not in notes[2]
    assert "channel x position is worth little: 0.2%" in notes[3]
