"""The benchmark's field references run here: braindecode's EEGNet and ShallowFBCSPNet,
installed by scripts/install_braindecode.sh (torchaudio without its compiled libs, which do
not load against this torch), on eegmat-shaped input: 19 channels, 2 s at 500 Hz."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("name", ["EEGNet", "ShallowFBCSPNet"])
def test_braindecode_model_forward_pass(name):
    from braindecode import models

    torch.manual_seed(0)
    model = getattr(models, name)(n_chans=19, n_outputs=2, n_times=1000, sfreq=500.0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 19, 1000))  # (batch, channels, samples)
    assert out.shape == (2, 2)
    assert torch.isfinite(out).all()
