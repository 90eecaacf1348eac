"""Shared fixtures: tiny datasets in the eegwb layout, written by hand with layout.py.

- `tiny_dataset` (session): a 3-participant x 2-run, 4-channel dataset with varying
  sequence lengths and labels. Shared by many tests: open it, never modify it.
- `write_cohort(root, **kwargs)`: write your own (see `write_tiny_cohort` for options).
- `recording_table(participant, run, signals, **kwargs)`: one file's table, for tests
  that plant precise defects before `write_recording`.
- `eegmat_dir`: the real PhysioNet EEGMAT EDFs beside the repo (skips when absent).
- `eegmat_small` (session): 8 of its subjects ingested as the README does (8-s windows,
  --crop-end 3, subject-info.csv, run 1 = rest 0, run 2 = arithmetic 1), at 128 Hz and on 4
  channels to stay fast: rest recordings give 20-23 windows, arithmetic ones 7. Read-only.
- `start_together(commands, workdir)`: `eegwb` commands in real processes, released at
  the same moment (concurrency tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from eegwb.data.layout import RecordingMeta, build_table, write_recording

# Unit-sphere positions from MNE's standard 10-20 montage (rounded).
POSITIONS: dict[str, list[float]] = {
    "FZ": [0.004, 0.661, 0.751],
    "CZ": [0.004, -0.091, 0.996],
    "PZ": [0.003, -0.701, 0.714],
    "OZ": [0.001, -0.992, 0.127],
    "C3": [-0.707, -0.126, 0.696],
    "C4": [0.721, -0.117, 0.683],
    "F3": [-0.595, 0.629, 0.5],
    "F4": [0.607, 0.636, 0.478],
    "TP9": [-0.796, -0.432, -0.425],
    "AF7": [-0.62, 0.775, -0.12],
    "AF8": [0.62, 0.775, -0.12],
    "TP10": [0.795, -0.434, -0.423],
}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: on a 2-core box (or under pytest-xdist) two OpenMP
    threads per process wait on each other and small ops get ~30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


EEGMAT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eegmat"


def recording_table(
    participant: str,
    run: str,
    signals: Mapping[str, np.ndarray],
    *,
    sfreq: float = 64.0,
    labels: Mapping[str, object] | None = None,
    positions: Mapping[str, list[float]] | None = None,
) -> pa.Table:
    """One recording's table; `signals[ch]` is (n_windows, window_samples) µV."""
    first = next(iter(signals.values()))
    n, t = np.asarray(first).shape
    meta = RecordingMeta(
        sfreq=sfreq,
        window_samples=t,
        hop_samples=t,
        channel_positions={ch: list((positions or POSITIONS)[ch]) for ch in signals},
        montage="standard_1020",
        source_file=f"tiny/sub-{participant}_run-{run}",
        source_hash=f"{participant}-{run}",
        labels=dict(labels or {}),
    )
    return build_table(participant, run, signals, np.arange(n) * t, meta)


def write_tiny_cohort(
    root: str | Path,
    *,
    participants: Sequence[str] = ("01", "02", "03"),
    runs: Sequence[str] = ("1", "2"),
    channels: Sequence[str] = ("FZ", "CZ", "PZ", "OZ"),
    n_windows: int | Callable[[int, int], int] | None = None,
    window_samples: int = 32,
    sfreq: float = 64.0,
    labels: Callable[[int, int], Mapping[str, object]] | None = None,
    seed: int = 0,
) -> Path:
    """Random Gaussian EEG (offset and scale differ per channel, so normalisation matters).

    n_windows: per file, or f(participant_i, run_i); default 4 + (2p + r) % 5 (varied lengths).
    labels: f(participant_i, run_i) -> dict; default remission = p % 2, age = 30 + p.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for pi, participant in enumerate(participants):
        for ri, run in enumerate(runs):
            if n_windows is None:
                n = 4 + (2 * pi + ri) % 5
            else:
                n = n_windows(pi, ri) if callable(n_windows) else int(n_windows)
            signals = {
                ch: (rng.standard_normal((n, window_samples)) * (5.0 + 3 * ci) + 10.0 * ci).astype(
                    np.float32
                )
                for ci, ch in enumerate(channels)
            }
            lab = labels(pi, ri) if labels is not None else {"remission": pi % 2, "age": 30 + pi}
            write_recording(
                root, recording_table(participant, run, signals, sfreq=sfreq, labels=lab)
            )
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only shared dataset: 3 participants x 2 runs x 4 channels x 4..8 windows of 32."""
    return write_tiny_cohort(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(name="write_cohort")
def _write_cohort() -> Callable[..., Path]:
    return write_tiny_cohort


@pytest.fixture(name="recording_table")
def _recording_table() -> Callable[..., pa.Table]:
    return recording_table


@pytest.fixture
def eegmat_dir() -> Path:
    if not EEGMAT.is_dir():
        pytest.skip(
            f"real EEG not found at {EEGMAT.resolve()} (../shared/data/eegmat beside the repo)"
        )
    return EEGMAT


@pytest.fixture(scope="session")
def eegmat_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not EEGMAT.is_dir():
        pytest.skip(f"real EEG not found at {EEGMAT.resolve()} (../shared/data/eegmat)")
    from eegwb.data.ingest import ingest

    root = tmp_path_factory.mktemp("eegmat_small") / "eegmat"
    ingest(
        sorted(EEGMAT.glob("Subject0[0-7]_*.edf")),
        root,
        window_samples=1024,
        sfreq=128.0,
        channels=("FZ", "CZ", "PZ", "O1"),
        crop_end_seconds=3,
        run_labels={"1": 0, "2": 1},
        run_label_name="task",
        labels=(str(EEGMAT / "subject-info.csv"),),
        progress=False,
    )
    return root


# ---- real processes started together ------------------------------------------------------
# Each process imports eegwb (and `preload`: what the command imports lazily), says it is
# ready, then waits for one shared "go" file, so the commands really overlap (imports take
# seconds; the go file releases them within milliseconds of each other).
_TOGETHER = """
import importlib, pathlib, sys, time
go, ready, preload, *argv = sys.argv[1:]
import eegwb.cli
for name in filter(None, preload.split(",")):
    importlib.import_module(name)
pathlib.Path(ready).touch()
while not pathlib.Path(go).exists():
    time.sleep(0.002)
sys.exit(eegwb.cli.main(argv))
"""


@dataclass
class Finished:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    pid: int


def start_together(
    commands: Sequence[Sequence[str]],
    workdir: Path,
    *,
    preload: Sequence[str] = (),
    timeout_s: float = 240.0,
) -> list[Finished]:
    """Run each `eegwb` argv (without the program name) in its own `python` process, all
    released at once; the environment (PYTHONPATH included) is inherited."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true", "PYTHONUNBUFFERED": "1"}
    go = workdir / "go"
    procs = []
    for i, argv in enumerate(commands):
        ready = workdir / f"ready{i}"
        cmd = [sys.executable, "-c", _TOGETHER, str(go), str(ready), ",".join(preload), *argv]
        procs.append(
            (
                ready,
                subprocess.Popen(
                    cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                ),
            )
        )
    deadline = time.monotonic() + timeout_s
    while not all(r.exists() for r, _ in procs):
        if time.monotonic() > deadline or any(p.poll() is not None for _, p in procs):
            for _, p in procs:
                p.kill()
            raise AssertionError(
                f"processes did not get ready: {[p.communicate() for _, p in procs]}"
            )
        time.sleep(0.01)
    go.touch()
    out = []
    for (_, p), argv in zip(procs, commands, strict=True):
        stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        out.append(Finished(list(argv), p.returncode, stdout, stderr, p.pid))
    return out


@pytest.fixture(name="start_together")
def _start_together() -> Callable[..., list[Finished]]:
    return start_together
