"""eegwb/train/finetune_summary.py: a fine-tuning result said in words, with its CIs."""

from __future__ import annotations

import numpy as np
import polars as pl

from eegwb.evaluation.metrics import LevelMetrics, PairedDifference
from eegwb.train.finetune_report import TABLE_SCHEMA, FinetuneResult
from eegwb.train.finetune_summary import auroc_comments, compare, conclusions, roc_frame


def _preds(scores: list[float]) -> pl.DataFrame:
    n = len(scores)
    return pl.DataFrame(
        {
            "participant": [f"p{i}" for i in range(n)],
            "run": ["1"] * n,
            "label": [i % 2 for i in range(n)],
            "score": scores,
        }
    )


def _result(preds: dict[str, pl.DataFrame], table_rows: list[dict]) -> FinetuneResult:
    rows = [
        {k: None for k in TABLE_SCHEMA} | {"level": "recording", "n_participants": 8} | r
        for r in table_rows
    ]
    return FinetuneResult(
        table=pl.DataFrame(rows, schema=TABLE_SCHEMA, orient="row"),
        metrics={},
        predictions=preds,
        history=pl.DataFrame(),
        thresholds={},
        checkpoints={},
        folds=[],
        leaky=False,
        leakage_summary="",
        pretraining_overlap=[],
        pretrained="x.pt",
        level="recording",
    )


def test_comparisons_are_said_by_their_paired_interval() -> None:
    d = PairedDifference("recording", 0.9, 0.6, 0.3, (0.1, 0.5), 8, 8)
    assert compare(d, "full", "baseline").startswith("**full beat baseline**")
    worse = PairedDifference("recording", 0.5, 0.9, -0.4, (-0.6, -0.2), 8, 8)
    assert compare(worse, "full", "baseline").startswith("**baseline beat full**")
    tie = PairedDifference("recording", 0.7, 0.8, -0.1, (-0.4, 0.2), 8, 8)
    text = compare(tie, "frozen", "baseline")
    assert (
        "cannot be told apart" in text
        and "[-0.400, 0.200]" in text
        and "8 test participants" in text
    )


def test_conclusions_answer_first_and_comment_an_inverted_auroc() -> None:
    label = np.array([i % 2 for i in range(8)])
    perfect = list(0.1 + 0.8 * label)
    inverted = list(0.9 - 0.8 * label)
    result = _result(
        {"full": _preds(inverted), "scratch": _preds([0.5] * 8), "baseline": _preds(perfect)},
        [
            {"strategy": "full", "auroc": 0.0, "auroc_low": 0.0, "auroc_high": 0.0},
            {"strategy": "baseline", "auroc": 1.0, "auroc_low": 1.0, "auroc_high": 1.0},
        ],
    )
    lines = conclusions(result, n_boot=300)
    assert lines[0] == "**No**: the band-power baseline beat every pretrained strategy."
    assert any(line.startswith("**baseline beat full**") for line in lines)
    comments = auroc_comments(result)
    assert "full: AUROC 0.000 [0.000, 0.000] is below chance" in comments[0]
    assert "baseline: AUROC 1.000 [1.000, 1.000]: the interval is a single point" in comments[1]


def test_roc_legend_names_each_curve_with_its_auroc() -> None:
    roc = pl.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "threshold": [1.0, 0.0]})
    metrics = LevelMetrics(
        "recording", 8, 8, 4, 4, 0.5, (0.2, 0.8), 0.5, (0.3, 0.7), [[2, 2], [2, 2]], 0.5, roc
    )
    result = _result({}, [{"strategy": "full", "auroc": 0.5}])
    result.metrics = {"full": {"recording": metrics}}
    assert roc_frame(result)["strategy"].unique().to_list() == ["full (AUROC 0.50)"]
