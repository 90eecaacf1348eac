"""Config loading: YAML + --set overrides onto nested dataclasses; every bad key or value
fails before any work with a message naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import torch

from eegwb.cli import main
from eegwb.config import (
    ConfigError,
    apply_overrides,
    config_diff,
    dump_yaml,
    from_dict,
    load_config,
    resolve_key,
    to_dict,
)
from eegwb.train.config import GateConfig, PretrainConfig

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


@dataclass
class Inner:
    size: int = 4
    ratio: float = 0.5
    kind: Literal["a", "b"] = "a"
    names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    pair: tuple[float, float] = (0.1, 0.9)
    flag: bool = False
    label: str | None = None


def test_defaults_yaml_and_overrides_apply(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  size: 7\n  names: [FZ, CZ]\npair: [0.2, 0.8]\n")
    cfg = load_config(Outer, path, ["inner.ratio=1", "flag=true", "kind=b", "label=null"])
    assert cfg.inner == Inner(size=7, ratio=1.0, kind="b", names=["FZ", "CZ"])
    assert isinstance(cfg.inner.ratio, float) and cfg.pair == (0.2, 0.8) and cfg.flag is True
    # Round trip through plain data and YAML gives the same config.
    assert from_dict(Outer, to_dict(cfg)) == cfg
    again = tmp_path / "again.yaml"
    again.write_text(dump_yaml(cfg))
    assert load_config(Outer, again) == cfg
    assert config_diff(cfg, Outer()) == {
        "flag": (True, False),
        "inner.kind": ("b", "a"),
        "inner.names": (["FZ", "CZ"], None),
        "inner.ratio": (1.0, 0.5),
        "inner.size": (7, 4),
        "pair": ([0.2, 0.8], [0.1, 0.9]),
    }


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("inner:\n  sise: 3\n", r"c\.yaml: inner\.sise: unknown key \(did you mean 'size'"),
        ("extra: 1\n", r"extra: unknown key"),
        ("inner:\n  size: many\n", r"inner\.size: expected an integer, got 'many'"),
        ("inner:\n  size: 0\n", r"inner\.size: must be >= 1, got 0"),
        ("inner:\n  kind: c\n", r"inner\.kind: 'c' is not one of \['a', 'b'\]"),
        ("flag: 1\n", r"flag: expected true/false"),
        ("pair: [1, 2, 3]\n", r"pair: expected 2 values, got 3"),
        ("[1, 2]\n", r"expected a mapping at the top level"),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=expected):
        load_config(Outer, path)


def test_override_errors_name_the_override() -> None:
    with pytest.raises(
        ConfigError,
        match=r"--set inner\.sizee=3: inner\.sizee: unknown key \(did you mean 'inner\.size'",
    ):
        load_config(Outer, None, ["inner.sizee=3"])
    with pytest.raises(ConfigError, match=r"expected KEY=VALUE"):
        load_config(Outer, None, ["inner.size"])
    with pytest.raises(ConfigError, match=r"inner\.size: must be >= 1"):
        load_config(Outer, None, ["size=-2"])
    assert resolve_key(Outer, "ratio") == "inner.ratio"
    assert apply_overrides(Outer, {}, {"size": 3}) == {"inner": {"size": 3}}
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_config(Outer, "/nonexistent/c.yaml")


@pytest.mark.parametrize("name", ["pretrain", "tiny", "seed_original"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(PretrainConfig, CONFIGS / f"{name}.yaml")
    assert cfg.model.window_samples == 2048
    if name == "pretrain":  # the original pipeline's defaults
        assert (cfg.model.d_model, cfg.model.n_layers, cfg.masking.style) == (128, 6, "mae")
        assert cfg.data.root == "data/synthetic"
    if name == "seed_original":
        assert cfg.model.bidirectional is False and cfg.model.target == "embedding"
    if name == "tiny":
        assert cfg.model.d_model <= 32 and cfg.train.epochs <= 12  # seconds, not minutes


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("masking.mask_ratio=1.5", r"masking\.mask_ratio: must be in \[0, 1\], got 1\.5"),
        (
            "model.d_model=100",
            r"model\.headdim: expand \* d_model = 200 is not a multiple of headdim",
        ),
        ("model.backbone=lstm", r"model\.backbone: 'lstm' is not one of"),
        ("train.lr=0", r"train\.lr: must be > 0"),
        ("train.batch_sise=4", r"train\.batch_sise: unknown key"),
        (
            "data.split_fractions=[0.9, 0.0, 0.1]",
            r"data\.split_fractions: must sum to 1 with a non-empty val",
        ),
        ("gates=[{epoch: 99, max: 0.9}]", r"gates\[0\]\.epoch: 99 is after the last epoch"),
        ("gates=[{epoch: 1}]", r"gates\[0\]: a gate needs max and/or min"),
        ("gates=[{epoch: 1, metric: acc, max: 1}]", r"gates\[0\]\.metric: 'acc' is not one of"),
    ],
)
def test_pretrain_config_errors_name_the_key(override: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(PretrainConfig, CONFIGS / "tiny.yaml", [override])


def test_dataset_path_checked_before_work(tmp_path: Path, tiny_dataset: Path) -> None:
    missing = load_config(PretrainConfig, CONFIGS / "tiny.yaml", [f"data.root={tmp_path / 'nope'}"])
    with pytest.raises(ConfigError, match=r"data\.root: dataset directory .*nope' does not exist"):
        missing.check_paths()
    wrong_size = load_config(PretrainConfig, CONFIGS / "tiny.yaml", [f"data.root={tiny_dataset}"])
    with pytest.raises(
        ConfigError, match=r"model\.window_samples: 2048, but dataset .* has windows of \[32\]"
    ):
        wrong_size.check_paths()
    fits = load_config(
        PretrainConfig,
        CONFIGS / "tiny.yaml",
        [f"data.root={tiny_dataset}", "model.window_samples=32"],
    )
    fits.check_paths()
    no_splits = load_config(
        PretrainConfig,
        CONFIGS / "tiny.yaml",
        [f"data.root={tiny_dataset}", "model.window_samples=32", "data.splits=none.json"],
    )
    with pytest.raises(ConfigError, match=r"data\.splits: splits file 'none\.json' does not exist"):
        no_splits.check_paths()


def test_gate_check() -> None:
    gate = GateConfig(epoch=2, metric="val_loss", max=0.9)
    assert gate.check(0.5)["passed"] and not gate.check(0.95)["passed"]
    both = GateConfig(epoch=1, metric="var_ratio", min=0.1, max=2.0, action="warn")
    assert [both.check(v)["passed"] for v in (0.05, 1.0, 3.0)] == [False, True, False]


def test_cli_rejects_bad_config_before_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = tmp_path / "ckpt"
    code = main(
        [
            "pretrain",
            "--config",
            str(CONFIGS / "tiny.yaml"),
            "--set",
            "masking.mask_ratio=1.5",
            "--set",
            f"train.checkpoint_dir={ckpt}",
        ]
    )
    assert code == 2
    assert "masking.mask_ratio" in capsys.readouterr().err
    assert not ckpt.exists()  # nothing ran
    code = main(
        [
            "sweep",
            "--config",
            str(CONFIGS / "tiny.yaml"),
            "--param",
            "masking.mask_ratio=0.2,1.5",
            "--set",
            f"train.checkpoint_dir={ckpt}",
        ]
    )
    assert code == 2
    assert "sweep run mask_ratio=1.5" in capsys.readouterr().err
    assert not ckpt.exists()


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the error raised when CUDA is missing"
)
def test_cuda_without_cuda_is_a_config_error(tiny_dataset: Path, tmp_path: Path) -> None:
    from eegwb.train.pretrain import pretrain

    cfg = load_config(
        PretrainConfig,
        CONFIGS / "tiny.yaml",
        [
            f"data.root={tiny_dataset}",
            "model.window_samples=32",
            "train.device=cuda",
            f"train.checkpoint_dir={tmp_path / 'ckpt'}",
        ],
    )
    with pytest.raises(ConfigError, match=r"train\.device: 'cuda' was asked for"):
        pretrain(cfg, bar=False)
    assert not (tmp_path / "ckpt").exists()
