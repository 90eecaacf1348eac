"""Where windows go in a recording: good segments between BAD/EDGE annotations, and window starts.

Annotations whose description starts with "BAD" or "EDGE" (MNE's `BAD_ACQ_SKIP` for EDF+D
gaps, `BAD_gap` for CSV dropouts, user BAD spans) cut the recording into contiguous good
segments; a zero-length one is a boundary no window may straddle. Windows of
`window_samples` start every `hop` samples inside each segment; `parent_window_id` is the
segment's index, `sub_window_id` the window's index within it, and starts are sample indices
of the (resampled) recording. Samples no window covers are left to the caller to count.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def good_segments(raw) -> tuple[list[tuple[int, int]], int]:
    """Good [start, stop) sample spans between BAD/EDGE annotations, and the BAD sample count."""
    n = raw.n_times
    bad = np.zeros(n, dtype=bool)
    cuts = set()
    ann = raw.annotations
    # With no measurement date MNE stores onsets shifted by first_time; undo that.
    shift = raw.first_time if ann.orig_time is None else 0.0
    for onset, duration, desc in zip(ann.onset, ann.duration, ann.description):
        if not desc.upper().startswith(("BAD", "EDGE")):
            continue
        start, stop = raw.time_as_index(
            [onset - shift, onset - shift + duration], use_rounding=True, origin=ann.orig_time
        )
        start, stop = int(np.clip(start, 0, n)), int(np.clip(stop, 0, n))
        if stop > start:
            bad[start:stop] = True
        else:
            cuts.add(start)  # a zero-length boundary: no window may straddle it
    edges = np.flatnonzero(np.diff(np.concatenate([[True], bad, [True]]).astype(np.int8)))
    spans = list(zip(edges[::2], edges[1::2]))  # runs of good samples
    out = []
    for start, stop in spans:
        inner = sorted(c for c in cuts if start < c < stop)
        bounds = [int(start), *inner, int(stop)]
        out.extend(itertools.pairwise(bounds))
    return out, int(bad.sum())


def window_starts(spans: Sequence[tuple[int, int]], w: int, hop: int) -> tuple[np.ndarray, ...]:
    """(window_start, parent_window_id, sub_window_id), each (n_windows,), over good spans."""
    parts = [np.arange(a, b - w + 1, hop, dtype=np.int64) for a, b in spans]
    parents = [np.full(len(p), seg, np.int32) for seg, p in enumerate(parts)]
    subs = [np.arange(len(p), dtype=np.int32) for p in parts]
    empty = [np.zeros(0, np.int64)]
    return tuple(np.concatenate(x or empty) for x in (parts, parents, subs))
