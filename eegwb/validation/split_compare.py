"""Do the splits look alike? Label balance and band-power shift between splits.

The unit of every test is the recording (one participant-run), never the window: windows
of one recording are not independent, and thousands of them would make any difference
between two groups of people "significant". A label that is constant within each
participant (diagnosis, age) is tested once per participant, for the same reason: runs of
one person are not independent draws of it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping

import numpy as np
import polars as pl
import scipy.stats

from eegwb.data.layout import recordings_index
from eegwb.data.splits import SplitData
from eegwb.validation.checks import Check, rows_check
from eegwb.validation.spectra import bh_adjust

LABEL_SCHEMA = {
    "split": pl.String,
    "file": pl.String,
    "participant": pl.String,
    "label": pl.String,
    "value": pl.String,  # JSON of the value
}
SHIFT_SCHEMA = {
    "split_a": pl.String,
    "split_b": pl.String,
    "channel": pl.String,
    "band": pl.String,
    "ks": pl.Float64,
    "p": pl.Float64,
}


def labels_table(splits: Mapping[str, SplitData], only: list[str] | None = None) -> pl.DataFrame:
    """One row per (split, selected file, label) from each file's metadata labels."""
    rows = []
    for name, split in splits.items():
        index = recordings_index(split.root).select("file", "participant", "labels")
        files = set(split.resolved()["file"].to_list())
        for file, participant, labels in index.filter(pl.col("file").is_in(files)).iter_rows():
            for key, value in json.loads(labels).items():
                if only is None or key in only:
                    rows.append((name, file, participant, key, json.dumps(value)))
    return pl.DataFrame(rows, schema=LABEL_SCHEMA, orient="row")


def is_categorical(values: list[object], max_classes: int = 5) -> bool:
    """Strings and booleans are classes; so are integers with few distinct values (0/1,
    a 1-5 rating); other numbers (age, a score) are continuous."""
    if any(isinstance(v, (str, bool)) or v is None for v in values):
        return True
    integers = all(float(v).is_integer() for v in values)  # type: ignore[arg-type]
    return integers and len(set(values)) <= max_classes


def _chi_square(sub: pl.DataFrame, splits: list[str]) -> tuple[str, float, dict, list[str]]:
    cats = sorted(set(sub["value"].to_list()))
    n = {(s, v): k for s, v, k in sub.group_by("split", "value").len().iter_rows()}
    table = np.array([[n.get((s, c), 0) for c in cats] for s in splits])  # (splits, classes)
    p = 1.0
    if table.shape[0] > 1 and table.shape[1] > 1:
        p = float(scipy.stats.chi2_contingency(table).pvalue)
    gaps = [f"split {s!r} has no {c}" for s in splits for c in cats if not n.get((s, c))]
    counts = {s: {c: n.get((s, c), 0) for c in cats} for s in splits}
    return "chi-square", p, {"counts": counts}, gaps


def _ks(sub: pl.DataFrame, splits: list[str]) -> tuple[str, float, dict, list[str]]:
    x = {
        s: np.asarray([json.loads(v) for v in sub.filter(pl.col("split") == s)["value"]], float)
        for s in splits
    }
    ps = [scipy.stats.ks_2samp(x[a], x[b]).pvalue for a, b in itertools.combinations(splits, 2)]
    p = float(min(1.0, min(ps) * len(ps))) if ps else 1.0  # Bonferroni over split pairs
    return "KS (Bonferroni)", p, {"mean": {s: float(x[s].mean()) for s in splits}}, []


def one_row_per_participant(sub: pl.DataFrame) -> pl.DataFrame | None:
    """`sub` (one label's rows) reduced to one row per (split, participant), or None when
    the label varies within a participant (a per-run label such as rest/task)."""
    per_person = sub.group_by("split", "participant").agg(pl.col("value").n_unique())
    if (per_person["value"] > 1).any():
        return None
    return sub.unique(["split", "participant"], keep="first", maintain_order=True)


def label_checks(labels: pl.DataFrame, alpha: float) -> list[Check]:
    """Per label: chi-square (categorical) or KS (continuous) across splits; warns when
    p < alpha or a split lacks a class the others have. A participant counts once for a
    label constant within participants; otherwise each recording counts, and the summary
    says so (runs of one person then weigh more, so p is optimistic)."""
    checks = []
    for name in sorted(set(labels["label"].to_list())):
        sub = labels.filter(pl.col("label") == name)
        deduplicated = one_row_per_participant(sub)
        unit = "recording" if deduplicated is None else "participant"
        sub = sub if deduplicated is None else deduplicated
        splits = sorted(set(sub["split"].to_list()))
        values = [json.loads(v) for v in sub["value"]]
        test, p, numbers, gaps = (_chi_square if is_categorical(values) else _ks)(sub, splits)
        summary = f"{test} p = {p:.3g} across {len(splits)} splits, one value per {unit}"
        if deduplicated is None:
            summary += " (it varies within participants; p is optimistic)"
        summary += f"; {gaps[0]} ({name})" if gaps else ""
        status = "warn" if p < alpha or gaps else "pass"
        numbers = {"p_value": p, "test": test, "unit": unit, **numbers}
        checks.append(Check(f"quality/label/{name}", status, summary, numbers))
    return checks


def band_shift(band_power: pl.DataFrame, alpha: float) -> tuple[pl.DataFrame, Check]:
    """KS test per (split pair, channel, band) on per-recording median log10 band power,
    Benjamini-Hochberg over all tests; needs >= 3 recordings on each side."""
    rows = []
    bp = band_power.filter(pl.col("log10_uv2").is_finite())
    for a, b in itertools.combinations(sorted(set(band_power["split"].to_list())), 2):
        pair = bp.filter(pl.col("split").is_in([a, b]))
        for (ch, band), g in pair.group_by("channel", "band"):
            xa = g.filter(pl.col("split") == a)["log10_uv2"].to_numpy()
            xb = g.filter(pl.col("split") == b)["log10_uv2"].to_numpy()
            if len(xa) >= 3 and len(xb) >= 3:
                res = scipy.stats.ks_2samp(xa, xb)
                rows.append((a, b, ch, band, float(res.statistic), float(res.pvalue)))
    df = pl.DataFrame(rows, schema=SHIFT_SCHEMA, orient="row")
    df = df.with_columns(pl.Series("q", bh_adjust(df["p"].to_numpy()), pl.Float64)).sort("q")
    check = rows_check(
        "quality/band_shift",
        df.filter(pl.col("q") < alpha),
        "warn",
        f"(split pair, channel, band) band-power shifts with BH q < {alpha}",
        ["split_a", "split_b", "channel", "band", "ks", "q"],
        n_tests=df.height,
        min_q=df["q"].min() if df.height else None,
    )
    if not df.height:
        check.summary = "too few recordings per split (< 3) to test band-power shifts"
    return df, check
