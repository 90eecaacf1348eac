"""Is the data sound, do the splits leak, can a nuisance give the label: data-quality
checks, the five-level leakage audit and the gate training runs behind, the shortcut audit,
split comparison, spectra and their charts.

Above `evaluation` (the shortcut audit scores with its metrics), below `train` (pretraining
and fine-tuning run the leakage gate, fine-tuning the shortcut audit); names load lazily.
"""

from eegwb.lazy import lazy_exports

EXPORTS = {
    "Check": "checks",
    "ValidationReport": "validation",
    "resolve_splits": "validation",
    "validate": "validation",
    "AuditResult": "leakage",
    "LeakageConfig": "leakage",
    "LeakageError": "leakage",
    "audit_leakage": "leakage",
    "leakage_gate": "leakage",
    "QualityConfig": "data_quality",
    "QualityReport": "data_quality",
    "run_quality": "data_quality",
    "ContentConfig": "near_duplicates",
    "BANDS_HZ": "spectra",
    "welch_psd": "spectra",
    "topomap_figure": "quality_charts",
    "ShortcutConfig": "shortcuts",
    "ShortcutError": "shortcuts",
    "ShortcutReport": "shortcuts",
    "audit_dataset": "shortcuts",
    "audit_units": "shortcuts",
}
__all__ = [
    "BANDS_HZ",
    "AuditResult",
    "Check",
    "ContentConfig",
    "LeakageConfig",
    "LeakageError",
    "QualityConfig",
    "QualityReport",
    "ShortcutConfig",
    "ShortcutError",
    "ShortcutReport",
    "ValidationReport",
    "audit_dataset",
    "audit_leakage",
    "audit_units",
    "leakage_gate",
    "resolve_splits",
    "run_quality",
    "topomap_figure",
    "validate",
    "welch_psd",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
