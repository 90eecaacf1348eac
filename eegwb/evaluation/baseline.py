"""The classic baseline every fine-tuned model must beat: band powers + logistic regression.

Per window and channel, Welch's PSD (scipy.signal.welch) is integrated over the canonical
EEG bands and log-transformed; the (channels x bands) features of the training windows
fit a standardised, class-balanced logistic regression (scikit-learn). It runs on exactly
the selections (splits) the fine-tuned model sees, and its window predictions go through
the same aggregation and participant bootstrap (`eegwb.evaluation.metrics`), so the two
rows of the results table are comparable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.signal import welch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from eegwb.data.layout import DatasetError, channel_array, read_recording
from eegwb.errors import InputError

UNIT = "window (all channels)"  # what one baseline prediction is
DEFAULT_BANDS_HZ = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),  # 45 Hz: mains (50/60 Hz) and most public data's low-pass stay out
}


@dataclass
class BaselineConfig:
    """Band-power features and the regression fitted on them."""

    bands_hz: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_BANDS_HZ))
    segment_seconds: float = (
        2.0  # Welch segment: 0.5 Hz resolution, several segments per 8 s window
    )
    relative: bool = False  # True divides by total power in the bands (removes gain differences)
    C: float = 1.0  # inverse L2 strength; features are standardised, so 1.0 is a mild prior
    max_iter: int = 2000

    def __post_init__(self) -> None:
        self.bands_hz = {str(k): (float(v[0]), float(v[1])) for k, v in self.bands_hz.items()}
        if not self.bands_hz:
            raise ValueError("baseline.bands_hz: give at least one band")
        for name, (lo, hi) in self.bands_hz.items():
            if not 0 <= lo < hi:
                raise ValueError(
                    f"baseline.bands_hz.{name}: need 0 <= low < high, got ({lo}, {hi})"
                )
        if self.segment_seconds <= 0:
            raise ValueError(f"baseline.segment_seconds must be > 0, got {self.segment_seconds}")
        if self.C <= 0:
            raise ValueError(f"baseline.C must be > 0, got {self.C}")


def band_powers(
    x: np.ndarray,
    sfreq: float,
    bands_hz: Mapping[str, tuple[float, float]],
    segment_seconds: float = 2.0,
    relative: bool = False,
) -> np.ndarray:
    """log10 band power. x (..., t) in µV -> (..., n_bands) in log10(µV²).

    Bands above Nyquist raise, since a silently empty band is a feature of zeros.
    """
    nyquist = sfreq / 2
    for name, (lo, hi) in bands_hz.items():
        if lo >= nyquist:
            raise InputError(f"band {name!r} ({lo}-{hi} Hz) is above Nyquist ({nyquist} Hz)")
    nperseg = min(x.shape[-1], max(8, round(segment_seconds * sfreq)))
    freqs, psd = welch(x, fs=sfreq, nperseg=nperseg, axis=-1)  # psd (..., f) µV²/Hz
    df = freqs[1] - freqs[0]
    powers = np.stack(
        [psd[..., (freqs >= lo) & (freqs < hi)].sum(-1) * df for lo, hi in bands_hz.values()],
        axis=-1,
    )  # (..., n_bands)
    if relative:
        powers = powers / powers.sum(-1, keepdims=True).clip(min=1e-30)
    return np.log10(powers.clip(min=1e-30))


def window_features(
    root: str | Path,
    selection: pl.DataFrame,
    channels: Sequence[str],
    cfg: BaselineConfig,
    progress: bool = False,
) -> tuple[np.ndarray, pl.DataFrame]:
    """Band-power features of every selected window.

    Returns features (n_windows, n_channels * n_bands) and a table (participant, run,
    window) of the same length, in selection order.
    """
    root = Path(root)
    channels = [c.upper() for c in channels]
    feats, rows = [], []
    for file, participant, run, i, j in tqdm(
        selection.select("file", "participant", "run", "row_start", "row_end").iter_rows(),
        total=selection.height,
        desc="band powers",
        disable=not progress,
    ):
        meta, table = _read(root / file, channels)
        x = np.stack([channel_array(table, c)[i:j] for c in channels], axis=1)  # (w, c, t)
        p = band_powers(
            x, meta.sfreq, cfg.bands_hz, cfg.segment_seconds, cfg.relative
        )  # (w, c, bands)
        feats.append(p.reshape(p.shape[0], -1))
        rows.append(
            pl.DataFrame({"participant": participant, "run": run, "window": np.arange(i, j)})
        )
    if not feats:
        raise DatasetError(f"{root}: empty selection, no windows to compute band powers of")
    return np.concatenate(feats), pl.concat(rows)


def _read(path: Path, channels: list[str]):
    try:
        return read_recording(path, channels)
    except DatasetError:
        raise
    except Exception as err:  # pyarrow names a missing column in its own words
        raise DatasetError(f"{path}: cannot read channels {channels} ({err})") from err


def feature_names(channels: Sequence[str], cfg: BaselineConfig) -> list[str]:
    return [f"{c.upper()}_{band}" for c in channels for band in cfg.bands_hz]


def fit_baseline(features: np.ndarray, labels: np.ndarray, cfg: BaselineConfig) -> Pipeline:
    """Standardise, then class-balanced L2 logistic regression. features (n, f), labels (n,) 0/1."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise InputError(f"baseline: training windows hold one class only ({np.unique(labels)})")
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=cfg.C, class_weight="balanced", max_iter=cfg.max_iter),
    )
    return model.fit(features, labels)


def attach_labels(rows: pl.DataFrame, labels: pl.DataFrame, where: str) -> pl.DataFrame:
    """Join the recording label table (participant, run, label) onto unit rows; unlabelled
    units are an error, since they would otherwise drop out of the evaluation silently."""
    out = rows.join(
        labels.select("participant", "run", "label"), on=["participant", "run"], how="left"
    )
    missing = out.filter(pl.col("label").is_null())
    if missing.height:
        raise DatasetError(
            f"{where}: {missing.height} units have no label, e.g. "
            f"{missing.select('participant', 'run').unique().rows()[:3]}"
        )
    return out


def run_baseline(
    root: str | Path,
    train: pl.DataFrame,
    test: pl.DataFrame,
    labels: pl.DataFrame,
    channels: Sequence[str],
    cfg: BaselineConfig | None = None,
    progress: bool = False,
) -> tuple[pl.DataFrame, Pipeline]:
    """Fit on the `train` selection, score the `test` selection.

    Returns the test prediction table (participant, run, window, label, score) for
    `eegwb.evaluation.metrics`, and the fitted pipeline.
    """
    cfg = cfg or BaselineConfig()
    x_train, rows_train = window_features(root, train, channels, cfg, progress)
    rows_train = attach_labels(rows_train, labels, f"{root} (baseline train)")
    model = fit_baseline(x_train, rows_train["label"].to_numpy(), cfg)
    x_test, rows_test = window_features(root, test, channels, cfg, progress)
    rows_test = attach_labels(rows_test, labels, f"{root} (baseline test)")
    score = model.predict_proba(x_test)[:, 1]
    return rows_test.with_columns(pl.Series("score", score)), model
