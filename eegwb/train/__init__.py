"""Training: masked-reconstruction pretraining, fine-tuning, checkpoints, MLflow tracking,
collapse checks, DDP and sweeps.

Imports nothing above it: the autopsy a run may ask for (`train.autopsy: true`) is passed
in as a hook (autopsy_hook.py). The entry points are `eegwb.train.pretrain.pretrain` and
`eegwb.train.finetune.finetune` (their modules share the names). Names load lazily.
"""

from eegwb.lazy import lazy_exports

EXPORTS = {
    "DataConfig": "config",
    "GateConfig": "config",
    "PretrainConfig": "config",
    "TrackingConfig": "config",
    "TrainConfig": "config",
    "FinetuneConfig": "finetune_config",
    "FinetuneResult": "finetune_report",
    "load_finetuned": "finetune_report",
    "RunResult": "pretrain_state",
    "evaluate": "pretrain_steps",
    "lr_at": "pretrain_steps",
    "make_optimizer": "pretrain_steps",
    "train_step": "pretrain_steps",
    "CheckpointError": "checkpoints",
    "checkpoint_name": "checkpoints",
    "load_checkpoint": "checkpoints",
    "save_checkpoint": "checkpoints",
    "CollapseStats": "collapse",
    "Tracker": "tracking",
    "find_runs": "tracking",
    "run_sweep": "sweep",
    "LabelError": "labels",
    "AutopsyHook": "autopsy_hook",
}
__all__ = [
    "AutopsyHook",
    "CheckpointError",
    "CollapseStats",
    "DataConfig",
    "FinetuneConfig",
    "FinetuneResult",
    "GateConfig",
    "LabelError",
    "PretrainConfig",
    "RunResult",
    "Tracker",
    "TrackingConfig",
    "TrainConfig",
    "checkpoint_name",
    "evaluate",
    "find_runs",
    "load_checkpoint",
    "load_finetuned",
    "lr_at",
    "make_optimizer",
    "run_sweep",
    "save_checkpoint",
    "train_step",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
