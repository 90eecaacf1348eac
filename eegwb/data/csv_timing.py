"""The time axis of a CSV export: its nominal rate, its dropouts, and what cannot be trusted.

Headsets stamp samples on the host as they arrive over Bluetooth, so real exports repeat and
jitter their timestamps: early muse-lsl stamped each 12-sample packet on arrival and
extrapolated back (117 repeated stamps in one 2017 export), Mind Monitor gives a burst of
12-48 samples one arrival time. The samples themselves come at the device's fixed rate, so
the samples are placed on a grid at the nominal rate, and the timestamps only find dropouts
and refuse what cannot be trusted. In this order:

1. Time running backwards by more than `BACKWARD_TOLERANCE_S` in one step is refused, and
   so are stamps standing still for more than `PERSIST_S` of samples (one stamp per chunk
   cannot place a dropout).
2. Measured rate: samples per second over the stretches between dropouts (least squares of
   timestamp on sample number, so bursts and jitter average out). It snaps to the nearest
   standard rate within `RATE_TOLERANCE`; a Muse export (TP9, AF7, AF8, TP10) must snap to
   256 Hz (220 Hz: the 2014 model) and is refused otherwise: samples lost without a gap in
   the stamps, or a summary stream (Mind Monitor at a 1 s recording interval). Other CSVs
   far from every standard rate keep the measured rate.
3. Jitter: the 99th percentile of |step - 1/rate|. The dropout tolerance is
   `JITTER_FACTOR` times that, at least `MIN_GAP_PERIODS` sample periods; a tolerance above
   `MAX_GAP_TOLERANCE_S` is refused (stamps that scatter that much cannot find dropouts).
4. Dropouts: where the earliest-stamped sample of the next `PERSIST_S` comes more than the
   tolerance later than the earliest of the previous `PERSIST_S`, samples are missing (a
   late burst catches up within `PERSIST_S`; lost samples never do). Ingest splits the
   recording there. A dropout shorter than the tolerance cannot be told from jitter and is
   not split: the samples on both sides join on the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eegwb.data.layout import DatasetError

# Rates EEG devices sample at (Hz). Host-clock measurements of a device differ from its
# nominal rate by ~1e-4, so a measured rate within RATE_TOLERANCE is the nominal one.
STANDARD_RATES_HZ = (100.0, 128.0, 160.0, 200.0, 220.0, 250.0, 256.0, 500.0, 512.0, 1000.0,
                     1024.0, 2000.0, 2048.0, 4096.0, 5000.0, 8192.0, 10000.0, 16384.0)  # fmt: skip
MUSE_RATES_HZ = (256.0, 220.0)  # Muse 2016, Muse 2, Muse S: 256 Hz; Muse 2014 (MU-01): 220 Hz
RATE_TOLERANCE = 0.01  # 1%: beyond it samples were lost unseen, or it is not the raw stream
# A step back of up to 0.1 s is jitter: stamps extrapolated back from each packet's arrival
# overlap the previous packet's by up to its length (12 samples = 47 ms at 256 Hz).
BACKWARD_TOLERANCE_S = 0.1
JITTER_FACTOR = 3.0  # dropout tolerance = 3 x the 99th-percentile step jitter
MIN_GAP_PERIODS = 0.5  # on a clean clock one missing sample (1 period late) is a dropout
# Stamps scattering so much that the tolerance would pass 0.5 s cannot place a dropout
# (arrival times of chunks of hundreds of samples, say).
MAX_GAP_TOLERANCE_S = 0.5
PERSIST_S = 0.5  # a late burst catches up within this (Mind Monitor's longest: 48 samples, 0.19 s)
_COARSE_STEP_S = 1.0  # steps under this enter the first rate estimate (longer ones are dropouts)


@dataclass
class TimeAxis:
    """Where a CSV's samples go: `sfreq` (nominal Hz), stretches after dropouts, what was seen."""

    sfreq: float
    gap_starts: np.ndarray  # sample indices where a stretch after a dropout starts
    measured_hz: float  # samples per second by the timestamps
    tolerance_s: float  # dropouts shorter than this are not split
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _windows_min(values: np.ndarray, size: int, *, ahead: bool) -> np.ndarray:
    """Minimum of values[i : i+size] (ahead) or values[i-size : i] (behind); inf where empty."""
    pad = np.full(size, np.inf)
    padded = np.concatenate([values, pad[:-1]] if ahead else [pad, values[:-1]])
    return np.lib.stride_tricks.sliding_window_view(padded, size).min(axis=1)


def _dropouts(stamps: np.ndarray, rate_hz: float, tolerance_s: float) -> tuple[np.ndarray, float]:
    """(indices where a stretch after a dropout starts, seconds lost) at `rate_hz`."""
    lag = stamps - np.arange(len(stamps)) / rate_hz  # (n,) when each sample says it started
    size = max(2, round(PERSIST_S * rate_hz))
    ahead = _windows_min(lag, size, ahead=True)
    late = ahead - _windows_min(lag, size, ahead=False)  # -inf at 0: nothing behind it
    over = late > tolerance_s
    jump = np.diff(ahead, prepend=np.inf) > tolerance_s  # a second dropout inside the first's reach
    starts = np.flatnonzero((over & ~np.roll(over, 1)) | (over & jump))
    return starts, float(late[starts].sum())


def _measured_hz(path: Path, stamps: np.ndarray, starts: np.ndarray) -> float:
    """Samples per second: pooled least-squares slope of sample number on timestamp."""
    num = den = 0.0
    for stretch in np.split(stamps, starts):
        if len(stretch) < 2:
            continue
        idx = np.arange(len(stretch), dtype=np.float64)
        idx -= idx.mean()
        num += float(idx @ (stretch - stretch.mean()))
        den += float(idx @ idx)
    if not num > 0:
        raise DatasetError(f"{path}: timestamps do not advance between dropouts")
    return den / num


def _refuse_stalls(path: Path, steps: np.ndarray, rate_hz: float, lines: np.ndarray) -> None:
    """Stamps standing still for longer than PERSIST_S of samples were given per chunk, not
    per sample or packet: a burst that long cannot be told from a dropout."""
    still = np.concatenate([[False], steps < 0.25 / rate_hz, [False]])
    edges = np.flatnonzero(np.diff(still.astype(np.int8)))  # run starts, run ends
    runs = edges[1::2] - edges[::2]
    if len(runs) and runs.max() > PERSIST_S * rate_hz:
        first = int(edges[::2][np.argmax(runs)])
        raise DatasetError(
            f"{path}: timestamps stand still for {runs.max() + 1} samples from line "
            f"{lines[first]} ({(runs.max() + 1) / rate_hz:.3g} s at {rate_hz:.4g} Hz): stamped "
            f"per chunk, so dropouts cannot be found; export one timestamp per sample"
        )


def _nominal(path: Path, measured: float, rates: Sequence[float], device: str) -> float:
    nearest = min(rates, key=lambda r: abs(measured - r))
    if abs(measured - nearest) <= RATE_TOLERANCE * nearest:
        return nearest
    if device:
        shown = " or ".join(f"{r:g}" for r in rates)
        raise DatasetError(
            f"{path}: timestamps give {measured:.4g} samples/s, more than "
            f"{RATE_TOLERANCE:.0%} from a {device}'s {shown} Hz: samples lost without a gap in "
            "the timestamps, or not the raw EEG stream (Mind Monitor: record 'every packet')"
        )
    # No standard rate near: the measured one, to the nearest Hz if that is within 0.05%.
    whole = abs(measured - round(measured)) < 5e-4 * measured
    return float(round(measured)) if whole else float(f"{measured:.6g}")


def time_axis(
    path: Path,
    stamps_s: np.ndarray,
    lines: np.ndarray,
    *,
    rates: Sequence[float] = STANDARD_RATES_HZ,
    device: str = "",
) -> TimeAxis:
    """The nominal rate and dropouts of samples stamped `stamps_s` (seconds, (n,)); `lines`
    (n,) are their lines in the file, for errors. `device` (e.g. "Muse") makes a rate
    outside `rates` an error. See the module docstring for the rules and tolerances."""
    stamps = np.asarray(stamps_s, dtype=np.float64)
    stamps = stamps - stamps[0]  # precision: epoch seconds are ~1.7e9
    steps = np.diff(stamps)
    back = int(np.argmin(steps))
    if steps[back] < -BACKWARD_TOLERANCE_S:
        raise DatasetError(
            f"{path}: time runs backwards by {-steps[back]:.4g} s at line {lines[back + 1]} "
            f"(more than the {BACKWARD_TOLERANCE_S:g} s of jitter tolerated): two recordings "
            "joined, or the clock was reset; split the file there"
        )
    short = steps[steps < max(_COARSE_STEP_S, 2 * float(np.quantile(steps, 0.999)))]
    if not short.sum() > 0:
        raise DatasetError(f"{path}: timestamps do not advance")
    rate = len(short) / float(short.sum())
    _refuse_stalls(path, steps, rate, lines)
    rate = _measured_hz(path, stamps, _dropouts(stamps, rate, MAX_GAP_TOLERANCE_S)[0])
    for _ in range(2):  # the rate from stretches split at the finer tolerance is the better one
        excess = np.abs(steps - 1.0 / rate)
        jitter = float(np.quantile(excess, 0.99))
        tolerance = max(MIN_GAP_PERIODS / rate, JITTER_FACTOR * jitter)
        if tolerance > MAX_GAP_TOLERANCE_S:
            worst = int(np.argmax(excess))
            raise DatasetError(
                f"{path}: timestamps scatter too much to find dropouts: 1% of steps are more "
                f"than {jitter:.3g} s from 1/{rate:.4g} Hz (worst at line {lines[worst + 1]}; "
                f"at most {MAX_GAP_TOLERANCE_S / JITTER_FACTOR:.3g} s is trusted)"
            )
        starts, lost_s = _dropouts(stamps, rate, tolerance)
        rate = _measured_hz(path, stamps, starts)
    sfreq = _nominal(path, rate, rates, device)
    axis = TimeAxis(sfreq, starts, rate, tolerance)
    axis.notes.append(f"{rate:.6g} samples/s by the timestamps -> {sfreq:g} Hz")
    if len(starts):
        plural = "s" * (len(starts) > 1)
        axis.notes.append(
            f"{len(starts)} dropout{plural} ({lost_s:.3g} s of samples missing, each more "
            f"than {tolerance:.3g} s) split the recording"
        )
    repeated, backward = int((steps == 0).sum()), int((steps < 0).sum())
    if repeated or backward or jitter > 1.0 / sfreq:
        back_text = f", {backward} stepping back (at most {-steps[back]:.3g} s)" if backward else ""
        axis.warnings.append(
            f"timestamps jitter ({repeated} repeated{back_text}; 99% of steps within "
            f"{jitter * 1e3:.3g} ms of 1/{sfreq:g} s): time axis rebuilt at {sfreq:g} Hz; "
            f"dropouts shorter than {tolerance:.3g} s cannot be told from jitter"
        )
    return axis
