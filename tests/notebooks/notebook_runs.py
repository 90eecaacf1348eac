"""What the notebook tests share: where things are, and running a notebook as a user would.

Imported by tests/notebooks/test_*.py (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARIMO = Path(sys.executable).with_name("marimo")


def run(cmd: list[str], expect: int | None = 0, timeout: int = 300) -> subprocess.CompletedProcess:
    """`cmd` from the repository root with one torch thread and CI set, as CI runs it; the
    exit code must be `expect` (None: any, for tests that inspect it themselves)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout, env=env
    )
    if expect is not None:
        assert done.returncode == expect, (
            f"{cmd[:3]} gave {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def export_html(
    notebook: Path, html: Path, *args: str, flags: tuple[str, ...] = (), expect: int | None = 0
) -> subprocess.CompletedProcess:
    """`marimo export html [flags] NOTEBOOK -o HTML -- ARGS`, as a user writes a report."""
    cmd = [str(MARIMO), "export", "html", *flags, str(notebook), "-o", str(html), "--", *args]
    return run(cmd, expect=expect)


def headless(notebook: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    """`python NOTEBOOK ARGS`: the notebook run headless, without a click."""
    return run([sys.executable, str(notebook), *args], expect=expect)
