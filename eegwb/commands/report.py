"""`eegwb report NOTEBOOK -o OUT.html [--overwrite] [-- notebook arguments]`: an HTML
report of a notebook run that opens with no network.

Runs `marimo export html` (the notebook runs headless with the arguments after `--`),
then packs marimo's viewer into the page (`eegwb.report_html`): the plain export loads it
from a CDN and is blank offline. `--pack EXPORTED.html` packs an existing export instead.
The exit code is marimo's (1 when a cell failed; the report is still written, as marimo
writes it), or 2 when the output exists or the export cannot be packed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from eegwb.errors import InputError
from eegwb.report_html import make_offline

EXIT_BAD_INPUT = 2
PASSTHROUGH = True  # eegwb.cli hands everything after `--` over as `args.passthrough`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "eegwb report NOTEBOOK -o OUT.html [--overwrite] [-- NOTEBOOK ARGS]"
    parser.epilog = "Arguments after -- go to the notebook (as with `marimo export html`)."
    parser.add_argument("notebook", nargs="?", help="a marimo notebook (.py) to run and export")
    parser.add_argument("-o", "--out", required=True, help="the report to write (.html)")
    parser.add_argument(
        "--pack",
        metavar="EXPORTED_HTML",
        help="pack an existing `marimo export html` file instead of running one",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")


def _export(notebook: str, args: list[str], html: Path) -> int:
    """`marimo export html` into `html`; marimo's exit code (its output is passed through)."""
    cmd = [sys.executable, "-m", "marimo", "export", "html", notebook, "-o", str(html), "-f"]
    return subprocess.run([*cmd, "--", *args] if args else cmd, check=False).returncode


def run(args: argparse.Namespace) -> int:
    if (args.notebook is None) == (args.pack is None):
        print("error: give a NOTEBOOK to run, or --pack EXPORTED_HTML", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"error: {out}: already exists (pass --overwrite to replace it)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.pack:
            make_offline(args.pack, out, overwrite=args.overwrite)
            code = 0
        else:
            if not Path(args.notebook).is_file():
                print(f"error: {args.notebook}: no such notebook", file=sys.stderr)
                return EXIT_BAD_INPUT
            with tempfile.TemporaryDirectory(prefix="eegwb-report-") as tmp:
                exported = Path(tmp) / out.name
                code = _export(args.notebook, args.passthrough, exported)
                if not exported.is_file():  # marimo could not run the notebook at all
                    return code or 1
                make_offline(exported, out, overwrite=args.overwrite)
    except InputError as err:  # not an export, another marimo's, an output that exists
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opens offline)")
    return code
