"""`eegwb report`: run a notebook into an HTML report that opens offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NOTEBOOK = """import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo

    args = mo.cli_args()
    mo.md(f"greeting: {args.get('greet', 'none')}")
    return


if __name__ == "__main__":
    app.run()
"""


def _eegwb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eegwb", "report", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_report_runs_the_notebook_with_its_arguments_and_packs_it(tmp_path: Path) -> None:
    (tmp_path / "nb.py").write_text(NOTEBOOK)
    done = _eegwb("nb.py", "-o", "out/report.html", "--", "--greet", "hello", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "out" / "report.html").read_text()
    assert "greeting: hello" in page and "eegwb-marimo-frontend" in page
    assert "opens offline" in done.stdout

    again = _eegwb("nb.py", "-o", "out/report.html", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert _eegwb("nb.py", "-o", "out/report.html", "--overwrite", cwd=tmp_path).returncode == 0


def test_bad_input_exits_2_naming_it(tmp_path: Path) -> None:
    missing = _eegwb("missing.py", "-o", "r.html", cwd=tmp_path)
    assert missing.returncode == 2 and "missing.py: no such notebook" in missing.stderr
    (tmp_path / "plain.html").write_text("<html></html>")
    not_export = _eegwb("--pack", "plain.html", "-o", "r.html", cwd=tmp_path)
    assert not_export.returncode == 2 and "plain.html: no marimo frontend" in not_export.stderr
    both = _eegwb("nb.py", "--pack", "plain.html", "-o", "r.html", cwd=tmp_path)
    assert both.returncode == 2 and "give a NOTEBOOK" in both.stderr
    assert not (tmp_path / "r.html").exists()
