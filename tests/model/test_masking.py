"""make_mask / apply_mask: exact counts, pads never masked, seeding, BERT's 80/10/10."""

from __future__ import annotations

import pytest
import torch

from eegwb.model.config import MaskingConfig
from eegwb.model.masking import apply_mask, make_mask


def pad_mask_for(lengths: list[int], l: int) -> torch.Tensor:
    return torch.arange(l)[None, :] >= torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("ratio", [0.0, 0.15, 0.5, 0.75, 1.0])
def test_exact_count_per_sequence_and_never_a_pad(ratio):
    lengths = [1, 2, 5, 9, 13, 40]
    pad = pad_mask_for(lengths, 40)
    mask = make_mask(pad, ratio, generator=torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == pad.shape
    assert mask.sum(1).tolist() == [round(ratio * n) for n in lengths]
    assert not (mask & pad).any()


def test_ratio_one_masks_every_real_window():
    pad = pad_mask_for([3, 7], 7)
    assert torch.equal(make_mask(pad, 1.0), ~pad)


def test_seeding():
    pad = pad_mask_for([30, 25], 30)

    def draw(seed):
        return make_mask(pad, 0.5, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))


def test_masks_spread_over_positions():
    pad = pad_mask_for([10] * 2000, 10)
    freq = make_mask(pad, 0.3, generator=torch.Generator().manual_seed(0)).float().mean(0)
    assert torch.all((freq - 0.3).abs() < 0.05)  # no position is favoured


def test_mae_zeroes_masked_windows_and_leaves_the_input_alone():
    x = torch.randn(3, 6, 5)
    mask = make_mask(pad_mask_for([6, 4, 2], 6), 0.5, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    out = apply_mask(x, mask, "mae")
    assert torch.equal(x, before)
    assert torch.equal(out[mask], torch.zeros_like(out[mask]))
    assert torch.equal(out[~mask], x[~mask])


def test_bert_proportions():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 50, 8, generator=gen) + 3.0  # offset: never exactly zero by chance
    mask = make_mask(pad_mask_for([50] * 400, 50), 0.5, generator=gen)
    out = apply_mask(x, mask, "bert", generator=gen)
    assert torch.equal(out[~mask], x[~mask])
    masked_out, masked_x = out[mask], x[mask]  # (10000, 8)
    zero = (masked_out == 0).all(-1)
    same = (masked_out == masked_x).all(-1)
    noise = ~zero & ~same
    n = mask.sum().item()
    sd = (0.1 * 0.9 / n) ** 0.5  # binomial standard error of the 10% shares
    assert abs(zero.float().mean().item() - 0.8) < 5 * (0.8 * 0.2 / n) ** 0.5
    assert abs(same.float().mean().item() - 0.1) < 5 * sd
    assert abs(noise.float().mean().item() - 0.1) < 5 * sd
    replaced = masked_out[noise]
    assert abs(replaced.mean().item()) < 0.05 and abs(replaced.std().item() - 1.0) < 0.05


def test_bad_arguments():
    pad = pad_mask_for([4], 4)
    with pytest.raises(ValueError, match="mask_ratio"):
        make_mask(pad, 1.5)
    with pytest.raises(ValueError, match="style"):
        apply_mask(torch.zeros(1, 4, 2), pad, "span")
    with pytest.raises(ValueError, match="MaskingConfig.mask_ratio"):
        MaskingConfig(mask_ratio=-0.1)
    with pytest.raises(ValueError, match="MaskingConfig.style"):
        MaskingConfig(style="span")
