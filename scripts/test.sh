#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls exactly this).
# pytest's own exit code is returned as is: 5 (nothing collected) fails the run.
# -n 2: pytest-xdist on the two cores CI has; every test pins torch to one thread.
# interpreter_env.sh: mamba-ssm's fused Triton kernels run on CPU through Triton's
# interpreter, so the fused path is checked against the reference without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# tests/browser drive Debian's Chromium with Playwright (`playwright install` cannot
# download here). CI runs as root: install it when it is missing. Without it those tests
# fail and say how to install it; they never skip.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium for tests/browser (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
. scripts/interpreter_env.sh
. .venv/bin/activate
exec python -m pytest -q -n 2 "$@"
