"""What the model sees of each window: its samples, its electrode, its place in time.

The three encodings are summed into one d_model-wide token, as in the original pipeline.
The control experiments switch the spatial and temporal ones off to ask what a model
can still learn without them.

Shapes: b batch, l windows per sequence, t samples per window, d model width.
"""

from __future__ import annotations

import torch
from torch import nn


class TokenEncoder(nn.Module):
    """One window of samples -> one token: Linear(t -> d) + LayerNorm."""

    def __init__(self, window_samples: int, d_model: int):
        super().__init__()
        self.proj = nn.Linear(window_samples, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))  # (b, l, t) -> (b, l, d)


class SpatialEncoding(nn.Module):
    """A fixed random projection of the electrode's unit-sphere position, 3 -> d.

    Not trainable (the original's choice: the model cannot learn to ignore or inflate
    it), drawn from its own seeded generator, and kept as a buffer so it is saved with
    the weights. Entries ~ N(0, 1) give each output ~ N(0, |coords|^2) = N(0, 1), the
    scale of a LayerNorm-ed token.
    """

    def __init__(self, d_model: int, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", torch.randn(3, d_model, generator=gen))  # (3, d)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return coords.to(self.weight.dtype) @ self.weight  # (b, 3) -> (b, d)


class TemporalEncoding(nn.Module):
    """Linear(1 -> d) of t / T: a window's relative place in its own recording.

    T is the true (unpadded) length of each sequence, so the code does not depend on how
    much padding the batch happened to need.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.proj = nn.Linear(1, d_model)

    def forward(self, lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
        """lengths (b,) true lengths, seq_len l -> (b, l, d)."""
        t = torch.arange(seq_len, device=lengths.device, dtype=self.proj.weight.dtype)
        frac = t / lengths.clamp(min=1).to(t.dtype)[:, None]  # (b, l)
        return self.proj(frac.unsqueeze(-1))
