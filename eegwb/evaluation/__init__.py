"""How good a model's predictions are, and what the data allow without a model: metrics
(AUROC, balanced accuracy, aggregation to recordings and participants, participant
bootstrap), the band-power baseline, and the closed-form information floors.

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
}
__all__ = [
    "LEVELS",
    "BaselineConfig",
    "FloorAccumulator",
    "Floors",
    "LevelMetrics",
    "MetricsError",
    "aggregate",
    "auroc",
    "balanced_accuracy",
    "best_threshold",
    "bootstrap_ci",
    "compute_floors",
    "evaluate_levels",
    "roc_chart",
    "run_baseline",
    "window_features",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
