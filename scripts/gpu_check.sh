#!/usr/bin/env bash
# Run ON a lent GPU machine (see scripts/gpu_wheels.sh): installs mamba-ssm from .whl/
# without its CUDA extensions (the Mamba-2 path is Triton), then runs the fused-vs-
# reference GPU tests and the model benchmark on CUDA. Logs and JSON go to $OUT (the
# device tool's folder) or reports/gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/gpu}
mkdir -p "$OUT"
SITE=/tmp/eegwb-site
mkdir -p "$SITE/stub"
# `import mamba_ssm` imports the Mamba-1 CUDA extension; Mamba-2 never calls it.
# FORCE_BUILD: build here (pure Python under SKIP_CUDA_BUILD) instead of trying to
# download a prebuilt wheel, which the offline machine cannot.
: > "$SITE/stub/selective_scan_cuda.py"
MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE python3 -m pip install -q --no-index --no-deps --no-build-isolation \
    --no-compile --target "$SITE" .whl/mamba_ssm-*.tar.gz || exit 1
export PYTHONPATH="$SITE:$SITE/stub:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -m eegwb info | tee "$OUT/info.txt"
python3 -m pytest -q -p no:cacheprovider -rs tests/kernels/test_fused_parity_gpu.py \
    tests/kernels/test_ssd_reference.py tests/kernels/test_fused_dispatch.py 2>&1 \
    | tee "$OUT/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}
for batch in 8 64; do
    python3 benchmarks/bench_model.py --device cuda --batch "$batch" --repeats 20 --warmup 3 \
        --bf16 --json "$OUT/bench_model_cuda_b$batch.json" 2>&1 | tee "$OUT/bench_model_cuda_b$batch.log"
done
exit "$tests_rc"
