#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls exactly this).
# pytest's own exit code is returned as is: 5 (nothing collected) fails the run.
# -n 2: pytest-xdist on the two cores CI has; every test pins torch to one thread.
# interpreter_env.sh: mamba-ssm's fused Triton kernels run on CPU through Triton's
# interpreter, so the fused path is checked against the reference without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/interpreter_env.sh
. .venv/bin/activate
exec python -m pytest -q -n 2 "$@"
