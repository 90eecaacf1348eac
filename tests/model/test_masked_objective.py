"""MaskedReconstruction: the loss reads masked real positions only; targets; EMA; real EEG."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eegwb.data.batch import Batch
from eegwb.model import EEGModel, MaskedReconstruction, MaskingConfig, ModelConfig, masked_mse

T = 16
TINY = ModelConfig(window_samples=T, d_model=16, n_layers=1, d_state=8, headdim=8, chunk_size=4)


def make_batch(lengths: list[int], seed: int = 0, t: int = T) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    l = max(lengths)
    pad = torch.arange(l)[None, :] >= torch.tensor(lengths)[:, None]
    x = torch.randn(len(lengths), l, t, generator=gen).masked_fill(pad[..., None], 0.0)
    coords = F.normalize(torch.randn(len(lengths), 3, generator=gen), dim=1)
    return Batch(x, coords, pad, torch.tensor(lengths), torch.arange(len(lengths)))


def objective(
    target: str = "signal", ratio: float = 0.5, style: str = "mae"
) -> MaskedReconstruction:
    torch.manual_seed(0)
    return MaskedReconstruction(EEGModel(replace(TINY, target=target)), MaskingConfig(ratio, style))


def test_loss_is_mse_over_masked_real_positions():
    obj = objective()
    batch = make_batch([9, 5, 2])
    out = obj(batch, generator=torch.Generator().manual_seed(1))
    assert out.mask.sum(1).tolist() == [round(0.5 * n) for n in (9, 5, 2)]
    assert not (out.mask & batch.pad_mask).any()
    manual = ((out.pred - out.target) ** 2).mean(-1)[out.mask].mean()
    assert torch.allclose(out.loss, manual, rtol=1e-5, atol=1e-6)
    assert torch.equal(out.target, batch.x)
    pred = out.pred.detach().requires_grad_()
    masked_mse(pred, out.target, out.mask).backward()
    assert torch.equal(pred.grad[~out.mask], torch.zeros_like(pred.grad[~out.mask]))


def test_masked_inputs_are_hidden_from_the_model():
    obj = objective(ratio=1.0)
    batch = make_batch([6, 6])
    out = obj(batch)
    other = make_batch([6, 6], seed=9)  # different windows, same electrodes
    other.coords = batch.coords
    assert torch.allclose(obj(other).pred, out.pred, rtol=1e-5, atol=1e-6)  # it saw nothing of x
    assert out.loss.item() > 0 and torch.isfinite(out.loss)


def test_nothing_masked_gives_zero_loss_not_nan():
    out = objective(ratio=0.0)(make_batch([4, 3]))
    assert out.mask.sum() == 0 and out.loss.item() == 0.0
    out.loss.backward()


def test_embedding_target_warns_and_carries_gradient(caplog):
    with caplog.at_level(logging.WARNING, logger="eegwb.model.objective"):
        obj = objective("embedding")
    assert any("collaps" in r.getMessage() for r in caplog.records)
    out = obj(make_batch([5, 4]))
    assert out.target.shape == (2, 5, 16) and out.target.requires_grad
    out.loss.backward()
    assert obj.model.token_encoder.proj.weight.grad is not None


def test_stopgrad_target_is_detached():
    obj = objective("embedding_stopgrad")
    out = obj(make_batch([5, 4]))
    assert not out.target.requires_grad
    expected = obj.model.token_encoder(make_batch([5, 4]).x)
    assert torch.allclose(out.target, expected, rtol=1e-5, atol=1e-6)


def test_ema_teacher_follows_the_student():
    obj = objective("ema")
    student, teacher = obj.model.token_encoder, obj.teacher.encoder
    assert not any(p.requires_grad for p in teacher.parameters())
    assert "teacher.encoder.proj.weight" in obj.state_dict()
    with torch.no_grad():
        student.proj.weight.add_(1.0)
    before = teacher.proj.weight.clone()
    obj.after_step()
    d = TINY.ema_decay
    expected = d * before + (1 - d) * student.proj.weight
    assert torch.allclose(teacher.proj.weight, expected, rtol=1e-5, atol=1e-6)
    out = obj(make_batch([5, 4]))
    assert not out.target.requires_grad


def test_bert_style_objective_runs_and_is_seeded():
    obj = objective(style="bert")
    batch = make_batch([8, 8])
    a = obj(batch, generator=torch.Generator().manual_seed(3))
    b = obj(batch, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.loss, b.loss)


def eegmat_windows(eegmat_dir, t: int = 128, n_windows: int = 12) -> Batch:
    """Windows of 4 channels of one real recording, z-scored per channel."""
    mne = pytest.importorskip("mne")
    raw = mne.io.read_raw_edf(eegmat_dir / "Subject00_1.edf", preload=True, verbose="ERROR")
    data = raw.get_data(picks=list(range(4)))[:, : t * n_windows]  # (4, samples) volts
    data = (data - data.mean(1, keepdims=True)) / data.std(1, keepdims=True)
    x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).view(4, n_windows, t)
    coords = F.normalize(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    pad = torch.zeros(4, n_windows, dtype=torch.bool)
    return Batch(x, coords, pad, torch.full((4,), n_windows), torch.arange(4))


def adam_steps(obj: MaskedReconstruction, batch: Batch, steps: int, lr: float = 3e-3) -> None:
    """Plain Adam written out (torch.optim's first use imports torch._dynamo: ~10 s here)."""
    params = [p for p in obj.parameters() if p.requires_grad]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for step in range(1, steps + 1):
        out = obj(batch, generator=torch.Generator().manual_seed(step))
        obj.zero_grad()
        out.loss.backward()
        with torch.no_grad():
            for p, m1, m2 in zip(params, m, v, strict=True):
                m1.lerp_(p.grad, 0.1)
                m2.lerp_(p.grad.square(), 0.001)
                p.sub_(lr * (m1 / (1 - 0.9**step)) / ((m2 / (1 - 0.999**step)).sqrt() + 1e-8))
        obj.after_step()


def test_learns_on_real_eeg(eegmat_dir):
    """PhysioNet EEGMAT (Zyma et al. 2019): a few steps must lower the masked loss, below
    the 1.0 that predicting zero scores on z-scored signals."""
    batch = eegmat_windows(eegmat_dir)
    torch.manual_seed(0)
    obj = MaskedReconstruction(
        EEGModel(replace(TINY, window_samples=128, d_model=32)), MaskingConfig(0.5)
    )

    def loss_at_fixed_mask() -> float:
        with torch.no_grad():
            return obj(batch, generator=torch.Generator().manual_seed(123)).loss.item()

    start = loss_at_fixed_mask()
    adam_steps(obj, batch, steps=30)
    end = loss_at_fixed_mask()
    assert end < 0.8 * start and end < 0.9
