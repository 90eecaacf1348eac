"""Band powers against known spectra, and the baseline on a constructed dataset with a
planted alpha effect (and without one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from eegwb.data.layout import DatasetError, RecordingMeta, build_table, write_recording
from eegwb.evaluation.baseline import (
    DEFAULT_BANDS_HZ,
    BaselineConfig,
    band_powers,
    feature_names,
    run_baseline,
    window_features,
)
from eegwb.evaluation.metrics import evaluate

SFREQ = 128.0
T = 256  # 2 s windows
CHANNELS = ["TP9", "AF7", "AF8", "TP10"]


def test_band_powers_of_a_sine_and_of_white_noise():
    t = np.arange(int(8 * SFREQ)) / SFREQ
    amp = 20.0
    sine = amp * np.sin(2 * np.pi * 10.0 * t)
    p = 10 ** band_powers(sine, SFREQ, DEFAULT_BANDS_HZ)  # (5,) µV²
    names = list(DEFAULT_BANDS_HZ)
    assert names[int(np.argmax(p))] == "alpha"
    assert p[names.index("alpha")] == pytest.approx(amp**2 / 2, rel=0.05)  # a sine's power is A²/2
    noise = np.random.default_rng(0).normal(0, 5.0, (200, t.size))
    pw = (10 ** band_powers(noise, SFREQ, {"a": (4.0, 8.0), "b": (8.0, 16.0)})).mean(0)
    # white noise: variance spread evenly over 0..Nyquist, so power scales with bandwidth
    assert pw[0] == pytest.approx(25.0 * 4 / (SFREQ / 2), rel=0.1)
    assert pw[1] / pw[0] == pytest.approx(2.0, rel=0.1)
    rel = 10 ** band_powers(noise[:3], SFREQ, {"a": (4.0, 8.0), "b": (8.0, 16.0)}, relative=True)
    assert rel.sum(-1) == pytest.approx(np.ones(3))
    with pytest.raises(ValueError, match="Nyquist"):
        band_powers(sine, SFREQ, {"high": (70.0, 80.0)})


def test_config_is_validated():
    with pytest.raises(ValueError, match="bands_hz.alpha"):
        BaselineConfig(bands_hz={"alpha": (13.0, 8.0)})
    with pytest.raises(ValueError, match="C must be"):
        BaselineConfig(C=0)


def write_alpha_cohort(
    root: Path, n_participants: int, effect_uv: float, seed: int
) -> pl.DataFrame:
    """One run per participant; class-1 participants carry extra 10 Hz alpha of `effect_uv`
    amplitude on AF7 (phase random per window) on top of 1/f-ish noise. Returns the label table."""
    rng = np.random.default_rng(seed)
    pos = {
        c: list(v) for c, v in zip(CHANNELS, np.eye(3).tolist() + [[0.0, -1.0, 0.0]], strict=True)
    }
    n_windows = 12
    tt = np.arange(T) / SFREQ
    rows = []
    for i in range(n_participants):
        pid, label = f"{i:02d}", i % 2
        signals = {}
        for c in CHANNELS:
            x = np.cumsum(rng.normal(0, 1.0, (n_windows, T)), axis=1)  # brown noise, EEG-like slope
            x = x - x.mean(1, keepdims=True) + rng.normal(0, 3.0, (n_windows, T))
            x *= rng.uniform(0.7, 1.3)  # per-person gain
            if label and c == "AF7":
                phase = rng.uniform(0, 2 * np.pi, (n_windows, 1))
                x += effect_uv * np.sin(2 * np.pi * 10.0 * tt + phase)
            signals[c] = x.astype(np.float32)
        meta = RecordingMeta(
            sfreq=SFREQ,
            window_samples=T,
            hop_samples=T,
            channel_positions=pos,
            montage="muse",
            labels={"y": label},
        )
        write_recording(root, build_table(pid, "1", signals, np.arange(n_windows) * T, meta))
        rows.append((f"sub-{pid}_run-1.parquet", pid, "1", str(label), label))
    return pl.DataFrame(rows, schema=["file", "participant", "run", "value", "label"], orient="row")


def selection(labels: pl.DataFrame, participants: list[str]) -> pl.DataFrame:
    return labels.filter(pl.col("participant").is_in(participants)).select(
        "file",
        "participant",
        "run",
        pl.lit(0, pl.Int64).alias("row_start"),
        pl.lit(12, pl.Int64).alias("row_end"),
    )


@pytest.mark.parametrize("effect_uv, expect_signal", [(6.0, True), (0.0, False)])
def test_baseline_finds_a_planted_effect_and_nothing_in_a_null(tmp_path, effect_uv, expect_signal):
    labels = write_alpha_cohort(tmp_path, n_participants=24, effect_uv=effect_uv, seed=1)
    ps = labels["participant"].to_list()
    train, test = selection(labels, ps[:12]), selection(labels, ps[12:])
    pred, model = run_baseline(tmp_path, train, test, labels, CHANNELS)
    assert pred.height == 12 * 12 and set(pred["participant"]) == set(ps[12:])
    assert pred["score"].is_between(0, 1).all()
    m = evaluate(pred, "recording", n_boot=500)
    if expect_signal:
        assert m.auroc >= 0.9 and m.auroc_ci[0] > 0.5
        # the regression leans on AF7 alpha, where the effect was planted
        coef = model[-1].coef_[0]
        names = feature_names(CHANNELS, BaselineConfig())
        assert names[int(np.argmax(np.abs(coef)))] == "AF7_alpha"
    else:
        assert m.auroc_ci[0] <= 0.5 <= m.auroc_ci[1]


def test_window_features_shapes_and_errors(tmp_path):
    labels = write_alpha_cohort(tmp_path, n_participants=2, effect_uv=0.0, seed=2)
    sel = selection(labels, ["00"]).with_columns(
        pl.lit(3, pl.Int64).alias("row_start"), pl.lit(7, pl.Int64).alias("row_end")
    )
    cfg = BaselineConfig()
    x, rows = window_features(tmp_path, sel, ["af7", "tp9"], cfg)
    assert x.shape == (4, 2 * len(cfg.bands_hz)) and np.isfinite(x).all()
    assert rows["window"].to_list() == [3, 4, 5, 6]
    with pytest.raises(DatasetError, match="sub-00_run-1.parquet"):
        window_features(tmp_path, sel, ["FZ"], cfg)
    with pytest.raises(DatasetError, match="no label"):
        run_baseline(
            tmp_path,
            selection(labels, ["00", "01"]),
            sel,
            labels.filter(pl.col("participant") == "00"),
            CHANNELS,
        )
