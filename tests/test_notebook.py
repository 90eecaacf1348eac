"""eegwb/notebook.py: `stop_or_exit` in a real (tiny) marimo notebook run headless."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NOTEBOOK = """
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo

    from eegwb.notebook import arg, stop_or_exit

    return arg, mo, stop_or_exit


@app.cell
def _(arg, mo, stop_or_exit):
    _shown = mo.callout(mo.md("**Bad.**"), kind="danger")
    stop_or_exit(arg("bad") == "yes", _shown, "data/x: bad input")
    print("first cell ran on")
    checked = True
    return (checked,)


@app.cell
def _(checked):
    print("dependent cell ran", checked)
    return


if __name__ == "__main__":
    app.run()
"""


def _run(path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, str(path), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_stop_or_exit_headless(tmp_path: Path) -> None:
    path = tmp_path / "nb.py"
    path.write_text(NOTEBOOK)

    stopped = _run(path, "--bad", "yes")
    assert stopped.returncode == 2, stopped.stderr
    assert "error: data/x: bad input" in stopped.stderr
    assert "ran" not in stopped.stdout  # neither the rest of the cell nor what depends on it

    passed = _run(path, "--bad", "no")
    assert passed.returncode == 0, passed.stderr
    assert "first cell ran on" in passed.stdout and "dependent cell ran" in passed.stdout
