"""Electrode positions on the unit sphere, from MNE's standard 10-05 montage or a user's `.elc`.

The model sees each sequence's electrode as a 3-vector, so every montage must land in
one frame: positions are centred on a least-squares sphere fitted to all of the
montage's points, then each is scaled to unit length. The fit uses the whole montage
(not just the requested channels), so FP1 gets the same coordinates in a 19-channel and
a 64-channel recording. Files are read with MNE's readers (`make_standard_montage`,
`read_custom_montage`); nothing here parses a montage file by hand.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eegwb.errors import InputError, MissingInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MONTAGES: dict[str, list[str]] = {
    # The 19 classic 10-20 sites, 10-10 names (T7/T8/P7/P8 for T3/T4/T5/T6).
    "standard_1020": [
        "FP1",
        "FP2",
        "F7",
        "F3",
        "FZ",
        "F4",
        "F8",
        "T7",
        "C3",
        "CZ",
        "C4",
        "T8",
        "P7",
        "P3",
        "PZ",
        "P4",
        "P8",
        "O1",
        "O2",
    ],
    # A 64-channel 10-10 cap (the BioSemi/ActiCap 64 layout, 10-10 labels).
    "standard_1010_64": [
        "FP1",
        "AF7",
        "AF3",
        "F1",
        "F3",
        "F5",
        "F7",
        "FT7",
        "FC5",
        "FC3",
        "FC1",
        "C1",
        "C3",
        "C5",
        "T7",
        "TP7",
        "CP5",
        "CP3",
        "CP1",
        "P1",
        "P3",
        "P5",
        "P7",
        "P9",
        "PO7",
        "PO3",
        "O1",
        "IZ",
        "OZ",
        "POZ",
        "PZ",
        "CPZ",
        "FPZ",
        "FP2",
        "AF8",
        "AF4",
        "AFZ",
        "FZ",
        "F2",
        "F4",
        "F6",
        "F8",
        "FT8",
        "FC6",
        "FC4",
        "FC2",
        "FCZ",
        "CZ",
        "C2",
        "C4",
        "C6",
        "T8",
        "TP8",
        "CP6",
        "CP4",
        "CP2",
        "P2",
        "P4",
        "P6",
        "P8",
        "P10",
        "PO8",
        "PO4",
        "O2",
    ],
    # Interaxon Muse: two temporal-parietal and two frontal dry electrodes.
    "muse": ["TP9", "AF7", "AF8", "TP10"],
}


class MontageError(InputError):
    """Channels without a known position; the message names each and its closest known names."""

    def __init__(self, unknown: Sequence[str], known: Sequence[str], source: str):
        self.unknown = list(unknown)
        self.suggestions = {
            name: difflib.get_close_matches(name, known, n=3, cutoff=0.5) for name in self.unknown
        }
        parts = [
            f"{name!r} (closest known: {', '.join(close) if close else 'none'})"
            for name, close in self.suggestions.items()
        ]
        n = len(self.unknown)
        super().__init__(f"{source}: no electrode position for {n} channel(s): " + "; ".join(parts))


def standard_montage_name() -> str:
    """MNE's template 10-05 montage: 'colin27_1005' (MNE >= 1.13), else 'standard_1005'."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    return "colin27_1005" if "colin27_1005" in builtin else "standard_1005"


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through `points` (n, 3) -> (centre (3,), radius).

    Solves |p|^2 = 2 c.p + (r^2 - |c|^2), linear in (c, r^2 - |c|^2). Needs at least four
    points not on one plane; with fewer (e.g. a 4-electrode headset file) the frame's
    own origin, which MNE puts near the head centre, is used.
    """
    points = np.asarray(points, dtype=np.float64)
    design = np.column_stack([2 * points, np.ones(len(points))])  # (n, 4)
    if len(points) < 5 or np.linalg.matrix_rank(design) < 4:
        return np.zeros(3), float(np.linalg.norm(points, axis=1).mean())
    rhs = (points**2).sum(axis=1)
    solution, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    centre = solution[:3]
    radius = float(np.sqrt(solution[3] + centre @ centre))
    return centre, radius


def _unit_positions(ch_pos: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Upper-case name -> unit vector from the fitted sphere centre."""
    names = list(ch_pos)
    points = np.array([ch_pos[n] for n in names], dtype=np.float64)  # (n, 3)
    keep = np.isfinite(points).all(axis=1)
    centre, _ = fit_sphere(points[keep])
    out: dict[str, list[float]] = {}
    for name, point, ok in zip(names, points, keep):
        vec = point - centre
        norm = np.linalg.norm(vec)
        if ok and norm > 0:
            out[name.upper()] = [float(v) for v in vec / norm]
    return out


@functools.lru_cache(maxsize=1)
def _standard_positions() -> dict[str, list[float]]:
    import mne

    montage = mne.channels.make_standard_montage(standard_montage_name())
    return _unit_positions(montage.get_positions()["ch_pos"])


def _elc_positions(elc_path: Path) -> dict[str, list[float]]:
    import mne

    if not elc_path.is_file():
        raise MissingInputError(f"{elc_path}: electrode file does not exist")
    try:
        # head_size=None keeps the file's own coordinates; the sphere fit normalises them.
        montage = mne.channels.read_custom_montage(elc_path, head_size=None)
    except Exception as err:  # MNE raises RuntimeError/ValueError/IndexError on bad files
        raise MontageError(f"{elc_path}: cannot read electrode positions ({err})") from err
    ch_pos = montage.get_positions()["ch_pos"]
    if not ch_pos:
        raise MontageError(f"{elc_path}: no electrode positions in the file")
    return _unit_positions(ch_pos)


def known_channels(*, elc_path: str | Path | None = None) -> list[str]:
    """Every upper-case channel name that has a position (standard montage or `.elc`)."""
    table = _standard_positions() if elc_path is None else _elc_positions(Path(elc_path))
    return sorted(table)


def electrode_positions(
    channels: Sequence[str], *, elc_path: str | Path | None = None
) -> dict[str, list[float]]:
    """Upper-case channel -> [x, y, z] on the unit sphere (MNE head frame: +x right, +y nose).

    From MNE's standard 10-05 template (covers 10-20, 10-10 and Muse sites) or, when
    `elc_path` is given, from that ASA `.elc` file only. Unknown names raise MontageError.
    """
    if elc_path is None:
        table, source = _standard_positions(), f"MNE montage {standard_montage_name()!r}"
    else:
        table, source = _elc_positions(Path(elc_path)), str(elc_path)
    wanted = [str(c).strip().upper() for c in channels]
    unknown = [c for c in wanted if c not in table]
    if unknown:
        raise MontageError(unknown, sorted(table), source)
    return {c: list(table[c]) for c in wanted}


def plot_layout(positions: dict[str, list[float]], title: str = "") -> Figure:
    """Top view of the electrodes, drawn by MNE's `DigMontage.plot` (for notebook 01)."""
    import mne

    head_radius_m = 0.095  # MNE's default head sphere; unit positions are scaled onto it
    ch_pos = {name: np.asarray(xyz, np.float64) * head_radius_m for name, xyz in positions.items()}
    montage = mne.channels.make_dig_montage(ch_pos=ch_pos, coord_frame="head")
    fig = montage.plot(show=False, show_names=True, sphere=(0.0, 0.0, 0.0, head_radius_m))
    if title:
        fig.suptitle(title)
    return fig
