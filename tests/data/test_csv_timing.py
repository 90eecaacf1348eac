"""The CSV time axis on its own (csv_timing.py): what counts as jitter, a dropout, a nominal
rate, and what is refused, with stamps built the ways real devices make them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eegwb.data.csv_timing import MAX_GAP_TOLERANCE_S, MUSE_RATES_HZ, time_axis
from eegwb.data.layout import DatasetError

N = 256 * 60
GRID = 1.7e9 + np.arange(N) / 256.0


def _axis(stamps, **kwargs):
    return time_axis(Path("x.csv"), stamps, np.arange(len(stamps)) + 2, **kwargs)


def test_clean_clock_finds_one_missing_sample():
    """On a clean clock (stamps rounded to the ms) one lost sample is a dropout."""
    stamps = GRID.copy()
    stamps[N // 3 :] += 1 / 256
    axis = _axis(np.round(stamps, 3))
    assert axis.sfreq == 256.0 and axis.tolerance_s < 1 / 256
    np.testing.assert_array_equal(axis.gap_starts, [N // 3])
    assert not axis.warnings


def test_bursts_of_up_to_48_samples_are_not_dropouts():
    """Mind Monitor stamps 12-sample packets on arrival, sometimes 4 packets at once."""
    rng = np.random.default_rng(0)
    packet = np.arange(N) // 12
    n_packets = packet.max() + 1
    arrival = (np.arange(n_packets) + 1) * 12 / 256 + rng.normal(0.03, 0.01, n_packets)
    for first in rng.choice(len(arrival) - 4, 20, replace=False):
        arrival[first : first + 4] = arrival[first + 3]  # held back, then sent together
    stamps = np.round(1.7e9 + np.maximum.accumulate(arrival)[packet], 3)
    axis = _axis(stamps, rates=MUSE_RATES_HZ, device="Muse")
    assert axis.sfreq == 256.0 and len(axis.gap_starts) == 0
    assert axis.tolerance_s <= MAX_GAP_TOLERANCE_S
    (warning,) = axis.warnings
    assert "repeated" in warning and "cannot be told from jitter" in warning
    stamps[N // 2 :] += 1.0
    np.testing.assert_array_equal(_axis(stamps).gap_starts, [N // 2])


def test_clock_slewing_is_no_dropout():
    """A host clock slewed by NTP (300 ppm from halfway) bends the stamps, loses nothing."""
    stamps = GRID.copy()
    stamps[N // 2 :] = stamps[N // 2] + (stamps[N // 2 :] - stamps[N // 2]) * 1.0003
    axis = _axis(stamps)
    assert axis.sfreq == 256.0 and len(axis.gap_starts) == 0


def test_rates_standard_or_measured_and_muse_refused_far_from_256():
    assert _axis(GRID[0] + np.arange(N) / 256.4).sfreq == 256.0  # within 1%: nominal
    assert _axis(GRID[0] + np.arange(N) / 173.61).sfreq == 173.61  # Bonn: no standard rate near
    with pytest.raises(DatasetError, match="x.csv: timestamps give 240 samples/s"):
        _axis(GRID[0] + np.arange(N) / 240.0, rates=MUSE_RATES_HZ, device="Muse")


def test_backwards_within_tolerance_is_jitter_beyond_is_refused():
    stamps = GRID.copy()
    stamps[100] -= 0.05  # one stamp 50 ms early: jitter
    assert _axis(stamps).sfreq == 256.0
    stamps[N // 2 :] -= 0.2
    with pytest.raises(DatasetError, match=f"backwards by 0.19.* s at line {N // 2 + 2}"):
        _axis(stamps)
