#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls exactly this).
# pytest's own exit code is returned as is: 5 (nothing collected) fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec python -m pytest -q "$@"
