"""The sequence model over a recording's windows: Mamba-2 (default) or a Transformer.

The backbone is always what the config says; there is no silent substitution (the
original swapped in a Transformer when mamba-ssm was missing, which made runs
incomparable).

Mamba-2 layers are pre-norm residual blocks, as in mamba-ssm's `Block`: h + mixer(norm(h)).
With `bidirectional`, each layer also has `mixer_rev`, run on each sequence with its REAL
part reversed (pads stay at the end), so the reversed pass starts at the true last window
and pads can reach no real position in either direction. The two directions are summed:
it keeps the residual stream d wide and each mixer's out_proj already learns its own scale,
so a concat + projection would only add d x 2d weights per layer (Vim's bidirectional
Mamba also adds its two directions, then halves them).

Shapes: b batch, l windows, d model width.
"""

from __future__ import annotations

import torch
from torch import nn

from eegwb.model.config import ModelConfig
from eegwb.model.mamba2 import EEGMamba2


def reversal_index(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(b, l) gather index that reverses the first lengths[i] positions and keeps the pads.

    It is its own inverse: applying `reverse_real` twice gives the input back.
    """
    pos = torch.arange(seq_len, device=lengths.device)[None, :]  # (1, l)
    return torch.where(pos < lengths[:, None], lengths[:, None] - 1 - pos, pos)


def reverse_real(h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """h (b, l, d) with each sequence's real part reversed (index from `reversal_index`)."""
    return torch.gather(h, 1, index.unsqueeze(-1).expand_as(h))


class MambaLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()

        def mixer() -> EEGMamba2:
            return EEGMamba2(
                cfg.d_model,
                d_state=cfg.d_state,
                d_conv=cfg.d_conv,
                expand=cfg.expand,
                headdim=cfg.headdim,
                ngroups=cfg.ngroups,
                chunk_size=cfg.chunk_size,
                kernel_backend=cfg.kernel_backend,
            )

        self.norm = nn.RMSNorm(cfg.d_model, eps=1e-5)
        self.mixer = mixer()
        self.mixer_rev = mixer() if cfg.bidirectional else None
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: torch.Tensor, pad_mask: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
        u = self.norm(h)  # (b, l, d)
        out = self.mixer(u, pad_mask)
        if self.mixer_rev is not None:
            out = out + reverse_real(self.mixer_rev(reverse_real(u, rev), pad_mask), rev)
        return h + self.drop(out)


class MambaBackbone(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(MambaLayer(cfg) for _ in range(cfg.n_layers))
        self.norm_f = nn.RMSNorm(cfg.d_model, eps=1e-5)

    def forward(self, h: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """h (b, l, d), pad_mask (b, l) True at pads (a suffix) -> (b, l, d)."""
        lengths = (~pad_mask).sum(1)
        rev = reversal_index(lengths, h.shape[1])
        for layer in self.layers:
            h = layer(h, pad_mask, rev)
        return self.norm_f(h)


class TransformerBackbone(nn.Module):
    """Pre-norm Transformer encoder at the same width; pads are masked out of attention.

    Attention is bidirectional by nature; `bidirectional=False` adds a causal mask so a
    unidirectional comparison with Mamba-2 stays possible.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            cfg.d_model,
            cfg.n_heads,
            dim_feedforward=4 * cfg.d_model,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, cfg.n_layers, norm=nn.LayerNorm(cfg.d_model), enable_nested_tensor=False
        )
        self.causal = not cfg.bidirectional

    def forward(self, h: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        causal = None
        if self.causal:
            l = h.shape[1]  # True = may not attend (the future)
            causal = torch.ones(l, l, dtype=torch.bool, device=h.device).triu(1)
        return self.encoder(h, mask=causal, src_key_padding_mask=pad_mask, is_causal=self.causal)


def build_backbone(cfg: ModelConfig) -> nn.Module:
    if cfg.backbone == "mamba2":
        return MambaBackbone(cfg)
    return TransformerBackbone(cfg)
