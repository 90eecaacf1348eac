"""Which windows are hidden from the model, and how (MAE zeroing or BERT's 80/10/10).

Masks are drawn from a `torch.Generator` when one is given, so a seeded run hides the
same windows every time. The random numbers are drawn on the generator's device and
moved to the data's, so a CPU generator gives the same masks on CPU and GPU.

Shapes: b batch, l windows, t samples per window.
"""

from __future__ import annotations

from typing import Literal

import torch


def _rand(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device,
    *,
    normal: bool = False,
) -> torch.Tensor:
    where = generator.device if generator is not None else device
    draw = torch.randn if normal else torch.rand
    return draw(shape, generator=generator, device=where).to(device)


def make_mask(
    pad_mask: torch.Tensor, mask_ratio: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(b, l) bool, True at masked windows: exactly round(mask_ratio * length) real
    positions of each sequence (round half to even, as Python's `round`), never a pad.

    pad_mask: (b, l) bool, True at pads. mask_ratio in [0, 1]; 1.0 masks every real window.
    """
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"make_mask: mask_ratio must be in [0, 1], got {mask_ratio}")
    if pad_mask.dim() != 2 or pad_mask.dtype != torch.bool:
        raise ValueError(
            f"make_mask: pad_mask must be (b, l) bool, got {pad_mask.dtype} {tuple(pad_mask.shape)}"
        )
    lengths = (~pad_mask).sum(1)  # (b,)
    n_masked = torch.round(lengths.double() * mask_ratio).long()  # (b,)
    scores = _rand(tuple(pad_mask.shape), generator, pad_mask.device)
    scores = scores.masked_fill(pad_mask, 2.0)  # pads sort after every real position
    ranks = scores.argsort(dim=1).argsort(dim=1)  # (b, l): 0 = lowest score
    return ranks < n_masked[:, None]


def apply_mask(
    x: torch.Tensor,
    mask: torch.Tensor,
    style: Literal["mae", "bert"],
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x (b, l, t) with the masked windows hidden; x itself is not modified.

    mae: masked windows become zero. bert: of the masked windows, each independently
    becomes zero with probability 0.8, standard Gaussian noise (the scale of normalised
    EEG) with 0.1, and stays unchanged with 0.1 (all of them remain in the loss).
    """
    if mask.shape != x.shape[:2]:
        raise ValueError(f"apply_mask: mask {tuple(mask.shape)} does not fit x {tuple(x.shape)}")
    m = mask.unsqueeze(-1)  # (b, l, 1)
    if style == "mae":
        return x.masked_fill(m, 0.0)
    if style != "bert":
        raise ValueError(f"apply_mask: style {style!r} is not 'mae' or 'bert'")
    u = _rand(tuple(mask.shape), generator, x.device).unsqueeze(-1)  # (b, l, 1)
    noise = _rand(tuple(x.shape), generator, x.device, normal=True).to(x.dtype)
    out = torch.where(m & (u < 0.8), torch.zeros_like(x), x)
    return torch.where(m & (u >= 0.8) & (u < 0.9), noise, out)
