#!/usr/bin/env bash
# Create .venv (if missing) and install eegwb with its test and bench extras, then
# braindecode (scripts/install_braindecode.sh: its own steps, and why).
# torch is installed first and pinned to 2.13.0: on this kind of machine that takes the
# CPU build lying on disk; a looser spec would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.eegwb-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python -m pip install -q --upgrade pip
    python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
    python -m pip install -q -e ".[test,bench]"
    touch "$stamp"
fi
bash scripts/install_braindecode.sh  # returns at once when it is in place
