#!/usr/bin/env bash
# Only the fused-vs-reference parity tests, through Triton's interpreter on CPU (~1-2 min;
# the README's test command runs them too). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/interpreter_env.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider -rs \
    tests/kernels/test_fused_parity_interpreted.py "$@"
