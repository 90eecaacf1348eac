"""The EEG model: windows -> tokens (+ electrode, + time) -> backbone -> reconstruction.

Glossary of shapes: b batch, l sequence of windows (padded), c channels, t samples per
window, d model width (d_model), h heads, p head dim, n state size, o output width
(t for the `signal` target, d for embedding targets).

A sequence is one channel of one recording; its electrode's unit-sphere position comes in
`coords` and its windows in `x`. Pads (True in `pad_mask`) are a suffix of each sequence;
they change nothing at real positions and come out as exact zeros from `encode`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eegwb.kernels.fused import KernelUnavailableError
from eegwb.model.backbone import MambaBackbone, build_backbone
from eegwb.model.config import ModelConfig
from eegwb.model.encoders import SpatialEncoding, TemporalEncoding, TokenEncoder


class EEGModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.token_encoder = TokenEncoder(cfg.window_samples, cfg.d_model)
        self.spatial_encoding = (
            None if cfg.disable_spatial_encoding else SpatialEncoding(cfg.d_model, cfg.spatial_seed)
        )
        self.temporal_encoding = (
            None if cfg.disable_temporal_encoding else TemporalEncoding(cfg.d_model)
        )
        self.backbone = build_backbone(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.out_dim)

    def _check(self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor) -> None:
        t = self.cfg.window_samples
        if x.dim() != 3 or x.shape[-1] != t:
            raise ValueError(f"EEGModel: x must be (b, l, {t}) windows, got {tuple(x.shape)}")
        b, l, _ = x.shape
        if coords.shape != (b, 3):
            raise ValueError(f"EEGModel: coords must be ({b}, 3), got {tuple(coords.shape)}")
        if pad_mask.shape != (b, l) or pad_mask.dtype != torch.bool:
            raise ValueError(
                f"EEGModel: pad_mask must be bool ({b}, {l}), got {pad_mask.dtype} "
                f"{tuple(pad_mask.shape)}"
            )
        lengths = (~pad_mask).sum(1, keepdim=True)
        if not torch.equal(pad_mask, torch.arange(l, device=pad_mask.device) >= lengths):
            raise ValueError(
                "EEGModel: pad_mask must mark a suffix of each sequence (right padding)"
            )

    def embed(self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """The backbone's input: token + spatial + temporal encodings, zero at pads. (b, l, d)."""
        self._check(x, coords, pad_mask)
        h = self.token_encoder(x)  # (b, l, d)
        if self.spatial_encoding is not None:
            h = h + self.spatial_encoding(coords)[:, None, :]
        if self.temporal_encoding is not None:
            h = h + self.temporal_encoding((~pad_mask).sum(1), x.shape[1])
        return h.masked_fill(pad_mask.unsqueeze(-1), 0.0)

    def encode(self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """x (b, l, t), coords (b, 3), pad_mask (b, l) True at pads -> (b, l, d), 0 at pads."""
        h = self.backbone(self.embed(x, coords, pad_mask), pad_mask)
        return h.masked_fill(pad_mask.unsqueeze(-1), 0.0)

    def forward(
        self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor
    ) -> torch.Tensor:
        """The reconstruction (b, l, o) of every position (the loss reads masked ones)."""
        return self.head(self.encode(x, coords, pad_mask))

    def pooled_embedding(
        self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor
    ) -> torch.Tensor:
        """(b, d): the mean of `encode` over each sequence's real positions."""
        h = self.encode(x, coords, pad_mask)
        n = (~pad_mask).sum(1, keepdim=True).clamp(min=1).to(h.dtype)
        return h.sum(1) / n

    def describe(self) -> dict[str, Any]:
        """What this model is and which kernels it runs with on its current device."""
        cfg = self.cfg
        device = self.head.weight.device
        if isinstance(self.backbone, MambaBackbone):
            try:
                ops = self.backbone.layers[0].mixer.kernels(device)
                path, reason = ops.path, ops.reason
            except KernelUnavailableError as err:  # forward would raise the same
                path, reason = "unavailable", str(err)
        else:
            path, reason = "reference", "transformer backbone: torch attention, no SSD scan"
        return {
            "backbone": cfg.backbone,
            "bidirectional": cfg.bidirectional,
            "kernel_backend": cfg.kernel_backend,
            "kernel_path": path,
            "reason": reason,
            "device": str(device),
            "n_params": sum(p.numel() for p in self.parameters()),
            "n_trainable": sum(p.numel() for p in self.parameters() if p.requires_grad),
            "d_model": cfg.d_model,
            "n_layers": cfg.n_layers,
            "window_samples": cfg.window_samples,
            "target": cfg.target,
            "out_dim": cfg.out_dim,
            "spatial_encoding": not cfg.disable_spatial_encoding,
            "temporal_encoding": not cfg.disable_temporal_encoding,
        }
