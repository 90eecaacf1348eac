"""Information floors on constructed tokens whose answers are known in closed form."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from eegwb.evaluation.floors import (
    KINDS,
    ChannelCoder,
    FloorAccumulator,
    Floors,
    compute_floors,
    group_codes,
)


def _grid(n_seq_per_channel: int, n_channels: int, length: int):
    """Token keys of n_channels x n_seq_per_channel sequences of `length` windows."""
    seq = np.arange(n_channels * n_seq_per_channel)
    channel = np.repeat(seq % n_channels, length)
    index = np.tile(np.arange(length), len(seq))
    lengths = np.full_like(index, length)
    return index, lengths, channel, np.repeat(seq, length)


def test_plus_minus_groups_give_exact_floors() -> None:
    # Every (channel, position) group holds exactly m_g + e and m_g - e: the channel x
    # position floor is e^2 (in-sample) and 2 e^2 (Bessel, groups of two).
    e, n_ch, length, dim = 0.3, 3, 5, 4
    index, lengths, channel, seq = _grid(2, n_ch, length)
    rng = np.random.default_rng(0)
    means = rng.normal(size=(n_ch, length, dim))
    sign = np.where(seq // n_ch == 0, 1.0, -1.0)[:, None]
    values = means[channel, index] + sign * e
    floors = compute_floors(values, index, lengths, channel)
    assert floors.channel_position.mse == pytest.approx(e**2, rel=1e-12)
    assert floors.channel_position.mse_unbiased == pytest.approx(2 * e**2, rel=1e-12)
    assert floors.channel_position.n_groups == n_ch * length
    assert floors.channel_position.min_group == 2
    assert floors.n_tokens == len(values) and floors.dim == dim


def test_floor_is_the_mse_of_the_group_mean_predictor() -> None:
    rng = np.random.default_rng(1)
    index, lengths, channel, _ = _grid(4, 3, 6)
    # two different true lengths: position groups are (index, length), not index alone
    lengths = np.where(np.arange(len(index)) % 12 < 6, lengths, lengths + 1)
    values = rng.normal(size=(len(index), 5)) + index[:, None] * 0.2 + channel[:, None] * 0.1
    floors = compute_floors(values, index, lengths, channel)
    keys = {
        "nothing": np.zeros(len(index)),
        "position": lengths * 100 + index,
        "channel": channel,
        "channel_position": channel * 10_000 + lengths * 100 + index,
    }
    for kind, key in keys.items():
        pred = np.zeros_like(values)
        for g in np.unique(key):
            pred[key == g] = values[key == g].mean(0)
        mse = float(np.mean((values - pred) ** 2))
        assert floors.mse(kind) == pytest.approx(mse, rel=1e-10), kind
        # any other function of the key does worse on these tokens
        assert float(np.mean((values - pred - 0.01) ** 2)) > floors.mse(kind)
    assert floors.nothing.mse == pytest.approx(values.var(axis=0).mean(), rel=1e-10)
    assert floors.target_mean == pytest.approx(values.mean(), rel=1e-10)


def test_streaming_batches_equal_one_shot() -> None:
    rng = np.random.default_rng(2)
    index, lengths, channel, _ = _grid(5, 4, 7)
    values = rng.normal(size=(len(index), 3)) * 2 + 5
    whole = compute_floors(values, index, lengths, channel)
    acc = FloorAccumulator()
    cuts = [0, 1, 17, 60, 61, len(index)]
    order = rng.permutation(len(index))
    for a, b in itertools.pairwise(cuts):
        sel = order[a:b]
        acc.update(
            torch.tensor(values[sel]),
            torch.tensor(index[sel]),
            torch.tensor(lengths[sel]),
            torch.tensor(channel[sel]),
        )
    parts = acc.result()
    for kind in KINDS:
        assert parts.mse(kind) == pytest.approx(whole.mse(kind), rel=1e-10)
        assert parts.mse(kind, unbiased=True) == pytest.approx(
            whole.mse(kind, unbiased=True), rel=1e-10
        )
        assert parts[kind].n_groups == whole[kind].n_groups


def test_large_sample_floors_match_the_planted_variances() -> None:
    # y = a(position) + b(channel) + noise, independent parts with known variances.
    rng = np.random.default_rng(3)
    n_seq, n_ch, length, dim = 400, 4, 8, 2
    index, lengths, channel, _ = _grid(n_seq, n_ch, length)
    a = rng.normal(size=(length, dim)) * 1.0
    b = rng.normal(size=(n_ch, dim)) * 0.7
    noise_var = 0.25
    values = a[index] + b[channel] + rng.normal(size=(len(index), dim)) * math.sqrt(noise_var)
    f = compute_floors(values, index, lengths, channel)
    var_a, var_b = a.var(axis=0).mean(), b.var(axis=0).mean()  # variance across the groups
    assert f.channel_position.mse_unbiased == pytest.approx(noise_var, rel=0.03)
    assert f.position.mse_unbiased == pytest.approx(noise_var + var_b, rel=0.03)
    assert f.channel.mse_unbiased == pytest.approx(noise_var + var_a, rel=0.03)
    assert f.nothing.mse_unbiased == pytest.approx(noise_var + var_a + var_b, rel=0.03)
    for kind in KINDS:  # in-sample is never above the unbiased estimate
        assert f.mse(kind) <= f.mse(kind, unbiased=True)
    assert f.nothing.mse >= f.position.mse >= f.channel_position.mse
    assert f.nothing.mse >= f.channel.mse >= f.channel_position.mse


def test_collapsed_targets_keep_their_tiny_variance() -> None:
    # a constant of 1e6 plus variance 1e-6: sum-of-squares formulas would return garbage
    rng = np.random.default_rng(4)
    index, lengths, channel, _ = _grid(50, 2, 4)
    values = 1e6 + rng.normal(size=(len(index), 3)) * 1e-3
    acc = FloorAccumulator()
    for part in np.array_split(np.arange(len(index)), 7):
        acc.update(
            torch.tensor(values[part]),
            torch.tensor(index[part]),
            torch.tensor(lengths[part]),
            torch.tensor(channel[part]),
        )
    f = acc.result()
    assert f.target_var == pytest.approx(values.var(axis=0).mean(), rel=1e-6)
    assert f.target_var < 2e-6 and f.target_mean == pytest.approx(1e6, rel=1e-9)
    assert f.target_power == pytest.approx(1e12, rel=1e-9)


def test_round_trip_rows_and_errors() -> None:
    index, lengths, channel, _ = _grid(2, 2, 3)
    f = compute_floors(np.arange(len(index), dtype=float)[:, None], index, lengths, channel)
    assert Floors.from_dict(f.to_dict()) == f
    assert [r["kind"] for r in f.rows()] == list(KINDS)
    with pytest.raises(ValueError, match="index < length"):
        group_codes(torch.tensor([3]), torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match="no tokens"):
        FloorAccumulator().result()
    with pytest.raises(KeyError, match="not one of"):
        f["time"]


def test_channel_coder_is_stable() -> None:
    coder = ChannelCoder()
    a = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert coder(a).tolist() == [0, 1, 0]
    assert coder(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).tolist() == [1, 2]
