"""One live writer per output: an OS lock (`fcntl.flock`) held for a whole run.

Two runs that would write the same output (a pretraining run's checkpoint name, an
ingest's `--out` folder) meet here: the first takes an exclusive, non-blocking lock on a
lock file and keeps it until it ends; the second fails at once with a `LockedError`
naming the output and the first run (pid, host, start time and command, which the holder
writes into the lock file). An existence check made while holding the lock cannot be
raced, so "refuse to overwrite" stays true when two runs start together.

The kernel drops the lock when its holder dies (kill -9 included), so a killed run never
leaves a stale lock, only a stale file that the next run takes over. The holder removes
the file when it ends (and the folder, if it made the folder and left it empty); a run
that opened the file just before that re-checks, after locking, that the path still names
the file it locked (else it tries again), so two runs can never hold locks on two
different files of one name. POSIX only (Linux, macOS).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from eegwb.errors import InputError

__all__ = ["LockedError", "hold"]

_ATTEMPTS = 5  # re-tries when the file was replaced between open() and flock()


class LockedError(InputError):
    """Another live run holds the output's lock; the message names it."""


def _holder_text() -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:500],
        }
    )


def describe_holder(lock_file: Path, wait_s: float = 1.0) -> str:
    """'pid 123 on host h, started 2026-..., command `eegwb pretrain ...`' from the lock file
    (waiting up to `wait_s` for a holder that has just locked it to write them)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = json.loads(lock_file.read_text())
            return (
                f"pid {info['pid']} on host {info['host']}, started {info['started']}, "
                f"command `{info['command']}`"
            )
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "a process that has not written its details"
            time.sleep(0.02)


def _acquire(lock_file: Path) -> int | None:
    """The locked descriptor, or None when another process holds the lock."""
    for _ in range(_ATTEMPTS):
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # the folder was removed meanwhile: make it again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_file).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed this file as we opened it: lock the new one
    raise OSError(f"{lock_file}: could not take the lock after {_ATTEMPTS} attempts")


@contextlib.contextmanager
def hold(lock_file: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold `lock_file` exclusively for the block, or raise LockedError at once.

    `what` names the output for the error: "checkpoint name x in checkpoints/tiny".
    """
    lock_file = Path(lock_file)
    made_folder = not lock_file.parent.exists()
    fd = _acquire(lock_file)
    if fd is None:
        raise LockedError(
            f"{what}: in use by another run ({describe_holder(lock_file)}; lock file "
            f"{lock_file}); wait for it to end, or write somewhere else"
        )
    try:
        os.ftruncate(fd, 0)
        os.write(fd, _holder_text().encode())
        yield lock_file
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_file.unlink()  # still held: a waiting opener re-checks the inode and retries
        if made_folder:  # made only to hold the lock, and the run wrote nothing there
            with contextlib.suppress(OSError):
                lock_file.parent.rmdir()
        os.close(fd)  # releases the lock
