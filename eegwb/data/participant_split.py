"""Assign whole participants to splits or folds, stratified by a label.

A participant never lands in two splits: EEG from one person is far more alike than EEG
from two, so a participant on both sides of a split inflates every score. Re-exported by
`eegwb.data.splits`, where callers import it from.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from eegwb.data.layout import DatasetError
from eegwb.errors import InputError


def _strata(
    participants: list[str], labels: Mapping[str, object] | None, max_classes: int = 10
) -> list[object]:
    """One stratum per participant: the label, or its quartile bin for continuous labels."""
    if labels is None:
        return [0] * len(participants)
    missing = [p for p in participants if p not in labels]
    if missing:
        raise DatasetError(f"labels: no label for participants {missing[:5]}")
    values = [labels[p] for p in participants]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and len(set(values)) > max_classes:
        v = np.asarray(values, dtype=float)
        edges = np.quantile(v, [0.25, 0.5, 0.75])
        return [int(b) for b in np.searchsorted(edges, v, side="right")]
    return [json.dumps(v, sort_keys=True, default=str) for v in values]


def _stratified_order(
    participants: list[str], strata: list[object], seed: int
) -> list[tuple[str, object]]:
    """Participants shuffled within strata, strata interleaved so each prefix is balanced."""
    rng = np.random.default_rng(seed)
    groups: dict[object, list[str]] = {}
    for p, s in zip(participants, strata, strict=True):
        groups.setdefault(s, []).append(p)
    keyed = []
    for s in sorted(groups, key=str):
        members = [groups[s][i] for i in rng.permutation(len(groups[s]))]
        n = len(members)
        # Spread each stratum evenly over [0, 1): position (k + u) / n, u random.
        keyed += [((k + rng.random()) / n, p, s) for k, p in enumerate(members)]
    return [(p, s) for _, p, s in sorted(keyed, key=lambda t: t[0])]


def _unique(participants: Sequence[str]) -> list[str]:
    ps = [str(p) for p in participants]
    dupes = sorted({p for p in ps if ps.count(p) > 1})
    if dupes:
        raise DatasetError(f"participants listed twice: {dupes[:5]}")
    return sorted(ps)


def split_by_participant(
    participants: Sequence[str],
    labels: Mapping[str, object] | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Assign whole participants to splits (default names train/val/test, or train/test for
    two fractions), stratified by `labels` when given. Every split with a positive fraction
    gets at least one participant when there are enough participants."""
    ps = _unique(participants)
    fr = [float(f) for f in fractions]
    if names is None:
        names = {2: ("train", "test"), 3: ("train", "val", "test")}.get(len(fr))
        if names is None:
            names = tuple(f"split{i}" for i in range(len(fr)))
    if (
        len(names) != len(fr)
        or any(f < 0 for f in fr)
        or not math.isclose(sum(fr), 1.0, abs_tol=1e-6)
    ):
        raise InputError(
            f"fractions {fractions} must be >= 0, sum to 1 and match names {list(names)}"
        )
    n = len(ps)
    positive = [i for i, f in enumerate(fr) if f > 0]
    if n < len(positive):
        raise DatasetError(f"{n} participants cannot fill {len(positive)} non-empty splits")
    # Target sizes: largest remainder, then lift empty splits to one (taken from the largest).
    target = [math.floor(f * n) for f in fr]
    for i in sorted(range(len(fr)), key=lambda i: -(fr[i] * n - target[i]))[: n - sum(target)]:
        target[i] += 1
    for i in positive:
        if target[i] == 0:
            target[i] = 1
            target[int(np.argmax(target))] -= 1
    strata = _strata(ps, labels)
    order = _stratified_order(ps, strata, seed)
    per_stratum = Counter(map(str, strata))
    taken = [0] * len(fr)
    taken_s: dict[tuple[str, int], int] = {}
    out: dict[str, list[str]] = {name: [] for name in names}
    for p, s in order:
        s = str(s)
        open_ = [i for i in range(len(fr)) if taken[i] < target[i]]
        # Most behind its share of this stratum first, then most behind its overall size.
        best = max(
            open_,
            key=lambda i: (
                per_stratum[s] * fr[i] - taken_s.get((s, i), 0),
                target[i] - taken[i],
                -i,
            ),
        )
        taken[best] += 1
        taken_s[(s, best)] = taken_s.get((s, best), 0) + 1
        out[names[best]].append(p)
    return {k: sorted(v) for k, v in out.items()}


def grouped_kfold(
    participants: Sequence[str],
    labels: Mapping[str, object] | None = None,
    k: int = 5,
    seed: int = 0,
) -> list[dict[str, list[str]]]:
    """k participant-grouped, label-stratified folds: [{"train": [...], "val": [...]}, ...];
    each participant is in exactly one fold's val."""
    ps = _unique(participants)
    if k < 2 or k > len(ps):
        raise DatasetError(f"grouped_kfold: k={k} needs 2 <= k <= {len(ps)} participants")
    rng = np.random.default_rng(seed)
    strata = _strata(ps, labels)
    groups: dict[str, list[str]] = {}
    for p, s in zip(ps, strata, strict=True):
        groups.setdefault(str(s), []).append(p)
    # Deal each shuffled stratum round-robin, continuing where the last one stopped: fold
    # sizes and each stratum's count per fold then differ by at most one.
    fold_of: dict[str, int] = {}
    nxt = 0
    for s in sorted(groups):
        for i in rng.permutation(len(groups[s])):
            fold_of[groups[s][i]] = nxt % k
            nxt += 1
    return [
        {
            "train": sorted(p for p in ps if fold_of[p] != f),
            "val": sorted(p for p in ps if fold_of[p] == f),
        }
        for f in range(k)
    ]
