"""Atomic writes: all or nothing under the final name, no silent overwrite, normal modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from eegwb.atomic import OutputExistsError, atomic_path, atomic_write_text


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    final = tmp_path / "x.txt"
    atomic_write_text(final, "old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert final.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    final = tmp_path / "x.txt"
    atomic_write_text(final, "a")
    with pytest.raises(OutputExistsError, match="x.txt"):
        atomic_write_text(final, "b", overwrite=False)
    atomic_write_text(final, "b")
    assert final.read_text() == "b"


def test_mode_follows_umask_not_mkstemp(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.txt", "a")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
