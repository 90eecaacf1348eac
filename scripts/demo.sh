#!/usr/bin/env bash
# The main job on the embedded default (README's first command): set up the environment,
# synthesise the default cohort, validate it, pretrain a tiny model, run the control
# experiments and the autopsy on it, and fine-tune it on a synthetic Muse cohort.
# Every step writes an HTML report to reports/: the notebook run headless by `eegwb report`
# (marimo export html with marimo's viewer packed in), so each opens offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
mkdir -p reports

step() { printf '\n== %s\n' "$*"; }

step "1/6 synthetic cohort -> data/synthetic"
if [ -f data/synthetic/manifest.json ]; then
    echo "data/synthetic exists; keeping it (delete it to regenerate)"
else
    eegwb synth --out data/synthetic
fi

step "2/6 validate: data quality + leakage audit -> reports/02_validate_data.html"
eegwb validate data/synthetic --json reports/validate.json --overwrite
eegwb report notebooks/02_validate_data.py -o reports/02_validate_data.html --overwrite -- \
    --data data/synthetic

step "3/6 pretrain (configs/tiny.yaml) -> reports/03_pretrain.html"
eegwb report notebooks/03_pretrain.py -o reports/03_pretrain.html --overwrite -- \
    --config configs/tiny.yaml

CKPT=checkpoints/tiny/mamba2_eeg_d32_l2_m50_mae.pt

step "4/6 control experiments on the tiny model -> reports/04_control_experiments.html"
eegwb report notebooks/04_control_experiments.py -o reports/04_control_experiments.html --overwrite -- \
    --checkpoint "$CKPT" --data data/synthetic

step "5/6 autopsy of the tiny model -> reports/05_autopsy.html"
eegwb report notebooks/05_autopsy.py -o reports/05_autopsy.html --overwrite -- \
    --checkpoint "$CKPT" --data data/synthetic --out reports/autopsy --overwrite true

step "6/6 fine-tune on a synthetic Muse cohort (remission label) -> reports/06_finetune.html"
if [ -f data/muse/manifest.json ]; then
    echo "data/muse exists; keeping it"
else
    # the cohort configs/finetune_tiny.yaml reads (eegwb/data/cohorts.py)
    eegwb synth --out data/muse --montage muse --participants 24 --runs 1 --n-windows 16 \
        --seed 1 --no-progress
fi
eegwb report notebooks/06_finetune.py -o reports/06_finetune.html --overwrite -- \
    --config configs/finetune_tiny.yaml --set "pretrained.checkpoint=$CKPT" --set data.root=data/muse \
    --set train.checkpoint_dir=checkpoints/tiny --overwrite true

echo
echo "Reports written to reports/:"
ls -1 reports/*.html
