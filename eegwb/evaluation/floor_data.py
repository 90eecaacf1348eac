"""Information floors of a dataset's tokens: the keys of each token, and the training
participants' group means the transfer floors need.

`TokenKeys` gives every token its position, its electrode id and its participant id, with
one electrode coder and one participant table shared by the training and the scored
split (so a group means the same thing on both sides). `fit_floors` accumulates the
targets of every real token of a split (masking is random and content-blind, so all
tokens estimate the group means better than the masked ones); `dataset_floors` is the
floor ladder of a fixed target without any model (`eegwb floors`). The control
experiments and the autopsy score their own tokens against the same fitted means, so the
two tools give one answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from eegwb.data.batch import Batch
from eegwb.data.dataset import collate
from eegwb.errors import InputError
from eegwb.evaluation.floors import ChannelCoder, FloorAccumulator, Floors
from eegwb.model.targets import fixed_target


class TokenKeys:
    """Floor keys of tokens: (index, true length, electrode id, participant id)."""

    def __init__(self) -> None:
        self.channels = ChannelCoder()
        self.ids: dict[str, int] = {}

    def people(self, index: Any) -> torch.Tensor:
        """(max seq_index + 1,) participant id of each sequence of a dataset index (Polars:
        seq_index, participant); -1 where no sequence has that seq_index."""
        out = torch.full((int(index["seq_index"].max()) + 1,), -1, dtype=torch.long)
        codes = [self.ids.setdefault(str(p), len(self.ids)) for p in index["participant"].to_list()]
        out[torch.tensor(index["seq_index"].to_numpy())] = torch.tensor(codes, dtype=torch.long)
        return out

    def of(
        self,
        coords: torch.Tensor,
        lengths: torch.Tensor,
        where: torch.Tensor,
        people: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Keys of the tokens at `where` (b, l) of sequences with coords (b, 3), true lengths
        (b,) and participant ids people (b,) -> index, length, channel[, participant] (m,)."""
        b, l = where.shape
        where = where.cpu()
        keys = [torch.arange(l).expand(b, l)[where],
                lengths.cpu()[:, None].expand(b, l)[where],
                self.channels(coords)[:, None].expand(b, l)[where]]  # fmt: skip
        if people is not None:
            keys.append(people.cpu()[:, None].expand(b, l)[where])
        return tuple(keys)


@torch.no_grad()
def fit_floors(
    batches: Iterable[Batch],
    targets: Callable[[Batch], torch.Tensor],
    keys: TokenKeys,
    people: torch.Tensor,
) -> FloorAccumulator:
    """Group moments of the targets (b, l, o) of every real token of `batches`; people:
    participant id by seq_index (`TokenKeys.people`)."""
    acc = FloorAccumulator()
    for batch in batches:
        real = batch.valid
        values = targets(batch)[real].double().cpu()  # (m, o)
        acc.update(
            values, *keys.of(batch.coords, batch.lengths, real, people[batch.seq_index.cpu()])
        )
    if not acc.groups["nothing"].n_groups:
        raise InputError("fit_floors: no tokens in the training split")
    return acc


def loader(dataset: Any, batch_size: int) -> Iterable[Batch]:
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


def dataset_floors(
    val: Any, train: Any | None = None, target: str = "signal", batch_size: int = 64
) -> Floors:
    """The floor ladder of a fixed target over every real token of `val` (EEGDataset), with
    transfer floors from `train`'s participants when given. Learnt targets need a model."""
    try:

        def fn(batch: Batch) -> torch.Tensor:
            return fixed_target(target, batch.x)

        keys = TokenKeys()
        fitted = (
            fit_floors(loader(train, batch_size), fn, keys, keys.people(train.index))
            if train
            else None
        )
        scored = fit_floors(loader(val, batch_size), fn, keys, keys.people(val.index))
    except ValueError as err:
        raise InputError(str(err)) from err
    return scored.result(fitted)
