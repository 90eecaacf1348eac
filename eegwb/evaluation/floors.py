"""Information floors: the lowest MSE reachable on a split from each kind of information.

A model whose input is fully masked can only use what the architecture tells it about a
token: its position and (with the spatial encoding) its electrode. The best predictor
that knows only a group key g is the mean target of the group, and its MSE is the mean
within-group variance. So for fixed targets the floors are closed-form numbers:

    nothing            total target variance around the split's mean (predict the mean)
    position           groups (index from start, true length): everything the model can
                       know of position (index from the end and t/T follow from the two)
    channel            groups by electrode (its unit-sphere position, what the model sees)
    channel_position   groups by electrode x position

Two numbers per floor. `mse` is exact for the tokens given: no function of the key can
score lower on them, so a loss below it needs information the key does not carry (the
leak test). It is in-sample, so small groups make it optimistic (a group of n tokens
hides 1/n of its variance). `mse_unbiased` divides each group's squared deviations by
n - 1 instead of n (Bessel), estimating the MSE of the ideal group-mean predictor on new
data from the same groups; the verdict compares floors with each other and with the
model's loss on that scale. Groups of one token have no unbiased estimate and are left
out of it.

Moments are merged per group with Chan et al.'s parallel update (no sum-of-squares
cancellation, which matters exactly when embedding targets collapse toward a constant).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

KINDS = ("nothing", "position", "channel", "channel_position")
LABELS = {
    "nothing": "nothing (dataset mean)",
    "position": "position only",
    "channel": "channel only",
    "channel_position": "channel x position",
}
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


@dataclass(frozen=True)
class Floor:
    kind: str
    mse: float  # exact in-sample floor: no function of the key scores lower on these tokens
    mse_unbiased: float  # Bessel-corrected: the ideal group-mean predictor on new data
    n_groups: int
    min_group: int  # tokens in the smallest group
    median_group: float


@dataclass(frozen=True)
class Floors:
    """The four floors of one split and target, per token and element (the loss's units)."""

    nothing: Floor
    position: Floor
    channel: Floor
    channel_position: Floor
    n_tokens: int
    dim: int
    target_mean: float  # mean over tokens and elements
    target_var: float  # = nothing.mse: variance across tokens, per element
    target_power: float  # mean square per element: target_var + squared mean (collapse scale)

    def __getitem__(self, kind: str) -> Floor:
        if kind not in KINDS:
            raise KeyError(f"floor kind {kind!r} is not one of {KINDS}")
        return getattr(self, kind)

    def mse(self, kind: str, unbiased: bool = False) -> float:
        floor = self[kind]
        return floor.mse_unbiased if unbiased else floor.mse

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Floors:
        return cls(
            **{k: Floor(**data[k]) for k in KINDS},
            **{
                k: data[k] for k in ("n_tokens", "dim", "target_mean", "target_var", "target_power")
            },
        )

    def rows(self) -> list[dict]:
        """One row per floor, for tables and the floor-ladder chart."""
        return [
            {
                "kind": k,
                "information": LABELS[k],
                "mse": self[k].mse,
                "mse_unbiased": self[k].mse_unbiased,
                "n_groups": self[k].n_groups,
                "min_group": self[k].min_group,
            }
            for k in KINDS
        ]


class FloorAccumulator:
    """Collect targets batch by batch, then `result()` -> Floors."""

    def __init__(self) -> None:
        self.groups = {k: GroupMoments() for k in KINDS}
        self._sum = 0.0
        self._n = 0

    def update(
        self, values: torch.Tensor, index: torch.Tensor, length: torch.Tensor, channel: torch.Tensor
    ) -> None:
        """values (n, D) targets of n tokens; index, length, channel (n,) their keys."""
        codes = group_codes(index, length, channel)
        for kind, moments in self.groups.items():
            moments.update(codes[kind], values)
        self._sum += float(values.detach().double().sum())
        self._n += int(values.numel())

    def result(self) -> Floors:
        g = self.groups["nothing"]
        if g.n_groups == 0:
            raise ValueError("FloorAccumulator: no tokens were given")
        floors = {}
        for kind, m in self.groups.items():
            counts = m.count
            floors[kind] = Floor(
                kind,
                m.within_mse(),
                m.unbiased_mse(),
                m.n_groups,
                int(counts.min()),
                float(counts.median()),
            )
        var = floors["nothing"].mse
        return Floors(
            **floors,
            n_tokens=int(g.count.sum()),
            dim=g.dim,
            target_mean=self._sum / self._n,
            target_var=var,
            target_power=var + float(g.mean.square().mean()),
        )


def compute_floors(values: torch.Tensor | np.ndarray, index, length, channel) -> Floors:
    """Floors of n tokens at once: values (n, D); index, length, channel (n,) integers."""
    acc = FloorAccumulator()
    acc.update(
        torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values),
        torch.as_tensor(index),
        torch.as_tensor(length),
        torch.as_tensor(channel),
    )
    return acc.result()
