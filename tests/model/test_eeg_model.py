"""EEGModel: exact padding in both directions, what the disable flags hide, shapes, describe."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from eegwb.model import EEGModel, ModelConfig
from eegwb.model.backbone import reversal_index, reverse_real

T = 24  # samples per window
TINY = ModelConfig(
    window_samples=T, d_model=16, n_layers=2, d_state=8, headdim=8, chunk_size=4, n_heads=2
)


def make(cfg: ModelConfig = TINY, seed: int = 0) -> EEGModel:
    torch.manual_seed(seed)
    return EEGModel(cfg).eval()


def coords(b: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(b, 3, generator=torch.Generator().manual_seed(seed)), dim=1)


def padded(lengths: list[int], l: int) -> torch.Tensor:
    return torch.arange(l)[None, :] >= torch.tensor(lengths)[:, None]


@pytest.mark.parametrize(
    "backbone,bidirectional", [("mamba2", True), ("mamba2", False), ("transformer", True)]
)
def test_sequence_alone_equals_sequence_in_padded_batch(backbone, bidirectional):
    model = make(replace(TINY, backbone=backbone, bidirectional=bidirectional))
    seq = torch.randn(1, 7, T)
    c = coords(2)
    alone = model.encode(seq, c[:1], padded([7], 7))
    other = torch.randn(1, 11, T)
    junk = 100 * torch.randn(1, 4, T)  # whatever sits in the pads must not matter
    batch = torch.cat([torch.cat([seq, junk], 1), other])
    out = model.encode(batch, c, padded([7, 11], 11))
    assert torch.allclose(out[0, :7], alone[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(out[0, 7:], torch.zeros(4, 16))
    pooled = model.pooled_embedding(batch, c, padded([7, 11], 11))
    assert torch.allclose(pooled[0], alone[0].mean(0), rtol=1e-5, atol=1e-5)


def test_reversal_reverses_only_the_real_part():
    idx = reversal_index(torch.tensor([3, 5, 1]), 5)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]
    h = torch.randn(3, 5, 2)
    assert torch.allclose(reverse_real(reverse_real(h, idx), idx), h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_the_reversed_pass_lets_early_positions_see_the_future(bidirectional):
    model = make(replace(TINY, bidirectional=bidirectional, disable_temporal_encoding=True))
    x, c, pad = torch.randn(1, 9, T), coords(1), padded([9], 9)
    changed = x.clone()
    changed[0, -1] += 5.0  # only the last real window changes
    before, after = model.encode(x, c, pad), model.encode(changed, c, pad)
    sees_future = not torch.allclose(before[0, 0], after[0, 0], atol=1e-6)
    assert sees_future == bidirectional


def test_causal_transformer_when_not_bidirectional():
    model = make(replace(TINY, backbone="transformer", bidirectional=False))
    x, c, pad = torch.randn(1, 6, T), coords(1), padded([6], 6)
    changed = x.clone()
    changed[0, 4:] = 3.0
    past, past_changed = model.encode(x, c, pad)[0, :4], model.encode(changed, c, pad)[0, :4]
    assert torch.allclose(past_changed, past, rtol=1e-5, atol=1e-6)


def test_with_both_encodings_off_and_everything_masked_all_samples_look_alike():
    model = make(replace(TINY, disable_spatial_encoding=True, disable_temporal_encoding=True))
    assert model.spatial_encoding is None and model.temporal_encoding is None
    zeros = torch.zeros(3, 8, T)  # every window masked (MAE zeroing)
    pad = padded([8, 8, 8], 8)
    emb = model.embed(zeros, coords(3), pad)
    assert torch.allclose(emb, emb[:1, :1].expand_as(emb))  # identical everywhere
    out = model.encode(zeros, coords(3), pad)
    assert torch.allclose(out, out[:1].expand_as(out), atol=1e-6)  # electrode is invisible


def test_each_encoding_reveals_what_it_should():
    zeros, pad = torch.zeros(3, 8, T), padded([8, 8, 8], 8)
    spatial = make(replace(TINY, disable_temporal_encoding=True)).embed(zeros, coords(3), pad)
    assert not torch.allclose(spatial[0], spatial[1])  # electrodes differ
    assert torch.allclose(spatial[0, 0], spatial[0, 5])  # positions do not
    temporal = make(replace(TINY, disable_spatial_encoding=True)).embed(zeros, coords(3), pad)
    assert torch.allclose(temporal[0], temporal[1])
    assert not torch.allclose(temporal[0, 0], temporal[0, 5])


def test_temporal_encoding_uses_the_true_length():
    model = make(replace(TINY, disable_spatial_encoding=True))
    zeros = torch.zeros(2, 8, T)
    emb = model.embed(zeros, coords(2), padded([8, 4], 8))
    # position 2 of a 4-window sequence and position 4 of an 8-window one are both t/T = 0.5
    assert torch.allclose(emb[1, 2], emb[0, 4], rtol=1e-5, atol=1e-6)


def test_spatial_encoding_is_a_fixed_seeded_buffer():
    model = make()
    assert "spatial_encoding.weight" in model.state_dict()
    assert all("spatial_encoding" not in n for n, _ in model.named_parameters())
    again = make(seed=123)  # other weights, same spatial seed
    assert torch.equal(again.spatial_encoding.weight, model.spatial_encoding.weight)
    other = make(replace(TINY, spatial_seed=1))
    assert not torch.equal(other.spatial_encoding.weight, model.spatial_encoding.weight)


@pytest.mark.parametrize("target,out_dim", [("signal", T), ("embedding", 16), ("ema", 16)])
def test_output_shapes_and_describe(target, out_dim):
    model = make(replace(TINY, target=target))
    out = model(torch.randn(2, 5, T), coords(2), padded([5, 3], 5))
    assert out.shape == (2, 5, out_dim)
    info = model.describe()
    assert info["kernel_path"] == "reference" and info["backbone"] == "mamba2"
    assert info["n_params"] == sum(p.numel() for p in model.parameters())
    assert info["out_dim"] == out_dim
    assert model.token_encoder.proj.in_features == T


def test_bad_inputs_name_the_problem():
    model = make()
    with pytest.raises(ValueError, match=f"\\(b, l, {T}\\)"):
        model(torch.randn(2, 5, T + 1), coords(2), padded([5, 5], 5))
    with pytest.raises(ValueError, match="suffix"):
        model(torch.randn(1, 4, T), coords(1), torch.tensor([[True, False, False, False]]))
    with pytest.raises(ValueError, match="coords"):
        model(torch.randn(2, 4, T), coords(1), padded([4, 4], 4))


def test_config_rejects_bad_values_naming_the_field():
    for kwargs, field in [
        ({"headdim": 30}, "headdim"),
        ({"backbone": "lstm"}, "backbone"),
        ({"dropout": 1.0}, "dropout"),
        ({"d_model": "128"}, "d_model"),
        ({"bidirectional": "yes"}, "bidirectional"),
        ({"ngroups": 3}, "ngroups"),
        ({"backbone": "transformer", "n_heads": 5}, "n_heads"),
        ({"kernel_backend": "triton"}, "kernel_backend"),
    ]:
        with pytest.raises(ValueError, match=f"ModelConfig.{field}"):
            ModelConfig(**kwargs)
    cfg = ModelConfig()
    assert (cfg.nheads, cfg.out_dim, cfg.d_inner) == (8, 2048, 256)
