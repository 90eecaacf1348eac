"""Each autopsy diagnostic on a tiny model and a hand-made probe set: collapse, dead layers,
hooks on the reference path, IG completeness, ablations and failures."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch
from captum.attr import IntegratedGradients

from eegwb.experiments.ablations import AblationConfig, ablation_table
from eegwb.experiments.activations import activation_section, reference_path
from eegwb.experiments.attributions import (
    AttributionConfig,
    integrated_gradients,
    layer_profile,
    make_baseline,
)
from eegwb.experiments.autopsy import AutopsyConfig, choose_sequences, parse_sections
from eegwb.experiments.failures import failure_section
from eegwb.experiments.gradients import gradient_section
from eegwb.experiments.predictions import (
    ProbeSet,
    Subject,
    overall_loss,
    predict,
    prediction_section,
    sample_losses,
)
from eegwb.model.classifier import build_classifier
from eegwb.model.config import ModelConfig
from eegwb.model.eeg_model import EEGModel
from eegwb.model.mamba2 import EEGMamba2
from eegwb.model.masking import apply_mask, make_mask

T = 32
CHANNELS = {
    "FZ": [0.0, 0.66, 0.75],
    "CZ": [0.0, -0.09, 1.0],
    "PZ": [0.0, -0.7, 0.71],
    "OZ": [0.0, -0.99, 0.13],
}
CFG = ModelConfig(
    window_samples=T,
    d_model=16,
    n_layers=2,
    headdim=8,
    d_state=8,
    chunk_size=4,
    kernel_backend="ref",
)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_probe(n: int = 8, l: int = 6, *, classifier: bool = False, seed: int = 0) -> ProbeSet:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([l - (i % 3) for i in range(n)])
    pad = torch.arange(l)[None, :] >= lengths[:, None]  # (n, l)
    x = (torch.randn(n, l, T, generator=g) * (1 + torch.arange(n)[:, None, None] / n)).masked_fill(
        pad[..., None], 0.0
    )
    names = [list(CHANNELS)[i % len(CHANNELS)] for i in range(n)]
    coords = torch.tensor([CHANNELS[c] for c in names])
    meta = pl.DataFrame(
        {
            "seq_index": list(range(n)),
            "participant": [f"0{i % 3 + 1}" for i in range(n)],
            "run": ["1"] * n,
            "channel": names,
            "row_start": [10 * i for i in range(n)],
            "n_windows": lengths.tolist(),
        }
    )
    probe = ProbeSet(x, coords, pad, meta)
    if classifier:
        probe.label = torch.tensor([float(i % 2) for i in range(n)])
    else:
        probe.mask = make_mask(pad, 0.5, generator=g)
        probe.x, probe.target = apply_mask(x, probe.mask, "mae"), x
    return probe


def recon_subject(seed: int = 0) -> Subject:
    torch.manual_seed(seed)
    model = EEGModel(CFG).eval()
    return Subject("reconstruction", model, model)


def test_reference_path_gives_the_same_outputs_and_fires_conv_and_norm_hooks():
    subject, probe = recon_subject(), make_probe()
    calls = {"conv1d": 0, "norm": 0}
    mixers = [m for m in subject.model.modules() if isinstance(m, EEGMamba2)]
    for m in mixers:
        m.conv1d.register_forward_hook(lambda *_: calls.__setitem__("conv1d", calls["conv1d"] + 1))
        m.norm.register_forward_hook(lambda *_: calls.__setitem__("norm", calls["norm"] + 1))
    plain = predict(subject, probe, 4)
    assert calls == {"conv1d": 0, "norm": 0}  # the reference kernels call them as functions
    with reference_path(subject.module) as n_switched:
        hooked = predict(subject, probe, 4)
    assert n_switched == len(mixers) == 4  # 2 layers x (mixer, mixer_rev)
    assert calls == {"conv1d": 4 * 2, "norm": 4 * 2}  # every mixer, both batches
    torch.testing.assert_close(hooked, plain, rtol=1e-5, atol=1e-6)
    assert all("kernels" not in vars(m) for m in mixers)  # the method is back


def test_collapse_is_flagged_on_a_model_made_to_predict_a_constant():
    subject, probe = recon_subject(), make_probe()
    normal = prediction_section(subject, probe, predict(subject, probe, 4))
    assert normal.numbers["var_ratio"] > 1e-4
    with torch.no_grad():
        subject.model.head.weight.zero_()
        subject.model.head.bias.fill_(0.3)
    out = predict(subject, probe, 4)
    section = prediction_section(subject, probe, out)
    assert section.numbers["var_ratio"] == 0.0
    assert section.numbers["pred_mean"] == pytest.approx(0.3)
    assert [f.severity for f in section.findings if "Collapse" in f.what] == ["fail"]
    # the constant is no better than the mean window of the same tokens (a floor it cannot beat)
    assert section.numbers["mse"] >= section.numbers["mse_floor_nothing_in_sample"]
    assert section.tables["baselines"]["predictor"].to_list()[0] == "model"


def test_a_layer_whose_weights_are_zeroed_shows_as_dead():
    probe = make_probe()
    healthy = recon_subject()
    assert gradient_section(healthy, probe).numbers["n_dead_layers"] == 0
    assert activation_section(healthy, probe).numbers["n_mostly_dead"] == 0

    subject = recon_subject()
    with torch.no_grad():
        subject.model.backbone.layers[0].mixer.out_proj.weight.zero_()
    grads = gradient_section(subject, probe)
    layers = grads.tables["per_layer"].filter(pl.col("dead"))["layer"].to_list()
    upstream = {f"backbone.layers.0.mixer.{p}" for p in ("in_proj", "conv1d", "norm")}
    assert upstream <= set(layers)  # nothing reaches what feeds the zeroed projection
    assert not any(name.startswith("backbone.layers.1") for name in layers)
    params = grads.tables["per_parameter"]
    assert (
        params.filter(pl.col("name") == "backbone.layers.0.mixer.out_proj.weight")["status"][0]
        == "zero weights"
    )
    assert any(f.severity == "fail" and "Dead layers" in f.what for f in grads.findings)

    acts = activation_section(subject, probe)
    row = acts.tables["per_module"].filter(pl.col("module") == "backbone.layers.0.mixer.out_proj")
    assert row["dead_units"][0] == 1.0 and row["calls"][0] == 1  # one batch of 8
    assert any(
        f.severity == "fail" and "backbone.layers.0.mixer.out_proj" in f.what for f in acts.findings
    )


def clf_subject() -> Subject:
    clf = build_classifier("scratch", CFG, None, seed=0).eval()
    return Subject("classifier", clf, clf.model, threshold=0.5)


def spectrum(x: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(torch.fft.rfft(x, dim=-1)).contiguous()  # (n, l, f, 2)


def spectrum_score(subject: Subject, t: int):
    return lambda spec, *args: subject.score(
        torch.fft.irfft(torch.complex(spec[..., 0], spec[..., 1]), n=t), *args
    )


@pytest.mark.parametrize("kind", ["reconstruction", "classifier"])
def test_integrated_gradients_satisfy_completeness(kind):
    classifier = kind == "classifier"
    subject, probe = (
        (clf_subject() if classifier else recon_subject()),
        make_probe(n=6, classifier=classifier),
    )
    # float64: the gap is the integral's error, not float32 rounding of the scores
    subject.module.double()
    probe.x, probe.coords = probe.x.double(), probe.coords.double()
    probe.target = None if probe.target is None else probe.target.double()
    cfg = AttributionConfig(n_steps=32, internal_batch_size=40, batch_size=3)
    for baseline in ("zero", "mean", "noise"):
        res = integrated_gradients(subject, probe, baseline, cfg)
        base = make_baseline(baseline, probe, cfg.seed)
        with torch.no_grad():  # the scores, recomputed outside the code under test
            args = probe.forward_args()
            f_x = subject.score(probe.x, *args).double()
            f_b = subject.score(base, *args).double()
        total = res.attr.sum((1, 2))  # (n,)
        gap = total - (f_x - f_b)
        torch.testing.assert_close(
            gap, res.delta, rtol=1e-6, atol=1e-10
        )  # Captum's delta is this gap
        assert (gap.abs() <= 0.02 * (f_x - f_b).abs() + 1e-10).all(), (baseline, gap, f_x - f_b)
        assert (f_x - f_b).abs().mean() > 1e-5  # there is something to attribute
        # per frequency bin: the same integral in rFFT coordinates, so the same total ...
        torch.testing.assert_close(res.attr_freq.sum((1, 2)), total, rtol=1e-9, atol=1e-12)
        if baseline == "zero":  # ... and the same bins as Captum's IG run on the spectra themselves
            direct = IntegratedGradients(spectrum_score(subject, T)).attribute(
                spectrum(probe.x),
                baselines=spectrum(base),
                additional_forward_args=args,
                n_steps=32,
            )
            torch.testing.assert_close(res.attr_freq, direct.sum(-1), rtol=1e-6, atol=1e-9)
        hidden = ~probe.visible  # pads and masked windows equal the baseline: zero attribution
        assert res.attr[hidden].abs().max() == 0.0 and res.attr_freq[hidden].abs().max() == 0.0


def test_conv1d_layer_attribution_is_gradcam_mapped_to_window_positions():
    subject, probe = clf_subject(), make_probe(n=6, classifier=True)
    table = layer_profile(subject, probe, AttributionConfig(max_window_bins=100, batch_size=4))
    names = {f"backbone.layers.{i}.{m}.conv1d" for i in (0, 1) for m in ("mixer", "mixer_rev")}
    assert set(table["layer"].to_list()) == names
    conv, saved = subject.model.backbone.layers[1].mixer.conv1d, {}

    def keep(_module, _inputs, out):
        out.retain_grad()
        saved["a"] = out

    handle = conv.register_forward_hook(keep)
    with reference_path(subject.module):
        subject.score(probe.x, *probe.forward_args()).sum().backward()  # sequences are independent
    handle.remove()
    a, g = saved["a"], saved["a"].grad  # (n, c, l + w - 1)
    l = probe.x.shape[1]
    cam = (
        (a * g.mean(-1, keepdim=True)).sum(1)[:, :l].detach().double()
    )  # (n, l): Grad-CAM, causal part
    vis = probe.visible
    expected = (cam * vis).sum(0) / vis.sum(0)
    got = table.filter(pl.col("layer") == "backbone.layers.1.mixer.conv1d").sort("start")[
        "attribution"
    ]
    np.testing.assert_allclose(got.to_numpy(), expected.numpy(), rtol=1e-4, atol=1e-8)
    assert np.abs(expected.numpy()).max() > 0


def test_channel_ablation_matches_a_full_recompute():
    subject, probe = recon_subject(), make_probe()
    base, table = ablation_table(
        subject, probe, sfreq=64.0, cfg=AblationConfig(max_window_bins=3, n_time_bins=4)
    )
    fams = table.group_by("family").len().sort("family").rows()
    assert fams == [
        ("band", 5),
        ("channel", 4),
        ("time_bin", 4),
        ("window", 3),
    ]  # delta..gamma (Nyquist 32 Hz: no "high")
    with reference_path(subject.module):
        assert base["loss"] == pytest.approx(
            overall_loss(subject, probe, sample_losses(subject, probe, predict(subject, probe, 8)))
        )
        rows = torch.from_numpy(probe.channels == "PZ")
        x = probe.x.clone()
        x[rows] = torch.where(probe.visible[rows].unsqueeze(-1), 0.0, x[rows])
        full = overall_loss(
            subject, probe, sample_losses(subject, probe, predict(subject, probe, 8, x=x))
        )
    got = table.filter((pl.col("family") == "channel") & (pl.col("unit") == "PZ"))
    assert got["loss"][0] == pytest.approx(full, rel=1e-6)
    assert got["delta_loss"][0] == pytest.approx(full - base["loss"], rel=1e-5, abs=1e-9)


def test_failures_name_the_window_and_its_error():
    subject, probe = recon_subject(), make_probe()
    out = predict(subject, probe, 8)
    section = failure_section(subject, probe, out, worst_k=3)
    worst = section.tables["worst"].row(0, named=True)
    i = worst["seq_index"]
    pos = worst["window"] - 10 * i  # row_start = 10 * i in the probe's meta
    assert probe.mask[i, pos]
    assert worst["error"] == pytest.approx(
        float((out[i, pos] - probe.target[i, pos]).square().mean()), rel=1e-5
    )
    assert worst["error"] == section.numbers["max_error"]
    assert section.tables["worst"]["error"].is_sorted(descending=True)
    people = section.tables["by_participant"]
    assert people["n"].sum() == int(probe.mask.sum()) and people.height == 3
    assert section.tables["by_target_range"]["n"].sum() == int(probe.mask.sum())


def test_classifier_predictions_calibration_confusion_and_participants():
    subject, probe = clf_subject(), make_probe(n=12, classifier=True)
    out = predict(subject, probe, 5)
    section = prediction_section(subject, probe, out)
    n = section.numbers
    assert n["tn"] + n["fp"] + n["fn"] + n["tp"] == 12 and n["tp"] + n["fn"] == 6
    prob = torch.sigmoid(out.double()).numpy()
    assert n["accuracy"] == pytest.approx(
        float(((prob >= 0.5) == probe.label.numpy().astype(bool)).mean())
    )
    assert section.tables["calibration"]["n"].sum() == 12
    people = section.tables["per_participant"]
    p1 = np.array([i % 3 == 0 for i in range(12)])
    assert people.filter(pl.col("participant") == "01")["mean_prob"][0] == pytest.approx(
        prob[p1].mean()
    )
    grads = gradient_section(
        subject, probe
    )  # the reconstruction head is off the path: frozen, not dead
    assert (
        grads.tables["per_parameter"].filter(pl.col("name") == "model.head.weight")["status"][0]
        == "frozen"
    )
    assert grads.numbers["n_dead_layers"] == 0


def test_config_and_section_names_are_checked():
    assert parse_sections("failures, predictions") == ("predictions", "failures")
    with pytest.raises(ValueError, match="attribution"):
        parse_sections("attribution")
    with pytest.raises(ValueError, match="AutopsyConfig.split"):
        AutopsyConfig(split="validation")
    with pytest.raises(ValueError, match="baselines"):
        AttributionConfig(baselines="zero,blur")
    with pytest.raises(ValueError, match="mode"):
        AblationConfig(mode="noise")


def test_probe_choice_covers_every_channel_and_class():
    index = pl.DataFrame(
        {
            "seq_index": range(40),
            "channel": [f"C{i % 4}" for i in range(40)],
            "_label": [float(i // 20) for i in range(40)],
        }
    )
    chosen = choose_sequences(index, 8, seed=3, by=["channel", "_label"])
    picked = index.filter(pl.col("seq_index").is_in(chosen))
    assert len(chosen) == 8 and picked.group_by("channel", "_label").len().height == 8
    assert chosen == choose_sequences(index, 8, seed=3, by=["channel", "_label"])
    assert not math.isnan(float(picked["_label"].mean()))
