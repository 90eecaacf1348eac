# Source this (`. scripts/interpreter_env.sh`): puts triton and mamba-ssm's source in
# .interp/ on first use (~1 GB from PyPI; reused afterwards) and exports what
# tests/kernels/test_fused_parity_interpreted.py needs to run mamba-ssm's fused Triton
# kernels on CPU tensors through Triton's interpreter. Nothing here is imported by eegwb.
# Expects to be sourced from the repository root with .venv set up. If the download fails
# (no network), it says so and those tests skip with that reason; nothing else changes.
INTERP_TRITON=3.9.0
INTERP_MAMBA=2.3.2.post1
INTERP_READY=".interp/ready-triton-$INTERP_TRITON-mamba-ssm-$INTERP_MAMBA"
interp_install() {
    rm -rf .interp && mkdir -p .interp/dl &&
    echo "installing triton $INTERP_TRITON and mamba-ssm $INTERP_MAMBA's source into .interp/ ..." &&
    .venv/bin/python -m pip install --quiet --no-deps --target .interp/lib "triton==$INTERP_TRITON" &&
    # mamba-ssm's setup.py imports torch (hence no build isolation); only its sources are used.
    MAMBA_SKIP_CUDA_BUILD=TRUE .venv/bin/python -m pip download --quiet --no-deps \
        --no-build-isolation --no-binary :all: "mamba-ssm==$INTERP_MAMBA" -d .interp/dl &&
    tar -xzf ".interp/dl/mamba_ssm-$INTERP_MAMBA.tar.gz" -C .interp &&
    touch "$INTERP_READY"
}
if [ -f "$INTERP_READY" ] || interp_install; then
    export TRITON_INTERPRET=1
    export EEGWB_MAMBA_SSM_SRC="$PWD/.interp/mamba_ssm-$INTERP_MAMBA"
    export PYTHONPATH="$PWD/.interp/lib${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "WARNING: could not put triton and mamba-ssm in .interp/: the interpreted" \
         "fused-kernel parity tests will be skipped" >&2
fi
