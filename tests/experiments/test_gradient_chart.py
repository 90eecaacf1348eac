"""eegwb/experiments/gradients.py's chart: bars on a log axis that starts above 0 (bars from
0 on a log axis drew nothing)."""

from __future__ import annotations

import polars as pl

from eegwb.experiments.gradients import gradient_charts
from eegwb.experiments.report import Section


def test_gradient_bars_start_above_zero_on_their_log_axis() -> None:
    layers = pl.DataFrame(
        {
            "layer": ["a", "b", "c"],
            "grad_norm": [0.5, 0.0, 2e-3],
            "param_norm": [1.0, 1.0, 1.0],
            "ratio": [0.5, 0.0, 2e-3],
            "dead": [False, True, False],
        }
    )
    spec = gradient_charts(Section("gradients", "Gradient flow", {}, {"per_layer": layers}))[
        "per_layer"
    ].to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert (
        spec["encoding"]["x"]["scale"]["type"] == "log"
        and spec["encoding"]["x2"]["field"] == "base"
    )
    base = rows[0]["base"]
    assert 0 < base < 2e-3 and all(r["grad_norm_drawn"] >= base for r in rows)
