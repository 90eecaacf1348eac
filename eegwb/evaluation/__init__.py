"""How good a model's predictions are, and what the data allow without a model: metrics
(AUROC, balanced accuracy, aggregation to recordings and participants, participant
bootstrap), the band-power baseline, and the closed-form information floors (in-sample and
transfer; `floor_data` computes them over a dataset).

Below `train` (fine-tuning scores with it); names load lazily.
"""

from eegwb.lazy import lazy_exports

EXPORTS = {
    "LEVELS": "metrics",
    "LevelMetrics": "metrics",
    "MetricsError": "metrics",
    "aggregate": "metrics",
    "auroc": "metrics",
    "balanced_accuracy": "metrics",
    "best_threshold": "metrics",
    "bootstrap_ci": "metrics",
    "evaluate_levels": "metrics",
    "roc_chart": "metrics",
    "BaselineConfig": "baseline",
    "run_baseline": "baseline",
    "window_features": "baseline",
    "FloorAccumulator": "floors",
    "Floors": "floors",
    "compute_floors": "floors",
    "TokenKeys": "floor_data",
    "dataset_floors": "floor_data",
    "fit_floors": "floor_data",
}
__all__ = [
    "LEVELS",
    "BaselineConfig",
    "FloorAccumulator",
    "Floors",
    "LevelMetrics",
    "MetricsError",
    "TokenKeys",
    "aggregate",
    "auroc",
    "balanced_accuracy",
    "best_threshold",
    "bootstrap_ci",
    "compute_floors",
    "dataset_floors",
    "evaluate_levels",
    "fit_floors",
    "roc_chart",
    "run_baseline",
    "window_features",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
