"""notebooks/06_finetune.py: `marimo check`, a headless fine-tuning run, and an HTML export
holding the results table with CIs for every strategy and the baseline, the ROC chart and
the MLflow run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from notebook_runs import MARIMO, ROOT, export_html, headless
from notebook_runs import run as _run

from eegwb.config import to_dict
from eegwb.data.synthetic import SynthConfig, generate_cohort
from eegwb.model.config import ModelConfig
from eegwb.model.eeg_model import EEGModel
from eegwb.train.checkpoints import save_checkpoint

NOTEBOOK = ROOT / "notebooks" / "06_finetune.py"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A small Muse cohort with a planted effect, and an (untrained) backbone checkpoint of
    the pretraining format: the notebook is under test here, not pretraining."""
    base = tmp_path_factory.mktemp("nb06")
    root = base / "muse"
    generate_cohort(
        root,
        SynthConfig(
            n_participants=12,
            runs_per_participant=1,
            montage="muse",
            window_samples=128,
            n_windows=8,
            effect_size=8.0,
            effect_channels=("TP9", "AF7", "AF8", "TP10"),
            seed=3,
        ),
        progress=False,
    )
    cfg = ModelConfig(
        window_samples=128, d_model=16, n_layers=1, headdim=8, d_state=8, chunk_size=8
    )
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        base / "backbone.pt",
        {
            "model": EEGModel(cfg).state_dict(),
            "config": {"model": to_dict(cfg), "masking": {"mask_ratio": 0.5, "style": "mae"}},
        },
    )
    return root, ckpt


def test_marimo_check_passes() -> None:
    _run([str(MARIMO), "check", str(NOTEBOOK)])


def test_headless_run_and_html_export(inputs, tmp_path: Path) -> None:
    root, ckpt = inputs
    args = [
        "--config",
        "configs/finetune_tiny.yaml",
        "--set",
        f"data.root={root}",
        "--set",
        f"pretrained.checkpoint={ckpt}",
        "--set",
        "train.epochs=2",
        "--set",
        f"train.checkpoint_dir={tmp_path / 'ckpt'}",
    ]
    done = headless(NOTEBOOK, *args, "--set", "train.strategies=[scratch]", "--no-track", "true")
    table = done.stdout
    for strategy in ("scratch", "baseline"):
        assert re.search(
            rf"^{strategy}\s+recording\s+\d\.\d{{3}} \[\d\.\d{{3}}, \d\.\d{{3}}\]",
            table,
            re.MULTILINE,
        ), table
    assert (
        "full" not in table and "frozen" not in table
    )  # --set train.strategies chose, not the config
    assert (tmp_path / "ckpt" / "backbone_finetuned_scratch.pt").is_file()

    html = tmp_path / "06_finetune.html"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export_html(
        NOTEBOOK,
        html,
        *args,
        "--set",
        "train.strategies=[frozen]",
        "--set",
        f"tracking.uri={uri}",
        "--set",
        "tracking.experiment=nb06",
    )
    text = html.read_text()
    assert "Results on held-out participants (recording level)" in text
    assert "application/vnd.vegalite" in text and "ROC on held-out participants" in text
    # the markdown results table is stored rendered and escaped: <td> is \u003Ctd\u003E
    for strategy in ("frozen", "baseline"):
        cell = r"\\u003Ctd\\u003E"
        assert re.search(
            rf"{cell}{strategy}\\u003C/td\\u003E\\n{cell}\d\.\d{{3}} \[\d\.\d{{3}}, \d\.\d{{3}}\]",
            text,
        ), strategy
    assert re.search(r"MLflow: run \\u003Ccode\\u003E[0-9a-f]{32}", text), "MLflow run id missing"
    # what one prediction is, how units were cut, and the shortcut audit of those units
    assert "channel-sequence (crop of 8 windows)" in text and "window (all channels)" in text
    assert "length matching crop: every unit is 8 windows" in text
    assert "shortcut audit of these units" in text
