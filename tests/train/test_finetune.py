"""Fine-tuning end to end on tiny models: a planted label effect is found (fine-tuned model
and baseline), a null effect is not, leaky splits are refused, real EEG (eegmat) runs, and
checkpoints, names and MLflow records are what the docs promise."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import polars as pl
import pytest
import torch
from pretrain_helpers import mlflow_store

from eegwb.atomic import OutputExistsError
from eegwb.config import ConfigError, load_config
from eegwb.data.layout import recordings_index
from eegwb.data.synthetic import SynthConfig, generate_cohort
from eegwb.experiments.autopsy import autopsy_once
from eegwb.train.checkpoints import CheckpointError
from eegwb.train.config import PretrainConfig
from eegwb.train.finetune import finetune, output_paths
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.finetune_data import check_folds, checkpoint_source, load_backbone, make_folds
from eegwb.train.finetune_report import load_finetuned
from eegwb.train.labels import recording_labels
from eegwb.train.pretrain import pretrain
from eegwb.validation.leakage import LeakageError

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "configs" / "finetune_tiny.yaml"
MUSE = ["TP9", "AF7", "AF8", "TP10"]


# A tiny pretraining model on 128-sample windows (the cohorts below).
TINY_MODEL = [
    "model.window_samples=128",
    "model.d_model=16",
    "model.n_layers=1",
    "model.headdim=8",
    "model.d_state=8",
    "model.chunk_size=8",
]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A tiny backbone pretrained on a 19-channel 10-20 cohort (fine-tuned on Muse below)."""
    base = tmp_path_factory.mktemp("pretrain")
    generate_cohort(
        base / "cap",
        SynthConfig(
            n_participants=4,
            runs_per_participant=1,
            montage="standard_1020",
            window_samples=128,
            n_windows=8,
            seed=11,
        ),
        progress=False,
    )
    cfg = load_config(
        PretrainConfig,
        None,
        [
            f"data.root={base / 'cap'}",
            *TINY_MODEL,
            "data.max_windows=8",
            "data.split_fractions=[0.75, 0.25, 0.0]",
            "train.epochs=1",
            "train.batch_size=16",
            f"train.checkpoint_dir={base / 'ckpt'}",
            "tracking.enabled=false",
        ],
    )
    result = pretrain(cfg, bar=False)
    assert result.best_checkpoint.name == "mamba2_eeg_d16_l1_m50_mae.pt"
    return result.best_checkpoint


def muse_cohort(root: Path, effect_size: float) -> Path:
    """24 people x 1 run x 16 windows of 0.5 s: label-1 alpha power x (1 + effect) on all four
    sites."""
    generate_cohort(
        root,
        SynthConfig(
            n_participants=24,
            runs_per_participant=1,
            montage="muse",
            window_samples=128,
            n_windows=16,
            effect_size=effect_size,
            effect_channels=tuple(MUSE),
            seed=2,
        ),
        progress=False,
    )
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return muse_cohort(tmp_path_factory.mktemp("planted") / "muse", effect_size=8.0)


@pytest.fixture(scope="module")
def null(tmp_path_factory) -> Path:
    return muse_cohort(tmp_path_factory.mktemp("null") / "muse", effect_size=0.0)


def tiny(root: Path, out: Path, ckpt: Path | None, *overrides: str) -> FinetuneConfig:
    sets = [f"data.root={root}", f"train.checkpoint_dir={out}", "tracking.enabled=false"]
    if ckpt is not None:
        sets.append(f"pretrained.checkpoint={ckpt}")
    return load_config(FinetuneConfig, TINY_YAML, sets + list(overrides))


def test_planted_effect_is_found_by_the_fine_tuned_model_and_the_baseline(
    planted, pretrained, tmp_path
):
    # montage transfer: the backbone was pretrained on 19 10-20 sites, the label is on Muse's 4
    cfg = tiny(planted, tmp_path, pretrained, "train.strategies=[full]")
    result = finetune(cfg)
    test_people = set(result.folds[0]["test"])
    assert len(test_people) == 7 and not test_people & set(result.folds[0]["train"])
    for strategy in ("full", "baseline"):
        row = result.table.filter(
            (pl.col("strategy") == strategy) & (pl.col("level") == "recording")
        ).row(0, named=True)
        assert row["auroc"] >= 0.8, result.format("all")
        assert row["auroc_low"] <= row["auroc"] <= row["auroc_high"]
        assert row["n_participants"] == 7
        assert set(result.predictions[strategy]["participant"]) == test_people
    # the threshold came from validation predictions, and the checkpoint is named as the original's
    (path,) = result.checkpoints["full"]
    assert path.name == "mamba2_eeg_d16_l1_m50_mae_finetuned_full.pt"
    clf, ckpt = load_finetuned(path)
    assert ckpt["threshold"] == result.thresholds["full"] and ckpt["participants"][
        "test"
    ] == sorted(test_people)
    assert ckpt["pretrained"] == str(pretrained)
    # the reloaded model scores like the one that was evaluated
    from eegwb.data.dataset import EEGDataset, collate

    ds = EEGDataset.open(planted, channels=MUSE, max_windows=16)
    first = ds.index.filter(pl.col("participant") == min(test_people)).row(0, named=True)
    batch = collate([ds[first["seq_index"]]])
    with torch.no_grad():
        score = torch.sigmoid(clf(batch.x, batch.coords, batch.pad_mask)).item()
    pred = result.predictions["full"].filter(
        (pl.col("participant") == first["participant"])
        & (pl.col("channel") == first["channel"])
        & (pl.col("row_start") == first["row_start"])
    )
    assert score == pytest.approx(pred["score"][0], abs=1e-5)


def test_null_effect_confidence_interval_contains_chance_then_autopsy(null, pretrained, tmp_path):
    cfg = tiny(null, tmp_path, pretrained, "train.strategies=[full]", "train.autopsy=true")
    result = finetune(cfg, autopsy=autopsy_once)
    for strategy in ("full", "baseline"):
        row = result.table.filter(
            (pl.col("strategy") == strategy) & (pl.col("level") == "recording")
        ).row(0, named=True)
        assert row["auroc_low"] <= 0.5 <= row["auroc_high"], result.format()
    assert not result.leaky
    # train.autopsy: the fine-tuned classifier was autopsied once, beside its checkpoint
    (path,) = result.checkpoints["full"]
    out = path.parent / "autopsy" / path.stem
    assert not (out / "autopsy.failed.txt").exists()
    report = (out / "report.md").read_text()
    assert (
        "## Predictions vs labels" in report and "## Attributions" in report
    )  # a classifier's autopsy


def test_leaky_split_is_refused_before_training(planted, pretrained, tmp_path):
    splits = tmp_path / "splits.json"
    splits.write_text(
        json.dumps(
            {
                "dataset": str(planted),
                "splits": {
                    "train": ["01", "02", "03", "04", "05/1/0:8"],
                    "val": ["06", "07"],
                    "test": ["05/1/8:16", "08", "09"],
                },
            }
        )
    )
    cfg = tiny(planted, tmp_path / "out", pretrained, f"data.splits={splits}")
    with pytest.raises(LeakageError, match="participant"):
        finetune(cfg)
    assert not (tmp_path / "out").exists()  # refused before anything was trained or written


def test_frozen_scratch_kfold_names_and_no_silent_overwrite(planted, pretrained, tmp_path):
    cfg = tiny(
        planted,
        tmp_path,
        pretrained,
        "train.strategies=[frozen, scratch]",
        "data.kfold=3",
        "train.epochs=2",
        "baseline.enabled=false",
        "eval.n_boot=100",
        "train.pooling=mean",
    )
    result = finetune(cfg)
    clf, _ = load_finetuned(result.checkpoints["frozen"][0])
    assert clf.pooling == "mean" and clf.head[-1].in_features == 16  # the original's mean pooling
    assert sorted(p.name for ps in result.checkpoints.values() for p in ps) == sorted(
        f"mamba2_eeg_d16_l1_m50_mae_finetuned{s}_fold{k}.pt"
        for s in ("", "_scratch")
        for k in (1, 2, 3)
    )
    tested = [p for fold in result.folds for p in fold["test"]]
    assert (
        sorted(tested) == sorted(set(tested)) and len(tested) == 24
    )  # each participant tested once
    assert set(result.table["strategy"]) == {"frozen", "scratch"}
    assert set(result.history["fold"]) == {"fold1", "fold2", "fold3"}
    with pytest.raises(OutputExistsError, match="finetuned"):
        finetune(cfg)


def test_backbone_is_found_by_name_and_by_mlflow_run(
    pretrained, planted, tmp_path, tmp_path_factory
):
    by_name = load_config(
        FinetuneConfig,
        None,
        [
            f"pretrained.checkpoint_dir={pretrained.parent}",
            "pretrained.d_model=16",
            "pretrained.n_layers=1",
        ],
    )
    assert checkpoint_source(by_name) == (pretrained, "name")
    from eegwb.train.tracking import TAG_CHECKPOINT, Tracker

    uri = mlflow_store(tmp_path_factory)
    with Tracker(uri, "pretrain", tags={TAG_CHECKPOINT: str(pretrained)}) as tracker:
        run_id = tracker.run_id
    by_run = load_config(
        FinetuneConfig, None, [f"pretrained.mlflow_run={run_id}", f"tracking.uri={uri}"]
    )
    assert checkpoint_source(by_run) == (pretrained, f"mlflow run {run_id}")
    missing = load_config(
        FinetuneConfig, None, [f"pretrained.checkpoint_dir={tmp_path}", f"data.root={planted}"]
    )
    with pytest.raises(
        CheckpointError, match="mamba2_eeg_d128_l6_m50_mae.pt: no pretrained checkpoint"
    ):
        finetune(missing)
    with pytest.raises(ConfigError, match="strategies"):
        load_config(FinetuneConfig, None, ["train.strategies=[frozen, linear]"])
    assert output_paths(by_name, "x", 1)[("frozen", 0)].name == "x_finetuned.pt"


def test_eegmat_rest_vs_arithmetic_end_to_end_with_mlflow(
    eegmat_dir, pretrained, tmp_path, tmp_path_factory
):
    """Real EEG: PhysioNet EEG During Mental Arithmetic (Zyma et al. 2019, Data 4(1):14;
    Goldberger et al. 2000). Rest (_1) vs arithmetic (_2) is a per-run label; split by subject."""
    from eegwb.data.ingest import ingest
    from eegwb.train.tracking import find_runs

    sources = sorted(eegmat_dir.glob("Subject0[0-7]_*.edf"))  # 8 subjects, both recordings
    root = tmp_path / "eegmat"
    # crop_end_seconds: the authors' taper of the last ~2-3 s makes cross-subject
    # near-duplicates that the leakage gate would refuse (see test_pretrain).
    ingest(
        sources,
        root,
        window_samples=128,
        sfreq=128.0,
        channels=("FZ", "CZ", "PZ", "O1"),
        run_labels={"1": 0, "2": 1},
        run_label_name="task",
        crop_end_seconds=3,
        progress=False,
    )
    uri = mlflow_store(tmp_path_factory)
    cfg = tiny(
        root,
        tmp_path / "ckpt",
        pretrained,
        "labels.name=task",
        "train.strategies=[frozen]",
        "data.channels=null",
        "data.max_windows=32",
        "tracking.enabled=true",
        f"tracking.uri={uri}",
        "data.split_fractions=[0.5, 0.25, 0.25]",
    )
    result = finetune(cfg)
    people = result.folds[0]
    assert not set(people["test"]) & (set(people["train"]) | set(people["val"]))
    rec = result.table.filter(
        (pl.col("strategy") == "frozen") & (pl.col("level") == "recording")
    ).row(0, named=True)
    assert 0 <= rec["auroc_low"] <= rec["auroc"] <= rec["auroc_high"] <= 1
    assert rec["n_units"] == 2 * len(people["test"])  # two recordings per test subject
    # a per-run label has no participant-level class: one line says so, no rows of n/a
    assert result.table.filter(pl.col("level") == "participant").height == 0
    assert "label varies" in result.dropped["participant"]
    assert "participant level not scored: " in result.format("all")
    # every unit is as long as the shortest recording allows (arithmetic: 57 1-s windows)
    assert "every unit is 32 windows (32 s), at offsets [0]" in result.length_match
    units = result.table.filter(pl.col("level") == "prediction")["unit"].to_list()
    assert units == ["channel-sequence (crop of 32 windows)", "window (all channels)"]
    runs = find_runs(uri, cfg.tracking.experiment)
    row = runs.filter(pl.col("run_id") == result.run_id).row(0, named=True)
    assert row["metrics.frozen.recording.auroc"] == pytest.approx(rec["auroc"])
    from mlflow import MlflowClient

    artifacts = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(result.run_id)}
    assert {
        "roc.html",
        "roc.json",
        "results.csv",
        "splits.json",
        "leakage.txt",
        "config.yaml",
    } <= artifacts


def _folds_for(planted, tmp_path, ckpt, *overrides):
    """(config, backbone, folds) of a tiny fine-tuning config over `planted` from `ckpt`."""
    cfg = tiny(planted, tmp_path, ckpt, *overrides)
    backbone = load_backbone(cfg, 128)
    index = recordings_index(planted)
    return (
        cfg,
        backbone,
        make_folds(cfg, index, recording_labels(planted, cfg.labels, index), backbone),
    )


def test_participants_seen_in_pretraining_are_kept_out_of_the_test_split(planted, tmp_path):
    from eegwb.config import to_dict
    from eegwb.model.config import ModelConfig
    from eegwb.model.eeg_model import EEGModel
    from eegwb.train.checkpoints import save_checkpoint

    mc = ModelConfig(window_samples=128, d_model=16, n_layers=1, headdim=8, d_state=8, chunk_size=8)
    seen = [f"{i:02d}" for i in range(1, 17)]  # pretraining used 16 of the 24, held out 17-24
    ckpt = save_checkpoint(
        tmp_path / "same_data.pt",
        {
            "model": EEGModel(mc).state_dict(),
            "config": {"model": to_dict(mc), "data": {"root": str(planted)}},
            "assignment": {"train": seen[:12], "val": seen[12:], "test": []},
        },
    )
    folds_for = functools.partial(_folds_for, planted, tmp_path, ckpt)

    cfg, backbone, (fold,) = folds_for()  # "avoid" (the default)
    assert backbone.seen == set(seen)
    assert fold.participants["test"] == [f"{i:02d}" for i in range(17, 25)]
    assert set(fold.participants["train"]) | set(fold.participants["val"]) == set(seen)
    assert check_folds(cfg, [fold], backbone)["pretraining_overlap"] == []

    cfg, backbone, folds = folds_for("data.pretraining_overlap=refuse")
    with pytest.raises(LeakageError, match="pretraining saw .* test participant"):
        check_folds(cfg, folds, backbone)
    with pytest.raises(ValueError, match="k-fold tests every participant"):
        folds_for("data.kfold=3")


def test_pretraining_overlap_is_detected_from_another_working_directory(
    planted, tmp_path, monkeypatch
):
    monkeypatch.chdir(planted.parent)  # pretraining names its data relative to here
    pre = load_config(
        PretrainConfig,
        None,
        [
            f"data.root={planted.name}",
            *TINY_MODEL,
            "data.max_windows=8",
            "data.split_fractions=[0.5, 0.2, 0.3]",
            "train.epochs=1",
            "train.batch_size=16",
            f"train.checkpoint_dir={tmp_path / 'ckpt'}",
            "tracking.enabled=false",
        ],
    )
    ckpt = pretrain(pre, bar=False).last_checkpoint
    seen = {
        p for s in ("train", "val") for p in torch.load(ckpt, weights_only=True)["assignment"][s]
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    folds_for = functools.partial(_folds_for, planted, tmp_path, ckpt)

    cfg, backbone, (fold,) = folds_for()  # "avoid"
    assert fold.participants["test"] and not set(fold.participants["test"]) & seen
    assert backbone.seen == seen
    cfg, backbone, folds = folds_for("data.pretraining_overlap=refuse")
    with pytest.raises(LeakageError, match="pretraining saw .* test participant"):
        check_folds(cfg, folds, backbone)


def test_unfindable_pretraining_root_is_not_taken_for_another_dataset(
    planted, tmp_path, caplog, monkeypatch
):
    from eegwb.config import to_dict
    from eegwb.model.config import ModelConfig
    from eegwb.model.eeg_model import EEGModel
    from eegwb.train.checkpoints import save_checkpoint
    from eegwb.train.finetune_data import load_backbone

    mc = ModelConfig(window_samples=128, d_model=16, n_layers=1, headdim=8, d_state=8, chunk_size=8)
    ckpt = save_checkpoint(
        tmp_path / "old.pt",
        {  # written before roots were recorded: as typed, relative
            "model": EEGModel(mc).state_dict(),
            "config": {"model": to_dict(mc), "data": {"root": "data/muse"}},
            "assignment": {"train": ["01", "02"], "val": ["03"], "test": []},
        },
    )
    monkeypatch.chdir(tmp_path)  # where no data/muse exists, whatever the repo holds
    with pytest.raises(LeakageError, match=r"old\.pt: pretraining read \['data/muse'\], not found"):
        load_backbone(tiny(planted, tmp_path, ckpt, "data.pretraining_overlap=refuse"), 128)
    backbone = load_backbone(tiny(planted, tmp_path, ckpt), 128)  # "avoid": goes on, loudly
    assert backbone.unchecked == ["data/muse"] and backbone.seen == set()
    assert "cannot be checked" in caplog.text


def test_cli_prints_the_results_table(planted, pretrained, tmp_path, capsys):
    from eegwb.cli import main

    code = main(
        [
            "finetune",
            "--config",
            str(TINY_YAML),
            "--strategies",
            "frozen",
            "--no-track",
            "--no-bar",
            "--set",
            f"data.root={planted}",
            "--set",
            f"pretrained.checkpoint={pretrained}",
            "--set",
            f"train.checkpoint_dir={tmp_path}",
            "--set",
            "train.epochs=2",
            "--levels",
            "all",
            "--predictions",
            str(tmp_path / "pred.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for strategy in ("frozen", "baseline"):
        for level in ("prediction", "recording", "participant"):
            assert f"{strategy:<10} {level:<11} " in out
    assert "mamba2_eeg_d16_l1_m50_mae_finetuned.pt" in out
    pred = pl.read_csv(tmp_path / "pred.csv")
    assert set(pred["strategy"]) == {"frozen", "baseline"} and pred["score"].is_between(0, 1).all()
    assert main(["finetune", "--config", str(TINY_YAML), "--set", "data.root=/nonexistent"]) == 2
    assert "data.root" in capsys.readouterr().err
    # the predictions CSV is not replaced without --overwrite, and that is known before training
    before = (tmp_path / "pred.csv").read_text()
    assert (
        main(
            [
                "finetune",
                "--config",
                str(TINY_YAML),
                "--predictions",
                str(tmp_path / "pred.csv"),
                "--set",
                f"data.root={planted}",
            ]
        )
        == 2
    )
    assert "pred.csv: already exists" in capsys.readouterr().err
    assert (tmp_path / "pred.csv").read_text() == before


def test_cli_help_and_levels(capsys):
    from eegwb.cli import main

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = capsys.readouterr().out
    assert "default configs/finetune.yaml" in text and "model.d_model" not in text
    with pytest.raises(SystemExit) as bad:
        main(["finetune", "--levels", "participants"])  # a typo: refused before any work
    assert bad.value.code == 2 and "invalid choice" in capsys.readouterr().err
