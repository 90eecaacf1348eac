"""How a training run asks for an autopsy without importing the layer above it.

With `train.autopsy: true`, pretraining and fine-tuning autopsy their checkpoints when they
end (finished or stopped early). The autopsy lives in `eegwb.experiments`, above `train`,
so whoever starts the run passes it in as a callable: the `eegwb` commands and the
notebooks pass `eegwb.experiments.autopsy.autopsy_once`, which keeps a marker per
checkpoint version so one checkpoint is autopsied once, into
`<checkpoint_dir>/autopsy/<stem>/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eegwb.config import ConfigError

# hook(checkpoint, *, out_dir, run_id, tracking_uri); its return value is ignored.
AutopsyHook = Callable[..., object]


def require_hook(enabled: bool, hook: AutopsyHook | None) -> None:
    """`train.autopsy: true` without a hook is a config the run cannot honour: say so before
    any work, rather than finish without the autopsy that was asked for."""
    if enabled and hook is None:
        raise ConfigError(
            "train.autopsy: true, but no autopsy was passed in (autopsy="
            "eegwb.experiments.autopsy.autopsy_once; the eegwb commands and notebooks pass it)"
        )


def autopsy_checkpoint(
    hook: AutopsyHook, checkpoint: Path, *, run_id: str | None, tracking_uri: str | None
) -> None:
    """Run `hook` on `checkpoint`, writing into `<its folder>/autopsy/<its stem>/`."""
    out = checkpoint.parent / "autopsy" / checkpoint.stem
    hook(checkpoint, out_dir=out, run_id=run_id, tracking_uri=tracking_uri)
