#!/usr/bin/env bash
# Run HERE (with PyPI) before using a lent GPU machine, which has torch, triton, einops,
# pytest and transformers but no internet and no mamba-ssm: puts mamba-ssm's source
# distribution in .whl/ (git-ignored) for scripts/gpu_check.sh to install there.
# Then, with the device tool:  run(command="bash scripts/gpu_check.sh", carry=[".whl"])
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
MAMBA=2.3.2.post1
mkdir -p .whl
# mamba-ssm's setup.py imports torch, hence no build isolation; only the source is kept.
MAMBA_SKIP_CUDA_BUILD=TRUE .venv/bin/python -m pip download --quiet --no-deps \
    --no-build-isolation --no-binary :all: "mamba-ssm==$MAMBA" -d .whl
ls -la .whl
