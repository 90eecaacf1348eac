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

Three numbers per floor:

- `mse`, in-sample and exact for the tokens given: no function of the key can score lower
  on them, so a loss below it needs information the key does not carry (the leak test).
  Small groups make it optimistic (a group of n tokens hides 1/n of its variance).
- `mse_unbiased` divides each group's squared deviations by n - 1 (Bessel). It treats the
  tokens of a group as independent, which they are not: the 19 channels of one person's
  window are strongly correlated, so 4 validation participants gave "position is worth
  11.5% of the target variance" on EEGMAT, and a finer grouping came out worse than a
  coarser one.
- `mse_transfer`, the floor a model could really reach: the group means learnt on the
  *training* participants, scored on these tokens (other participants). A group the
  training data never had is scored by its next coarser group (channel x position by
  position, then channel, then the dataset mean); `unseen` is the share of such tokens.
  `participants_per_group` is how many independent training participants a group mean
  rests on (median over groups), the number that says whether it can be learnt.

Verdicts compare the model's loss with `Floors.reference(kind)`: the transfer floor of
that information or of any coarser one (a model that knows channel and position can
ignore either), else the unbiased floor when no training split was given. When a finer
grouping transfers worse than a coarser one, `Floors.notes()` says why.

Moments are merged per group with Chan et al.'s parallel update (no sum-of-squares
cancellation, which matters exactly when embedding targets collapse toward a constant).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from eegwb.evaluation.floor_groups import (
    KINDS,
    ChannelCoder,
    GroupMoments,
    coarser_code,
    group_codes,
)

__all__ = ["KINDS", "LABELS", "ChannelCoder", "Floor", "FloorAccumulator", "Floors",
           "compute_floors", "group_codes"]  # fmt: skip
LABELS = {
    "nothing": "nothing (dataset mean)",
    "position": "position only",
    "channel": "channel only",
    "channel_position": "channel x position",
}
COARSER = {  # kinds a model with this information can fall back on, coarsest first
    "nothing": ("nothing",),
    "position": ("nothing", "position"),
    "channel": ("nothing", "channel"),
    "channel_position": ("nothing", "channel", "position", "channel_position"),
}
FEW_PEOPLE = 10  # fewer independent participants behind a group mean: too few to learn it
FALLBACK = {"channel_position": ("position", "channel", "nothing"), "position": ("nothing",),
            "channel": ("nothing",), "nothing": ()}  # fmt: skip


@dataclass(frozen=True)
class Floor:
    kind: str
    mse: float  # exact in-sample floor: no function of the key scores lower on these tokens
    mse_unbiased: float  # Bessel-corrected, tokens taken as independent
    n_groups: int
    min_group: int  # tokens in the smallest group
    median_group: float
    mse_transfer: float = math.nan  # training participants' group means, scored on these tokens
    participants_per_group: float = math.nan  # median training participants behind a group mean
    unseen: float = math.nan  # share of tokens whose group no training token had


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
    n_participants: int = 0  # participants among these tokens (0: not given)
    n_train_participants: int = 0  # participants the transfer means were learnt on (0: none)

    def __getitem__(self, kind: str) -> Floor:
        if kind not in KINDS:
            raise KeyError(f"floor kind {kind!r} is not one of {KINDS}")
        return getattr(self, kind)

    def mse(self, kind: str, unbiased: bool = False) -> float:
        floor = self[kind]
        return floor.mse_unbiased if unbiased else floor.mse

    @property
    def has_transfer(self) -> bool:
        return self.n_train_participants > 0 and math.isfinite(self.nothing.mse_transfer)

    def reachable(self, kind: str) -> float:
        """The best transfer floor of this information or any coarser one (NaN without)."""
        values = [self[k].mse_transfer for k in COARSER[kind]]
        return min(values) if all(math.isfinite(v) for v in values) else math.nan

    def reference(self, kind: str) -> float:
        """What verdicts compare with: `reachable` when a training split was given, else the
        unbiased in-sample floor."""
        return self.reachable(kind) if self.has_transfer else self.mse(kind, unbiased=True)

    @property
    def basis(self) -> str:
        return "transfer" if self.has_transfer else "unbiased"

    def notes(self) -> list[str]:
        """One line per grouping that transfers worse than a coarser one, saying why."""
        if not self.has_transfer:
            return []
        out = []
        for kind in KINDS[1:]:
            best = min(COARSER[kind][:-1], key=lambda k: self[k].mse_transfer)
            finer, coarser = self[kind], self[best]
            if finer.mse_transfer > coarser.mse_transfer:
                people = finer.participants_per_group
                why = f"a median of {people:g} training participants per group" + (
                    f" is too few to learn its {finer.n_groups} group means"
                    if people < FEW_PEOPLE
                    else ": what tells its groups apart in training does not carry over to "
                    "other participants"
                )
                if finer.unseen > 0.1:
                    why += f" ({finer.unseen:.0%} of these tokens' groups were never in training)"
                out.append(
                    f"{LABELS[kind]} transfers worse than {LABELS[best]} "
                    f"({finer.mse_transfer:.4f} vs {coarser.mse_transfer:.4f}): {why}; a model "
                    f"with that information can still reach {coarser.mse_transfer:.4f}."
                )
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Floors:
        """From `to_dict` output; reports written before transfer floors existed load too."""
        scalars = {f.name for f in fields(cls) if f.name not in KINDS}
        return cls(**{k: Floor(**data[k]) for k in KINDS},
                   **{k: data[k] for k in scalars if k in data})  # fmt: skip

    def rows(self) -> list[dict]:
        """One row per floor, for tables and the floor-ladder chart."""
        return [
            {
                "kind": k,
                "information": LABELS[k],
                "mse": self[k].mse,
                "mse_unbiased": self[k].mse_unbiased,
                "mse_transfer": self[k].mse_transfer,
                "reachable": self.reachable(k),
                "reference": self.reference(k),
                "participants_per_group": self[k].participants_per_group,
                "n_groups": self[k].n_groups,
                "min_group": self[k].min_group,
            }
            for k in KINDS
        ]

    def table_lines(self) -> list[str]:
        """The ladder as text: in-sample, unbiased, transfer, reachable, groups, people."""
        head = f"{'information':<24}{'in-sample':>10}{'unbiased':>10}{'transfer':>10}"
        lines = [head + f"{'reachable':>11}{'groups':>8}{'people/group':>14}"]
        for r in self.rows():
            lines.append(
                f"{r['information']:<24}{r['mse']:>10.4f}{r['mse_unbiased']:>10.4f}"
                f"{r['mse_transfer']:>10.4f}{r['reachable']:>11.4f}{r['n_groups']:>8}"
                f"{r['participants_per_group']:>14g}"
            )
        who = (
            f"transfer: group means of {self.n_train_participants} training participants, "
            f"scored on {self.n_participants or '?'} others"
            if self.has_transfer
            else "transfer: no training split given (verdicts use the unbiased floors)"
        )
        return [*lines, who, *self.notes()]


class FloorAccumulator:
    """Collect targets batch by batch, then `result()` -> Floors (`result(train=...)` adds
    the transfer floors of another accumulator's group means)."""

    def __init__(self) -> None:
        self.groups = {k: GroupMoments() for k in KINDS}
        self.pairs: dict[str, set[tuple[int, int]]] = {k: set() for k in KINDS}  # (group, person)
        self.participants: set[int] = set()
        self._sum = 0.0
        self._n = 0

    def update(
        self,
        values: torch.Tensor,
        index: torch.Tensor,
        length: torch.Tensor,
        channel: torch.Tensor,
        participant: torch.Tensor | None = None,
    ) -> None:
        """values (n, D) targets of n tokens; index, length, channel, participant (n,) keys
        (participant: integer ids, needed for transfer floors and people per group)."""
        codes = group_codes(index, length, channel)
        for kind, moments in self.groups.items():
            moments.update(codes[kind], values)
        if participant is not None:
            person = torch.as_tensor(participant).long().cpu()
            for kind, code in codes.items():
                self.pairs[kind].update(
                    map(tuple, torch.unique(torch.stack([code, person]), dim=1).T.tolist())
                )
            self.participants.update(person.unique().tolist())
        self._sum += float(values.detach().double().sum())
        self._n += int(values.numel())

    def _people_per_group(self, kind: str) -> float:
        counts: dict[int, int] = {}
        for code, _ in self.pairs[kind]:
            counts[code] = counts.get(code, 0) + 1
        return float(np.median(list(counts.values()))) if counts else math.nan

    def _transfer(self, kind: str, train: FloorAccumulator) -> tuple[float, float]:
        """(MSE of these tokens under `train`'s group means, share of tokens scored by a
        coarser group because `train` never had theirs)."""
        val, n = self.groups[kind], float(self.groups[kind].count.sum())
        codes = val.codes().tolist()
        means = torch.empty_like(val.mean)
        unseen = torch.zeros(len(codes), dtype=torch.bool)
        for i, (code, row) in enumerate(zip(codes, train.groups[kind].rows_of(codes), strict=True)):
            if row is None:
                unseen[i] = True
                for coarser in FALLBACK[kind]:
                    row = train.groups[coarser].rows_of([coarser_code(code, kind, coarser)])[0]
                    if row is not None:
                        means[i] = train.groups[coarser].mean[row]
                        break
            else:
                means[i] = train.groups[kind].mean[row]
        sq = (val.mean - means).square().sum(1)  # (g,) squared distance of the two group means
        mse = float((val.m2 + val.count * sq).sum()) / (n * val.dim)
        return mse, float(val.count[unseen].sum()) / n

    def result(self, train: FloorAccumulator | None = None) -> Floors:
        g = self.groups["nothing"]
        if g.n_groups == 0:
            raise ValueError("FloorAccumulator: no tokens were given")
        if train is not None and train.groups["nothing"].n_groups == 0:
            raise ValueError("FloorAccumulator.result: the training accumulator has no tokens")
        floors = {}
        for kind, m in self.groups.items():
            extra = {}
            if train is not None:
                mse, unseen = self._transfer(kind, train)
                extra = {
                    "mse_transfer": mse,
                    "unseen": unseen,
                    "participants_per_group": train._people_per_group(kind),
                }
            floors[kind] = Floor(kind, m.within_mse(), m.unbiased_mse(), m.n_groups,
                                 int(m.count.min()), float(m.count.median()), **extra)  # fmt: skip
        var = floors["nothing"].mse
        return Floors(
            **floors,
            n_tokens=int(g.count.sum()),
            dim=g.dim,
            target_mean=self._sum / self._n,
            target_var=var,
            target_power=var + float(g.mean.square().mean()),
            n_participants=len(self.participants),
            n_train_participants=len(train.participants) if train is not None else 0,
        )


def compute_floors(
    values: torch.Tensor | np.ndarray,
    index,
    length,
    channel,
    participant=None,
    train: FloorAccumulator | None = None,
) -> Floors:
    """Floors of n tokens at once: values (n, D); index, length, channel, participant (n,)
    integers; `train`: an accumulator of other participants' tokens for transfer floors."""
    acc = FloorAccumulator()
    values = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
    acc.update(values, torch.as_tensor(index), torch.as_tensor(length), torch.as_tensor(channel),
               None if participant is None else torch.as_tensor(participant))  # fmt: skip
    return acc.result(train)
