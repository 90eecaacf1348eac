"""eegwb.locks: a lock another live process holds is refused at once, naming that process;
a holder killed with SIGKILL leaves nothing that blocks the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from eegwb.locks import LockedError, hold

HOLDER = """
import sys, time
from eegwb.locks import hold
with hold(sys.argv[1], "test output"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_second_holder_refused_then_free_after_kill_9(tmp_path) -> None:
    lock = tmp_path / "out" / ".x.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert child.stdout.readline().strip() == "held"
        busy = rf"test output: in use by another run \(pid {child.pid} on host"
        with pytest.raises(LockedError, match=busy), hold(lock, "test output"):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert lock.exists()  # the killed holder's file stays, but its lock went with it
    with hold(lock, "test output"):
        assert f'"pid": {os.getpid()}' in lock.read_text()
    assert not lock.exists() and (tmp_path / "out").is_dir()  # the folder was there before


def test_a_folder_made_for_the_lock_alone_is_removed(tmp_path) -> None:
    with hold(tmp_path / "new" / ".x.lock", "test output"):
        assert (tmp_path / "new").is_dir()
    assert not (tmp_path / "new").exists()
