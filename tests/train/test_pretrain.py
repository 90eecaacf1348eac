"""Pretraining end to end on tiny models: loss falls on synthetic and real EEG, checkpoints,
MLflow (sqlite store and an unreachable server), gates, early stopping, the leakage gate."""

from __future__ import annotations

import json
import logging
import math
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_helpers import mlflow_store, synth_cohort, tiny_config

from eegwb.config import to_dict
from eegwb.experiments.autopsy import autopsy_once
from eegwb.train.checkpoints import checkpoint_name, load_checkpoint
from eegwb.train.collapse import CollapseStats, collapse_warnings
from eegwb.train.config import TrainConfig
from eegwb.train.pretrain import lr_at, pretrain


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_cohort(tmp_path_factory)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return mlflow_store(tmp_path_factory)


def _documented_checkpoint_keys() -> set[str]:
    """The keys in checkpoints.py's docstring table: lines indented by exactly four spaces,
    the names before the first run of two spaces."""
    from eegwb.train import checkpoints

    keys: set[str] = set()
    for line in checkpoints.__doc__.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            keys |= {k.strip() for k in re.split(r"\s{2,}", line.strip())[0].split(",")}
    return keys


def test_lr_schedule_warmup_then_cosine() -> None:
    cfg = TrainConfig(lr=1e-3, warmup_fraction=0.1, min_lr_ratio=0.1)
    total = 200
    lrs = np.array([lr_at(s, total, cfg) for s in range(total)])
    warm = math.ceil(0.1 * total)
    assert np.all(np.diff(lrs[:warm]) > 0) and lrs[0] < 0.1 * cfg.lr  # linear warmup from ~0
    assert lrs.max() == pytest.approx(cfg.lr)
    assert np.all(np.diff(lrs[warm:]) <= 1e-15)  # cosine decay, never up again
    assert lrs[-1] == pytest.approx(cfg.lr * cfg.min_lr_ratio, rel=1e-3)
    mid = warm + (total - warm) // 2  # half-way through the cosine: half-way between peak and floor
    assert lrs[mid] == pytest.approx(cfg.lr * (0.1 + 0.9 * 0.5), rel=0.02)


def test_collapse_stats_against_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4, 6, 5, generator=g)  # (b, l, o)
    mask = torch.rand(4, 6, generator=g) < 0.5  # (b, l)
    healthy = target + 0.1 * torch.randn(4, 6, 5, generator=g)
    healthy[~mask] = 1e6  # unmasked positions must not count
    stats = CollapseStats()
    stats.update(healthy[:2], target[:2], mask[:2])  # accumulated over two batches
    stats.update(healthy[2:], target[2:], mask[2:])
    got = stats.result()
    p, t = healthy[mask].double().numpy(), target[mask].double().numpy()  # (m, o)
    assert got["pred_var"] == pytest.approx(p.var(axis=0).mean(), rel=1e-9)
    assert got["target_var"] == pytest.approx(t.var(axis=0).mean(), rel=1e-9)
    assert got["pred_mean"] == pytest.approx(p.mean(), rel=1e-9)
    assert collapse_warnings(got) == []
    flat = CollapseStats()
    flat.update(torch.full_like(target, 0.3), target, mask)  # the same output everywhere
    res = flat.result()
    assert res["var_ratio"] == pytest.approx(0.0, abs=1e-12) and res["pred_mean"] == pytest.approx(
        0.3
    )
    assert any("prediction collapse" in w for w in collapse_warnings(res))
    dead = CollapseStats()
    dead.update(target, torch.zeros_like(target), mask)
    assert any("target collapse" in w for w in collapse_warnings(dead.result()))


def test_synthetic_loss_falls_checkpoints_and_mlflow(
    synth: Path, tmp_path: Path, mlflow_uri: str
) -> None:
    from mlflow import MlflowClient

    from eegwb.train.tracking import TAG_CHECKPOINT, TAG_DATASET_FINGERPRINT, TAG_KERNEL

    uri = mlflow_uri
    cfg = tiny_config(
        synth,
        tmp_path / "ckpt",
        "train.epochs=3",
        "tracking.enabled=true",
        f"tracking.uri={uri}",
        "tracking.experiment=pretrain-test",
        "train.log_every_steps=4",
    )
    events: list[dict] = []
    result = pretrain(cfg, events.append, bar=False)
    epochs = [h for h in result.history if h["kind"] == "epoch"]
    assert [h["epoch"] for h in epochs] == [1, 2, 3] and result.stopped == "completed"
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"], [h["val_loss"] for h in epochs]
    assert all(np.isfinite([h["pred_var"], h["target_var"], h["var_ratio"]]).all() for h in epochs)
    # The progress callback saw every step and every epoch.
    assert [e["step"] for e in events if e["kind"] == "step"] == list(
        range(1, len(result.steps) + 1)
    )
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == [1, 2, 3]
    # Checkpoints: named from the config, loadable with weights_only, complete.
    assert result.best_checkpoint == tmp_path / "ckpt" / "mamba2_eeg_d16_l1_m50_mae.pt"
    assert result.last_checkpoint == tmp_path / "ckpt" / checkpoint_name(cfg, "last")
    last = load_checkpoint(result.last_checkpoint)
    assert last["config"] == to_dict(cfg) and last["epoch"] == 3 and last["step_in_epoch"] == 0
    assert last["fingerprint"]["dataset"] == result.fingerprint["dataset"]
    assert {"optimizer", "scheduler", "rng", "history", "gates"} <= set(last)
    # ... and exactly the keys eegwb/train/checkpoints.py's docstring lists: it is the contract.
    assert set(last) == _documented_checkpoint_keys()
    assert set(last["scheduler"]) == {"name", "step", "total_steps", "warmup_fraction"}
    best = load_checkpoint(result.best_checkpoint)
    assert best["best_val_loss"] == pytest.approx(min(h["val_loss"] for h in epochs))
    assert sorted(best["assignment"]["train"]) and not set(best["assignment"]["train"]) & set(
        best["assignment"]["val"]
    )
    # MLflow: params, per-step and per-epoch metrics, tags, artifacts.
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.run_id)
    assert (
        run.data.params["model.d_model"] == "16" and run.data.params["masking.mask_ratio"] == "0.5"
    )
    assert run.data.tags[TAG_KERNEL] == result.kernel_path == "reference"
    assert run.data.tags[TAG_DATASET_FINGERPRINT] == result.fingerprint["dataset"]
    assert run.data.tags[TAG_CHECKPOINT] == str(result.best_checkpoint)
    val = client.get_metric_history(result.run_id, "val_loss")
    assert [m.value for m in sorted(val, key=lambda m: m.step)] == pytest.approx(
        [h["val_loss"] for h in epochs]
    )
    assert len(client.get_metric_history(result.run_id, "train_loss")) >= len(result.steps) // 4
    assert client.get_metric_history(result.run_id, "grad_norm") and client.get_metric_history(
        result.run_id, "lr"
    )
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "loss_chart.html", "run_summary.json"} <= artifacts
    assert result.tracking_failures == []


def test_gates_stop_or_warn_and_are_recorded(synth: Path, tmp_path: Path, mlflow_uri: str) -> None:
    uri = mlflow_uri
    cfg = tiny_config(
        synth,
        tmp_path / "ckpt",
        "train.epochs=3",
        "train.batch_size=32",
        "tracking.enabled=true",
        f"tracking.uri={uri}",
        "gates=[{epoch: 1, metric: val_loss, max: 100.0}, {epoch: 1, metric: var_ratio, min: "
        "1000.0, action: warn},"
        " {epoch: 2, metric: val_loss, max: 0.0}]",
    )
    result = pretrain(cfg, bar=False)
    assert result.stopped == "gate"
    assert [h["epoch"] for h in result.history if h["kind"] == "epoch"] == [
        1,
        2,
    ]  # stopped after epoch 2
    assert [(g["epoch"], g["metric"], g["passed"]) for g in result.gates] == [
        (1, "val_loss", True),
        (1, "var_ratio", False),
        (2, "val_loss", False),
    ]
    assert load_checkpoint(result.last_checkpoint)["gates"] == result.gates
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=uri).get_run(result.run_id)
    assert "gate failed at epoch 2: val_loss" in run.data.tags["eegwb.gate_failed"]
    assert run.data.metrics["gate_val_loss_e2_passed"] == 0.0


def test_early_stopping_then_autopsy_once(synth: Path, tmp_path: Path) -> None:
    # min_delta so large that no epoch after the first counts as an improvement.
    cfg = tiny_config(
        synth,
        tmp_path / "ckpt",
        "train.epochs=4",
        "train.batch_size=32",
        "train.patience=1",
        "train.min_delta=100.0",
        "train.autopsy=true",
    )
    result = pretrain(cfg, bar=False, autopsy=autopsy_once)
    assert result.stopped == "early_stopping"
    assert [h["epoch"] for h in result.history if h["kind"] == "epoch"] == [1, 2]
    assert load_checkpoint(result.best_checkpoint)["epoch"] == 1  # best = the first epoch
    # The run stopped early and finished: one autopsy of the best checkpoint, not two.
    out = result.best_checkpoint.parent / "autopsy" / result.best_checkpoint.stem
    report = (out / "report.md").read_text()
    for heading in (
        "## Predictions vs targets",
        "## Gradient flow",
        "## Attributions",
        "## Ablations",
    ):
        assert heading in report
    assert len(list(out.glob("autopsy.*.started.json"))) == 1
    assert autopsy_once(result.best_checkpoint, out_dir=out) is None


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")
def test_bf16_autocast_and_validation_every_n_steps(synth: Path, tmp_path: Path) -> None:
    # bf16 autocast is the CUDA default; asked for explicitly it also runs on CPU.
    cfg = tiny_config(
        synth,
        tmp_path / "ckpt",
        "train.epochs=1",
        "train.batch_size=32",
        "train.precision=bf16",
        "train.val_every_steps=1",
    )
    result = pretrain(cfg, bar=False)
    steps = len(result.steps)
    assert steps >= 2 and all(math.isfinite(s["train_loss"]) for s in result.steps)
    mid = [h for h in result.history if h["kind"] == "val"]
    assert [h["step"] for h in mid] == list(range(1, steps + 1))  # one validation per step
    assert all(math.isfinite(h["val_loss"]) for h in mid)
    assert [h["kind"] for h in result.history].count("epoch") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_outage_training_completes(
    synth: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    cfg = tiny_config(
        synth,
        tmp_path / "ckpt",
        "train.epochs=2",
        "train.batch_size=32",
        "tracking.enabled=true",
        f"tracking.uri={uri}",
    )
    with caplog.at_level(logging.WARNING):
        result = pretrain(cfg, bar=False)
    assert (
        result.stopped == "completed"
        and len([h for h in result.history if h["kind"] == "epoch"]) == 2
    )
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    assert load_checkpoint(result.last_checkpoint)["epoch"] == 2
    assert result.run_id is None and result.tracking_failures
    warned = [r.getMessage() for r in caplog.records if "MLflow tracking at" in r.getMessage()]
    assert warned and uri in warned[0] and "Not logged: start run" in warned[0]


def test_leakage_gate_refuses_then_tags(synth: Path, tmp_path: Path, mlflow_uri: str) -> None:
    from eegwb.validation.leakage import LeakageError

    splits = tmp_path / "leaky.json"
    splits.write_text(
        json.dumps(
            {
                "dataset": str(synth),
                "splits": {"train": ["01", "02", "03", "04", "05", "06"], "val": ["06", "07"]},
            }
        )
    )
    cfg = tiny_config(
        synth, tmp_path / "ckpt", "train.epochs=1", "train.batch_size=32", f"data.splits={splits}"
    )
    with pytest.raises(LeakageError, match="participant"):
        pretrain(cfg, bar=False)
    assert not (tmp_path / "ckpt").exists()  # refused before any training
    uri = mlflow_uri
    allowed = tiny_config(
        synth,
        tmp_path / "ckpt",
        "train.epochs=1",
        "train.batch_size=32",
        f"data.splits={splits}",
        "data.allow_leakage=true",
        "tracking.enabled=true",
        f"tracking.uri={uri}",
    )
    result = pretrain(allowed, bar=False)
    assert result.leaky
    from mlflow import MlflowClient

    assert MlflowClient(tracking_uri=uri).get_run(result.run_id).data.tags["leaky"] == "true"


def test_refuses_to_overwrite_checkpoints(synth: Path, tmp_path: Path) -> None:
    from eegwb.config import ConfigError

    cfg = tiny_config(synth, tmp_path / "ckpt")
    existing = tmp_path / "ckpt" / checkpoint_name(cfg)
    existing.parent.mkdir()
    existing.write_bytes(b"an earlier run")
    with pytest.raises(
        ConfigError, match=r"train\.overwrite: .*mamba2_eeg_d16_l1_m50_mae\.pt already exists"
    ):
        pretrain(cfg, bar=False)
    assert existing.read_bytes() == b"an earlier run"


def test_eegmat_real_eeg_loss_falls(eegmat_dir: Path, tmp_path: Path) -> None:
    """Real EEG: PhysioNet EEG During Mental Arithmetic (Zyma et al. 2019, Data 4(1):14)."""
    from eegwb.data.ingest import ingest

    sources = sorted(eegmat_dir.glob("Subject0[0-3]_*.edf"))  # 4 subjects, both recordings
    root = tmp_path / "eegmat"
    # The authors taper each recording's last ~2-3 s to zero; uncropped, those tails are
    # level-5 near-duplicates across subjects and the leakage gate refuses the split.
    ingest(sources, root, window_samples=256, sfreq=128.0, crop_end_seconds=3, progress=False)
    cfg = tiny_config(
        root,
        tmp_path / "ckpt",
        "train.epochs=3",
        "data.channels=[FZ, CZ, PZ, O1]",
        "data.split_fractions=[0.75, 0.25, 0.0]",
        window_samples=256,
    )
    result = pretrain(cfg, bar=False)
    epochs = [h for h in result.history if h["kind"] == "epoch"]
    assert set(result.fingerprint) >= {"train", "val", "dataset"}
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"], [h["val_loss"] for h in epochs]
