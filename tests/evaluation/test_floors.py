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


# ----------------------------------------------------------------------------- transfer floors


def _people_grid(n_people: int, n_ch: int, length: int, first: int = 0):
    """Keys of one sequence per (participant, channel): index, length, channel, participant."""
    people = np.repeat(np.arange(first, first + n_people), n_ch * length)
    channel = np.tile(np.repeat(np.arange(n_ch), length), n_people)
    index = np.tile(np.arange(length), n_people * n_ch)
    return index, np.full_like(index, length), channel, people


def test_transfer_floor_is_the_mse_of_training_group_means_on_other_people() -> None:
    rng = np.random.default_rng(5)
    n_ch, length, dim = 3, 4, 2
    tr = _people_grid(6, n_ch, length)
    va = _people_grid(3, n_ch, length, first=100)
    effect = rng.normal(size=(n_ch, length, dim))
    y_tr = effect[tr[2], tr[0]] + rng.normal(size=(len(tr[0]), dim))
    y_va = effect[va[2], va[0]] + rng.normal(size=(len(va[0]), dim))
    train = FloorAccumulator()
    train.update(torch.tensor(y_tr), *(torch.tensor(v) for v in tr))
    floors = compute_floors(y_va, *va, train=train)
    keys_tr = {"nothing": np.zeros(len(tr[0])), "position": tr[0], "channel": tr[2],
               "channel_position": tr[2] * 100 + tr[0]}  # fmt: skip
    keys_va = {"nothing": np.zeros(len(va[0])), "position": va[0], "channel": va[2],
               "channel_position": va[2] * 100 + va[0]}  # fmt: skip
    for kind in KINDS:
        pred = np.stack([y_tr[keys_tr[kind] == g].mean(0) for g in keys_va[kind]])
        assert floors[kind].mse_transfer == pytest.approx(np.mean((y_va - pred) ** 2), rel=1e-10)
        assert floors[kind].unseen == 0.0
    assert floors.has_transfer and (floors.n_participants, floors.n_train_participants) == (3, 6)
    assert floors.channel_position.participants_per_group == 6  # each mean rests on 6 people
    assert floors.nothing.participants_per_group == 6
    assert floors.reference("channel_position") == floors.reachable("channel_position")


def test_unseen_groups_are_scored_by_the_next_coarser_group() -> None:
    tr = (
        np.array([0, 1, 0, 1]),
        np.array([2, 2, 2, 2]),
        np.array([0, 0, 1, 1]),
        np.array([0, 0, 1, 1]),
    )
    train = FloorAccumulator()
    y_tr = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    train.update(y_tr, *(torch.tensor(v) for v in tr))
    # validation: channel 0 at position (0 of 2), seen; channel 0 at (0 of 1), a length never
    # trained on: channel x position falls back to channel 0's mean (position unseen too)
    va = (np.array([0, 0]), np.array([2, 1]), np.array([0, 0]), np.array([7, 7]))
    f = compute_floors(np.array([[1.0], [0.0]]), *va, train=train)
    assert f.channel_position.unseen == 0.5 and f.position.unseen == 0.5
    assert f.channel_position.mse_transfer == pytest.approx(((1 - 1) ** 2 + (0 - 1.5) ** 2) / 2)
    assert f.position.mse_transfer == pytest.approx(((1 - 2) ** 2 + (0 - 2.5) ** 2) / 2)


def test_correlated_tokens_make_in_sample_floors_promise_what_transfer_does_not() -> None:
    """The EEGMAT case: a person's offset is shared by all their channels and positions. With
    4 people, the unbiased in-sample floors call position worth something and the finer
    channel x position grouping looks best; learnt on other people, neither helps, the finer
    grouping transfers worst, and the note says why."""
    rng = np.random.default_rng(6)
    n_ch, length = 19, 14
    tr, va = _people_grid(6, n_ch, length), _people_grid(4, n_ch, length, first=50)

    def signal(keys):
        person = rng.normal(size=(keys[3].max() + 1, length)) * 0.8  # person x position offsets
        return person[keys[3], keys[0]][:, None] + rng.normal(size=(len(keys[0]), 8))

    train = FloorAccumulator()
    train.update(torch.tensor(signal(tr)), *(torch.tensor(v) for v in tr))
    f = compute_floors(signal(va), *va, train=train)
    unbiased_gain = 1 - f.mse("position", unbiased=True) / f.mse("nothing", unbiased=True)
    assert unbiased_gain > 0.05  # the in-sample illusion (10%): a position mean fits 4 people
    assert f.position.mse_transfer > 0.97 * f.nothing.mse_transfer  # nothing that transfers
    assert f.channel_position.mse_transfer > f.position.mse_transfer
    assert f.reachable("channel_position") <= f.position.mse_transfer
    notes = " ".join(f.notes())
    assert "channel x position transfers worse than" in notes
    assert "6 training participants per group is too few" in notes


def test_floors_round_trip_and_old_reports_load() -> None:
    index, lengths, channel, _ = _grid(2, 2, 3)
    f = compute_floors(np.arange(len(index), dtype=float)[:, None], index, lengths, channel)
    assert not f.has_transfer and math.isnan(f.reachable("position"))
    assert f.reference("position") == f.mse("position", unbiased=True)
    old = f.to_dict()
    for kind in KINDS:  # a report written before transfer floors: no such keys
        for key in ("mse_transfer", "participants_per_group", "unseen"):
            del old[kind][key]
    del old["n_participants"], old["n_train_participants"]
    assert Floors.from_dict(old) == f
