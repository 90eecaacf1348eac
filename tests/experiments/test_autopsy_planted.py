"""The planted-effect test: a synthetic cohort's manifest says the label lives in F3/F4 alpha
power; a small classifier trained on it for a second must be explained by IG and by
ablations as using F3/F4 and the alpha band, on participants it never saw.

The classifier is the band-power baseline as a torch module (log power in the standard
bands, weighted per electrode): it learns the effect in 100 full-batch steps. (A d_model-16
EEGClassifier given a similar budget memorises the training participants instead.)
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from eegwb.data.dataset import EEGDataset, collate
from eegwb.data.splits import participant_selection
from eegwb.data.synthetic import SynthConfig, generate_cohort
from eegwb.evaluation.metrics import auroc
from eegwb.experiments.ablations import AblationConfig, ablation_section
from eegwb.experiments.attributions import AttributionConfig, attribution_section
from eegwb.experiments.autopsy import planted_effect_section
from eegwb.experiments.predictions import ProbeSet, Subject
from eegwb.experiments.report import Section
from eegwb.validation.spectra import BANDS_HZ

CHANNELS = ["F3", "F4", "C3", "C4", "P3", "O1"]
SFREQ, T = 128.0, 128


class BandPowerNet(nn.Module):
    """The band-power baseline as a torch module: (x (b, l, t), coords (b, 3), pad_mask (b, l))
    -> (b,) logits from log power in the standard EEG bands (mean over windows), weighted per
    electrode position (a small MLP of coords gives each electrode its own band weights)."""

    def __init__(self, t: int, sfreq: float):
        super().__init__()
        freqs = np.fft.rfftfreq(t, 1.0 / sfreq)
        masks = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in BANDS_HZ.values()])
        self.register_buffer("bands", torch.tensor(masks, dtype=torch.float32))  # (k, f)
        self.weight = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, len(BANDS_HZ)))
        self.bias = nn.Linear(3, 1)

    def forward(
        self, x: torch.Tensor, coords: torch.Tensor, pad_mask: torch.Tensor
    ) -> torch.Tensor:
        power = torch.view_as_real(torch.fft.rfft(x, dim=-1)).square().sum(-1)  # (b, l, f)
        real = (~pad_mask).unsqueeze(-1).to(x.dtype)
        mean_power = (power * real).sum(1) / real.sum(1).clamp(min=1)  # (b, f)
        features = torch.log(mean_power @ self.bands.T + 1.0)  # (b, k)
        return (self.weight(coords) * features).sum(-1) + self.bias(coords).squeeze(-1)


def _batch(root, people):
    ds = EEGDataset.open(
        root,
        selection=participant_selection(root, people),
        channels=CHANNELS,
        max_windows=4,
        cache_dir=root.parent / "cache",
    ).with_label("remission")
    return ds, collate([ds[i] for i in range(len(ds))])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("planted") / "data"
    manifest = generate_cohort(
        root,
        SynthConfig(
            n_participants=24,
            runs_per_participant=1,
            montage="standard_1020",
            sfreq=SFREQ,
            window_samples=T,
            n_windows=4,
            effect_channels=("F3", "F4"),
            effect_band_hz=(8.0, 12.0),
            effect_size=3.0,
            seed=1,
        ),
        progress=False,
    )
    by_label = {
        v: [p["participant"] for p in manifest["participants"] if p["label"] == v] for v in (0, 1)
    }
    train = by_label[0][:8] + by_label[1][:8]
    test = by_label[0][8:] + by_label[1][8:]
    _, tr = _batch(root, train)
    ds, te = _batch(root, test)
    torch.manual_seed(0)
    model = BandPowerNet(T, SFREQ)
    opt = torch.optim.Adam(model.parameters(), lr=0.03, weight_decay=1e-3)
    for _ in range(100):
        loss = nn.functional.binary_cross_entropy_with_logits(
            model(tr.x, tr.coords, tr.pad_mask), tr.label
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    meta = pl.DataFrame({"seq_index": te.seq_index.numpy()}).join(
        ds.index.select("seq_index", "participant", "run", "channel", "row_start", "n_windows"),
        on="seq_index",
        how="left",
        maintain_order="left",
    )
    probe = ProbeSet(te.x, te.coords, te.pad_mask, meta, label=te.label)
    yield root, Subject("classifier", model, model), probe
    torch.set_num_threads(2)


def test_attributions_and_ablations_find_the_planted_channels_and_band(trained):
    root, subject, probe = trained
    with torch.no_grad():
        logits = subject.output(probe.x, probe.coords, probe.pad_mask).numpy()
    for ch in ("F3", "F4"):  # it learnt the effect, on participants it never saw
        rows = probe.channels == ch
        assert auroc(probe.label.numpy()[rows], logits[rows]) > 0.9

    attr = attribution_section(
        subject,
        probe,
        SFREQ,
        AttributionConfig(
            baselines=("zero", "mean"), n_steps=16, batch_size=32, layer_method="none"
        ),
    )
    abl = ablation_section(subject, probe, SFREQ, AblationConfig(), attr)
    for section in (attr, abl):
        ranked = (
            section.tables["per_channel"].sort("importance", descending=True)["channel"].to_list()
        )
        assert set(ranked[:2]) == {"F3", "F4"}, (section.name, ranked)
        bands = section.tables["per_band"].sort("importance", descending=True)["band"].to_list()
        assert bands[0] == "alpha", (section.name, bands)
    # beyond the top, channels without the effect rank by noise: agreement is weaker there
    assert abl.numbers["spearman_band"] > 0.5 and abl.numbers["spearman_channel"] > 0

    planted = planted_effect_section(
        root, "remission", {"attributions": attr, "ablations": abl}, SFREQ
    )
    n = planted.numbers
    assert json.loads((root / "manifest.json").read_text())["label"]["channels"] == ["F3", "F4"]
    assert n["planted_band"] == "alpha"
    assert n["attributions_channel_recall_at_k"] == n["ablations_channel_recall_at_k"] == 1.0
    assert n["attributions_band_rank"] == n["ablations_band_rank"] == 1
    assert planted.findings == []
    assert planted_effect_section(root, "other_label", {"attributions": attr}, SFREQ) is None


def _ablations_ranking(channels: list[str]):
    """An ablations section whose per-channel importance ranks `channels` in that order."""
    per_channel = pl.DataFrame(
        {"channel": channels, "importance": np.linspace(1.0, 0.1, len(channels))}
    )
    return {"ablations": Section("ablations", "Ablations", {}, {"per_channel": per_channel})}


def test_planted_recall_counts_only_the_planted_channels_the_model_has(tmp_path):
    # Planted in F3, FZ, F4; the model was trained on F3, CZ, PZ, O1 (one planted channel).
    generate_cohort(
        tmp_path,
        SynthConfig(
            n_participants=2,
            runs_per_participant=1,
            sfreq=SFREQ,
            window_samples=T,
            n_windows=2,
            effect_channels=("F3", "FZ", "F4"),
            seed=1,
        ),
        progress=False,
    )
    found = planted_effect_section(
        tmp_path, "remission", _ablations_ranking(["F3", "CZ", "PZ", "O1"]), SFREQ
    )
    assert found.numbers["ablations_channel_recall_at_k"] == 1.0 and found.findings == []
    assert found.numbers["ablations_planted_channels_probed"] == "F3"

    missed = planted_effect_section(
        tmp_path, "remission", _ablations_ranking(["CZ", "PZ", "O1", "F3"]), SFREQ
    )
    assert missed.numbers["ablations_channel_recall_at_k"] == 0.0
    assert [f.severity for f in missed.findings] == ["warn"] and "ranks 4 of 4" in missed.findings[
        0
    ].what

    # None of the planted channels among the model's: the check cannot apply, nothing failed.
    unseen = planted_effect_section(
        tmp_path, "remission", _ablations_ranking(["CZ", "PZ", "O1"]), SFREQ
    )
    assert "ablations_channel_recall_at_k" not in unseen.numbers
    assert [f.severity for f in unseen.findings] == ["info"] and "cannot apply" in unseen.findings[
        0
    ].what
