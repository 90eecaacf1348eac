"""The batch every model, trainer and diagnostic in eegwb speaks.

A *sequence* is one channel of one recording: its windows in time order. A batch holds
`b` sequences padded to the longest (`l` windows of `t` samples each).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    x: torch.Tensor  # (b, l, t) float32 normalised windows; exactly zero at pads
    coords: torch.Tensor  # (b, 3) float32 unit-sphere position of each sequence's electrode
    pad_mask: torch.Tensor  # (b, l) bool, True at padded positions
    lengths: torch.Tensor  # (b,) int64 true (unpadded) number of windows
    seq_index: torch.Tensor  # (b,) int64 row of the dataset index (participant/run/channel)
    label: torch.Tensor | None = None  # (b,) float32 per-sequence label when the task has one

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        moved = {
            f.name: (v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
        return Batch(**moved)

    @property
    def valid(self) -> torch.Tensor:
        """(b, l) bool, True at real positions."""
        return ~self.pad_mask

    def __len__(self) -> int:
        return self.x.shape[0]
