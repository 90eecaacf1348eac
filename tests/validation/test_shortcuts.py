"""The shortcut audit: nuisance variables that predict a label are flagged, on real EEG
(EEGMAT's rest recordings are 3x longer than its arithmetic ones) and on a synthetic cohort
with a planted amplitude confound; the same data without the nuisance is not flagged."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eegwb.data.layout import recordings_index
from eegwb.data.splits import SplitData
from eegwb.data.synthetic import SynthConfig, generate_cohort
from eegwb.train.labels import LabelSource, recording_labels
from eegwb.validation.shortcuts import (
    ShortcutConfig,
    audit_dataset,
    audit_shortcuts,
    shortcut_status,
)

FAST = ShortcutConfig(n_boot=200)


def _by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def test_eegmat_length_and_position_are_flagged_as_ingested(eegmat_small):
    """Rest (run 1, ~180 s) vs arithmetic (run 2, ~60 s): length alone gives the label."""
    labels = recording_labels(eegmat_small, LabelSource(name="task"))
    checks = _by_name(
        audit_dataset(
            eegmat_small, SplitData(eegmat_small).resolved(), labels, label_name="task", cfg=FAST
        )
    )
    length = checks["shortcut/n_windows"]
    assert length.status == "fail" and length.numbers["auroc"] == pytest.approx(1.0)
    assert length.numbers["unit"] == "recording" and length.numbers["n_participants"] == 8
    assert "label 1: mostly 7" in length.summary and "length_match=crop" in length.summary
    position = checks["shortcut/position_s"]  # windows past the 7th exist only at rest
    assert position.status == "fail" and position.numbers["unit"] == "window"
    assert position.numbers["auroc"] > 0.75 and position.numbers["auroc_low"] > 0.5
    order = checks["shortcut/recording_order"]  # rest was always recorded first: a design confound
    assert order.status == "fail" and "no crop removes it" in order.summary
    # per-participant columns (subject-info.csv) cannot predict a label every participant has
    for name in ("Age", "Gender", "Recording year", "Count quality"):
        assert checks[f"shortcut/metadata:{name}"].status == "pass"
    assert "shortcut/metadata:task" not in checks  # the label itself is not a nuisance
    # the EDF's recording date reaches the dataset (anonymised to 1 January of the year)
    index = recordings_index(eegmat_small)
    assert index.filter(pl.col("participant") == "00")["meas_date"][0].startswith("2011-01-01")
    assert checks["shortcut/recording_date"].status == "pass"


def test_eegmat_cut_to_equal_lengths_is_not_flagged(eegmat_small):
    labels = recording_labels(eegmat_small, LabelSource(name="task"))
    first7 = SplitData(eegmat_small).resolved().with_columns(pl.lit(7, pl.Int64).alias("row_end"))
    checks = _by_name(audit_dataset(eegmat_small, first7, labels, label_name="task", cfg=FAST))
    assert checks["shortcut/n_windows"].status == "pass"
    assert "constant (7): carries nothing" in checks["shortcut/n_windows"].summary
    assert checks["shortcut/position_s"].status == "pass"
    assert checks["shortcut/recording_order"].status == "fail"  # cropping cannot change the design


def _audit_cohort(tmp_path, defects: tuple[str, ...]):
    """(manifest, audit) of a 16-person synthetic Muse cohort with `defects` planted."""
    root = tmp_path / "cohort"
    manifest = generate_cohort(
        root,
        SynthConfig(
            n_participants=16, montage="muse", window_samples=256, n_windows=3, defects=defects
        ),
        progress=False,
    )
    labels = recording_labels(root, LabelSource(name="remission"))
    resolved = SplitData(root).resolved()
    return manifest, audit_dataset(root, resolved, labels, label_name="remission", cfg=FAST)


@pytest.mark.parametrize("defects, status", [(("amplitude_confound",), "fail"), ((), "pass")])
def test_planted_amplitude_confound_is_flagged_and_its_absence_is_not(tmp_path, defects, status):
    manifest, report = _audit_cohort(tmp_path, defects)
    checks = _by_name(report)
    amplitude = checks["shortcut/amplitude_uv"]
    assert amplitude.status == status, amplitude.summary
    if defects:  # the manifest says who was scaled: exactly the label-1 participants
        planted = next(d for d in manifest["defects"] if d["kind"] == "amplitude_confound")
        ones = {p["participant"] for p in manifest["participants"] if p["label"] == 1}
        assert set(planted["participants"]) == ones
        assert amplitude.numbers["auroc"] >= 0.9 and "no crop removes it" in amplitude.summary
    else:
        assert amplitude.numbers["auroc_low"] <= 0.5
    # the gain changes the scale, not the line-noise share, and never the lengths
    assert checks["shortcut/line_noise"].status == "pass"
    assert checks["shortcut/n_windows"].summary.endswith("constant (3): carries nothing")


@pytest.mark.parametrize("defects, status", [(("rank_confound",), "fail"), ((), "pass")])
def test_planted_rank_confound_is_flagged_and_its_absence_is_not(tmp_path, defects, status):
    """One spatial component removed from one class's recordings (as ICA cleaning does, and as
    EEGMAT's authors did more often at rest) leaves their channel covariance rank-deficient."""
    manifest, report = _audit_cohort(tmp_path, defects)
    null = _by_name(report)["shortcut/null_space"]
    assert null.status == status, null.summary
    frame = report.frames["recording"]
    ones = {p["participant"] for p in manifest["participants"] if p["label"] == 1}
    planted = frame.filter(pl.col("participant").is_in(sorted(ones)))["null_space"]
    others = frame.filter(~pl.col("participant").is_in(sorted(ones)))["null_space"]
    if defects:
        assert planted.max() < -4 < -2 < others.min()  # rounding level vs a full-rank cap
        assert "cleaned differently" in null.summary
    else:
        assert min(planted.min(), others.min()) > -2
    assert _by_name(report)["shortcut/amplitude_uv"].status == "pass"  # one nuisance, not two


def _frame(values, n_people: int = 20, per_person: int = 2) -> pl.DataFrame:
    people = np.repeat([f"p{i:02d}" for i in range(n_people)], per_person)
    label = np.tile([0, 1], n_people * per_person // 2)
    return pl.DataFrame({"participant": people, "label": label, **values(label)})


def test_thresholds_and_categories_on_known_frames():
    rng = np.random.default_rng(0)
    frame = _frame(
        lambda y: {
            "n_windows": y * 3.0 + rng.normal(0, 0.5, y.size),  # separates the classes
            "amplitude_uv": rng.normal(0, 1, y.size),  # carries nothing
            "line_noise": y + rng.normal(0, 1.2, y.size),  # weaker: d' ~ 0.8, AUROC ~ 0.7
            "channel_set": np.where(y == 1, "A,B", "A,B,C"),  # categorical, one-hot
            "sfreq": np.full(y.size, 256.0),
        }
    )
    checks = {c.name: c for c in audit_shortcuts(frame, FAST, unit="recording")}
    assert checks["shortcut/n_windows"].status == "fail"
    assert checks["shortcut/channel_set"].status == "fail"
    assert "mostly A,B (20 of 20)" in checks["shortcut/channel_set"].summary
    assert checks["shortcut/amplitude_uv"].status == "pass"
    assert checks["shortcut/line_noise"].status in ("warn", "fail")
    assert checks["shortcut/line_noise"].numbers["auroc_low"] > 0.5
    assert checks["shortcut/sfreq"].summary.endswith("constant (256): carries nothing")
    # too few participants to cross-validate over: one line saying so, not a verdict per variable
    (few,) = audit_shortcuts(frame.filter(pl.col("participant") < "p03"), FAST, unit="recording")
    assert few.name == "shortcut/audit" and few.status == "pass" and "not assessed" in few.summary


def test_decision_table():
    cfg = ShortcutConfig()
    assert shortcut_status(0.80, 0.55, cfg) == "fail"  # clear and strong
    assert shortcut_status(0.62, 0.52, cfg) == "warn"  # clear but weak
    assert shortcut_status(0.85, 0.45, cfg) == "warn"  # strong, too few people to be sure
    assert shortcut_status(0.85, float("nan"), cfg) == "warn"
    assert shortcut_status(0.60, 0.40, cfg) == "pass"
    assert shortcut_status(0.30, 0.10, cfg) == "pass"  # worse than chance is no shortcut
    with pytest.raises(ValueError, match="fail_auroc"):
        ShortcutConfig(fail_auroc=0.5)
