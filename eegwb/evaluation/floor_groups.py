"""The streaming pieces the information floors are built from: per-group moments, stable
electrode ids, and the group key of each floor kind.

A token's key is what a fully masked model can know of it: its position (index from the
start and the sequence's true length) and its electrode (unit-sphere coordinates). Keys
pack into one int64 per kind, so grouping is a `torch.unique`; a finer key unpacks into
its coarser ones (`coarser_code`), which is how a transfer floor scores a group the
training participants never had.
"""

from __future__ import annotations

import math

import numpy as np
import torch

KINDS = ("nothing", "position", "channel", "channel_position")

_POS_BITS = 24  # index and length each < 2**24 windows
_CHAN_BITS = 14  # < 16384 distinct electrodes


class GroupMoments:
    """Streaming per-group count, mean vector and sum of squared deviations."""

    def __init__(self) -> None:
        self._rows: dict[int, int] = {}
        self.count = torch.zeros(0, dtype=torch.float64)  # (g,)
        self.mean: torch.Tensor | None = None  # (g, D) float64
        self.m2 = torch.zeros(0, dtype=torch.float64)  # (g,) sum over the group of |v - mean|^2

    def update(self, codes: torch.Tensor, values: torch.Tensor) -> None:
        """codes (n,) int64 group keys; values (n, D)."""
        if values.dim() != 2 or codes.shape != values.shape[:1]:
            raise ValueError(
                f"GroupMoments: codes {tuple(codes.shape)} and values "
                f"{tuple(values.shape)} must be (n,) and (n, D)"
            )
        if values.shape[0] == 0:
            return
        values = values.detach().to("cpu", torch.float64)
        uniq, inv = torch.unique(codes.detach().cpu(), return_inverse=True)
        nb = torch.bincount(inv, minlength=len(uniq)).to(torch.float64)  # (u,)
        sums = torch.zeros(len(uniq), values.shape[1], dtype=torch.float64).index_add_(
            0, inv, values
        )
        mb = sums / nb[:, None]  # (u, D)
        m2b = torch.zeros(len(uniq), dtype=torch.float64).index_add_(
            0, inv, (values - mb[inv]).square().sum(1)
        )
        if self.mean is None:
            self.mean = torch.zeros(0, values.shape[1], dtype=torch.float64)
        elif self.mean.shape[1] != values.shape[1]:
            raise ValueError(
                f"GroupMoments: values have width {values.shape[1]}, "
                f"earlier updates {self.mean.shape[1]}"
            )
        rows = []
        new = 0
        for code in uniq.tolist():
            row = self._rows.get(code)
            if row is None:
                row = self._rows[code] = len(self._rows)
                new += 1
            rows.append(row)
        if new:
            self.count = torch.cat([self.count, torch.zeros(new, dtype=torch.float64)])
            self.mean = torch.cat(
                [self.mean, torch.zeros(new, self.mean.shape[1], dtype=torch.float64)]
            )
            self.m2 = torch.cat([self.m2, torch.zeros(new, dtype=torch.float64)])
        idx = torch.tensor(rows, dtype=torch.long)
        na = self.count[idx]
        n = na + nb
        delta = mb - self.mean[idx]  # (u, D)
        self.mean[idx] = self.mean[idx] + delta * (nb / n)[:, None]
        self.m2[idx] = self.m2[idx] + m2b + delta.square().sum(1) * na * nb / n
        self.count[idx] = n

    @property
    def n_groups(self) -> int:
        return len(self._rows)

    @property
    def dim(self) -> int:
        return 0 if self.mean is None else int(self.mean.shape[1])

    def codes(self) -> torch.Tensor:
        """(g,) the group keys, in row order."""
        return torch.tensor(list(self._rows), dtype=torch.long)

    def rows_of(self, codes: list[int]) -> list[int | None]:
        """Row of each group key (None: no token of that group was seen)."""
        return [self._rows.get(c) for c in codes]

    def within_mse(self) -> float:
        """Mean squared deviation from the group means, per token and element (in-sample)."""
        n = float(self.count.sum())
        return float(self.m2.sum()) / (n * self.dim) if n else math.nan

    def unbiased_mse(self) -> float:
        """The same with each group's deviations divided by n - 1 (groups of one left out)."""
        keep = self.count >= 2
        n = float(self.count[keep].sum())
        if not n:
            return math.nan
        var = self.m2[keep] / (self.count[keep] - 1)  # (g,) per-group variance x D
        return float((var * self.count[keep]).sum()) / (n * self.dim)


class ChannelCoder:
    """Stable integer ids for electrodes, keyed by their unit-sphere coords (what the model
    sees)."""

    def __init__(self, decimals: int = 5) -> None:
        self.decimals = decimals
        self.ids: dict[tuple[float, ...], int] = {}

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """coords (n, 3) -> (n,) int64 ids."""
        keys = np.round(coords.detach().cpu().double().numpy(), self.decimals)
        out = [self.ids.setdefault(tuple(row), len(self.ids)) for row in keys.tolist()]
        return torch.tensor(out, dtype=torch.long)


def group_codes(
    index: torch.Tensor, length: torch.Tensor, channel: torch.Tensor
) -> dict[str, torch.Tensor]:
    """(n,) int64 group keys for each floor kind from per-token index, true length, channel id."""
    index, length, channel = (torch.as_tensor(v).long().cpu() for v in (index, length, channel))
    if not (index.shape == length.shape == channel.shape) or index.dim() != 1:
        raise ValueError("group_codes: index, length and channel must be (n,) each")
    if len(index) and (
        int(length.max()) >= 1 << _POS_BITS
        or int(channel.max()) >= 1 << _CHAN_BITS
        or int(index.min()) < 0
        or bool((index >= length).any())
    ):
        raise ValueError("group_codes: need 0 <= index < length < 2**24 and channel ids < 2**14")
    position = (length << _POS_BITS) | index
    return {
        "nothing": torch.zeros_like(index),
        "position": position,
        "channel": channel,
        "channel_position": (channel << (2 * _POS_BITS)) | position,
    }


def coarser_code(code: int, kind: str, coarser: str) -> int:
    """The key of the `coarser` kind a token of group `code` (of `kind`) falls in."""
    if coarser == "nothing":
        return 0
    if kind == "channel_position":
        return code & ((1 << 2 * _POS_BITS) - 1) if coarser == "position" else code >> 2 * _POS_BITS
    if kind == coarser:
        return code
    raise ValueError(f"coarser_code: {coarser!r} is not coarser than {kind!r}")
