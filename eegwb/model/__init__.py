"""The Mamba-2 EEG model, its masking and targets, and the masked-reconstruction objective."""

from eegwb.model.config import MaskingConfig, ModelConfig
from eegwb.model.eeg_model import EEGModel
from eegwb.model.mamba2 import EEGMamba2
from eegwb.model.masking import apply_mask, make_mask
from eegwb.model.objective import MaskedReconstruction, ObjectiveOutput, masked_mse

__all__ = [
    "EEGMamba2",
    "EEGModel",
    "MaskedReconstruction",
    "MaskingConfig",
    "ModelConfig",
    "ObjectiveOutput",
    "apply_mask",
    "make_mask",
    "masked_mse",
]
