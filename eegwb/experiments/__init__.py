"""What a trained model has learned and why: the control experiments (information floors
against the model's loss, a verdict in words) and the model autopsy (predictions,
gradients, activations, Captum attributions, ablations, failure modes, the report).

Above `train`: it loads checkpoints and runs pretraining for the controls. Names load
lazily.
"""

from eegwb.lazy import lazy_exports

EXPORTS = {
    "ControlReport": "control",
    "run_control": "control",
    "train_controls": "control",
    "write_control_cohort": "control",
    "ModelDiagnostics": "model_probe",
    "probe": "model_probe",
    "Verdict": "verdict",
    "decide": "verdict",
    "CHEAP_SECTIONS": "autopsy",
    "SECTIONS": "autopsy",
    "Autopsy": "autopsy",
    "AutopsyConfig": "autopsy",
    "autopsy_once": "autopsy",
    "run_autopsy": "autopsy",
    "AutopsyReport": "report",
}
__all__ = [
    "CHEAP_SECTIONS",
    "SECTIONS",
    "Autopsy",
    "AutopsyConfig",
    "AutopsyReport",
    "ControlReport",
    "ModelDiagnostics",
    "Verdict",
    "autopsy_once",
    "decide",
    "probe",
    "run_autopsy",
    "run_control",
    "train_controls",
    "write_control_cohort",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
