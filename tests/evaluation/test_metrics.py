"""Metrics against known answers: perfect, reversed and tied scores, sklearn as an oracle,
participant aggregation, and bootstrap coverage on a null with clustered units."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from eegwb.evaluation.metrics import (
    MetricsError,
    _weighted_auroc,
    aggregate,
    auroc,
    balanced_accuracy,
    best_threshold,
    bootstrap_ci,
    confusion_matrix,
    evaluate,
    evaluate_levels,
    roc_curve,
)


def test_auroc_known_answers():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert auroc(y, s) == 1.0
    assert auroc(y, -s) == 0.0
    assert auroc(y, np.full(5, 0.4)) == 0.5
    assert np.isnan(auroc(np.ones(4), np.arange(4.0)))


def test_auroc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + 0.5 * y, 1)  # rounding makes many ties
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_weighted_auroc_equals_auroc_on_repeated_units():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40).astype(bool)
    s = np.round(rng.normal(size=40), 1)
    w = rng.integers(0, 4, (5, 40)).astype(float)
    got = _weighted_auroc(w, y, s)
    for r in range(5):
        rep = np.repeat(np.arange(40), w[r].astype(int))
        assert got[r] == pytest.approx(auroc(y[rep], s[rep]), abs=1e-12)


def test_balanced_accuracy_and_confusion():
    y = np.array([1, 1, 1, 1, 0, 0])
    p = np.array([1, 1, 1, 0, 0, 1])
    assert balanced_accuracy(y, p) == pytest.approx(0.5 * (3 / 4 + 1 / 2))
    assert confusion_matrix(y, p).tolist() == [[1, 1], [1, 3]]
    # predicting the majority class everywhere is chance, whatever the imbalance
    assert balanced_accuracy(y, np.ones(6)) == 0.5


def test_roc_curve_area_is_auroc():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    roc = roc_curve(y, s)
    assert roc.row(0)[:2] == (0.0, 0.0) and roc.row(-1)[:2] == (1.0, 1.0)
    assert (roc["fpr"].diff().drop_nulls() >= 0).all()
    area = np.trapezoid(roc["tpr"].to_numpy(), roc["fpr"].to_numpy())
    assert area == pytest.approx(auroc(y, s), abs=1e-12)
    with pytest.raises(MetricsError, match="both classes"):
        roc_curve(np.zeros(3), np.arange(3.0))


def _pred(participants, runs, labels, scores) -> pl.DataFrame:
    return pl.DataFrame(
        {"participant": participants, "run": runs, "label": labels, "score": scores}
    )


def test_aggregate_means_scores_per_recording_and_participant():
    pred = _pred(
        ["a", "a", "a", "b", "b"],
        ["1", "1", "2", "1", "1"],
        [1, 1, 1, 0, 0],
        [0.2, 0.4, 0.9, 0.1, 0.3],
    )
    rec = aggregate(pred, "recording").sort("participant", "run")
    assert rec["score"].to_list() == pytest.approx([0.3, 0.9, 0.2])
    assert rec["n_units"].to_list() == [2, 1, 2]
    part = aggregate(pred, "participant").sort("participant")
    assert part["score"].to_list() == pytest.approx([0.5, 0.2])


def test_participant_level_refused_when_label_varies_within_participant():
    # eegmat-like: rest (0) and arithmetic (1) are two runs of the same person
    pred = _pred(["a", "a", "b", "b"], ["1", "2", "1", "2"], [0, 1, 0, 1], [0.2, 0.8, 0.3, 0.7])
    with pytest.raises(MetricsError, match="more than one label"):
        aggregate(pred, "participant")
    out = evaluate_levels(pred, n_boot=50)
    assert isinstance(out["participant"], str) and "label varies" in out["participant"]
    assert out["recording"].auroc == 1.0


def test_bad_prediction_tables_are_refused():
    with pytest.raises(MetricsError, match="missing columns"):
        aggregate(pl.DataFrame({"participant": ["a"], "score": [0.1]}), "recording")
    with pytest.raises(MetricsError, match="0 or 1"):
        aggregate(_pred(["a"], ["1"], [2], [0.1]), "recording")
    with pytest.raises(MetricsError, match="non-finite"):
        aggregate(_pred(["a"], ["1"], [1], [float("nan")]), "recording")
    with pytest.raises(MetricsError, match="only class"):
        evaluate(_pred(["a", "b"], ["1", "1"], [1, 1], [0.1, 0.2]))


def _clustered_null(rng, n_participants=20, units_each=10):
    """Null data: labels per participant, scores driven by a per-person offset only."""
    lab = rng.permutation(
        np.r_[np.zeros(n_participants // 2), np.ones(n_participants - n_participants // 2)]
    )
    offset = rng.normal(0, 1, n_participants)
    part = np.repeat(np.arange(n_participants), units_each).astype(str)
    score = 1 / (1 + np.exp(-(np.repeat(offset, units_each) + rng.normal(0, 1, part.size))))
    return np.repeat(lab, units_each).astype(int), score, part


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_participant_bootstrap_covers_null_and_unit_bootstrap_does_not(method):
    rng = np.random.default_rng(3)
    reps, hit_participant, hit_unit = 100, 0, 0
    for r in range(reps):
        y, s, p = _clustered_null(rng)
        lo, hi = bootstrap_ci(y, s, p, n_boot=200, seed=r, method=method)["auroc"]
        hit_participant += lo <= 0.5 <= hi
        units = np.arange(y.size).astype(str)
        lo, hi = bootstrap_ci(y, s, units, n_boot=200, seed=r, method=method)["auroc"]
        hit_unit += lo <= 0.5 <= hi
    # nominal 95%; 100 replicates give a binomial sd of ~2 points
    assert hit_participant / reps >= 0.86
    # treating 200 correlated units as independent gives intervals that are far too narrow
    assert hit_unit / reps <= 0.8


def test_bootstrap_ci_brackets_estimate_and_is_seeded():
    rng = np.random.default_rng(4)
    y, s, p = _clustered_null(rng)
    s = s + 0.3 * y  # a real effect
    a = bootstrap_ci(y, s, p, n_boot=300, seed=7)
    b = bootstrap_ci(y, s, p, n_boot=300, seed=7)
    assert a == b
    lo, hi = a["auroc"]
    assert lo < auroc(y, s) < hi
    assert a["n_valid"][0] > 250
    single = bootstrap_ci(y[:10], s[:10], p[:10], n_boot=50)
    assert np.isnan(single["auroc"][0]) and single["n_valid"][0] == 0


def test_evaluate_reports_every_level_with_cis():
    rng = np.random.default_rng(5)
    rows = []
    for i in range(16):
        lab = i % 2
        for run in ("1", "2"):
            for _ in range(4):
                rows.append(
                    (
                        f"p{i}",
                        run,
                        lab,
                        float(np.clip(0.5 + 0.3 * (lab - 0.5) + rng.normal(0, 0.2), 0, 1)),
                    )
                )
    pred = pl.DataFrame(rows, schema=["participant", "run", "label", "score"], orient="row")
    out = evaluate_levels(pred, n_boot=200)
    assert [out[k].n_units for k in ("prediction", "recording", "participant")] == [128, 32, 16]
    for m in out.values():
        assert m.auroc_ci[0] <= m.auroc <= m.auroc_ci[1]
        assert sum(map(sum, m.confusion)) == m.n_units
        assert m.summary()["auroc_low"] == m.auroc_ci[0]
    # averaging windows removes window noise, so the aggregate separates better
    assert out["participant"].auroc >= out["prediction"].auroc


def test_best_threshold_maximises_balanced_accuracy():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.60, 0.65, 0.7, 0.8, 0.85, 0.9])  # all above 0.5: default threshold is chance
    t = best_threshold(y, s)
    assert balanced_accuracy(y, s >= t) == 1.0
    assert balanced_accuracy(y, s >= 0.5) == 0.5
    assert best_threshold(y, np.full(6, 0.3)) == 0.3


def test_paired_auroc_difference_says_who_ranked_better_on_the_same_people():
    from eegwb.evaluation.metrics import paired_auroc_difference

    rng = np.random.default_rng(0)
    people = [f"p{i:02d}" for i in range(30)]
    label = np.array([i % 2 for i in range(30)])
    good = _pred(people, ["1"] * 30, label, np.clip(label * 0.6 + rng.uniform(0, 0.4, 30), 0, 1))
    noise = _pred(people, ["1"] * 30, label, rng.uniform(0, 1, 30))
    d = paired_auroc_difference(good, noise, "recording", n_boot=500)
    assert d.auroc_a == 1.0 and d.difference == d.auroc_a - d.auroc_b
    assert 0 < d.ci[0] <= d.difference <= d.ci[1] and d.n_participants == 30
    same = paired_auroc_difference(noise, noise, "participant", n_boot=200)
    assert same.difference == 0 and same.ci == (0.0, 0.0)  # paired: identical models never differ
    # "prediction" level compares recordings: the baseline need not score the same units
    assert paired_auroc_difference(good, noise, "prediction", n_boot=50).level == "recording"
    with pytest.raises(MetricsError, match="share no units"):
        paired_auroc_difference(good, _pred(["zz"], ["9"], [1], [0.5]), "recording")


def test_roc_chart_leaves_room_around_the_unit_square():
    from eegwb.evaluation.metrics import roc_chart

    spec = roc_chart(
        roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])).with_columns(
            pl.lit("full").alias("strategy")
        )
    ).to_dict()
    low, high = spec["layer"][1]["encoding"]["x"]["scale"]["domain"]
    assert low < 0 and high > 1  # an AUROC-1 curve runs along x=0 and y=1, off the border
