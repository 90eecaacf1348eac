"""The formatter and the line length are enforced, not suggested: `ruff check` (E501 on,
100 columns: pyproject.toml) and `ruff format --check` over the package, the tests, the
notebooks and the benchmarks. Fix findings with `ruff format` and `ruff check --fix`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("eegwb", "tests", "notebooks", "benchmarks")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ruff_check_finds_nothing() -> None:
    done = _ruff("check", "--output-format", "concise")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


def test_ruff_format_changes_nothing() -> None:
    done = _ruff("format", "--check")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
