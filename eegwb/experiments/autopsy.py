"""Model autopsy: why a trained model does what it does, as a report that answers in minutes.

`run_autopsy(checkpoint, data, sections, out_dir)` loads a pretrained (masked
reconstruction) or fine-tuned (classifier) checkpoint, opens its evaluation split (the
pretraining val split, or the fine-tuning test participants; `data` points it at another
dataset), draws one fixed probe set (`max_sequences` sequences spread over channels and
classes, seeded masks), runs the sections on it and writes the report (markdown + HTML,
logged to MLflow under the checkpoint's run). `Autopsy` exposes the same steps one at a
time, so notebook 05 runs the cheap sections at once and the expensive ones (IG,
ablations) on a button. `autopsy_once` is what training calls when it finishes or stops
early: a marker file makes every later call for the same checkpoint a no-op.

On a synthetic cohort the manifest says where the planted label effect lives (channels,
band); for a classifier of that label the report checks that the attribution and
ablation rankings put them near the top.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from eegwb.atomic import atomic_write_text
from eegwb.config import ConfigError, from_dict, to_dict
from eegwb.data.dataset import EEGDataset, collate
from eegwb.data.splits import participant_selection
from eegwb.errors import InputError
from eegwb.experiments.ablations import AblationConfig, ablation_section
from eegwb.experiments.activations import AUTOPSY_KERNEL_NOTE, activation_section, reference_path
from eegwb.experiments.attributions import AttributionConfig, attribution_section, bands
from eegwb.experiments.failures import failure_section
from eegwb.experiments.gradients import gradient_section
from eegwb.experiments.model_probe import load_objective, open_split
from eegwb.experiments.predictions import ProbeSet, Subject, predict, prediction_section
from eegwb.experiments.reconstruction import probe_floors
from eegwb.experiments.report import AutopsyReport, Finding, Section, check_writable, log_report
from eegwb.model.masking import apply_mask, make_mask
from eegwb.model.targets import make_target
from eegwb.train.checkpoints import load_checkpoint
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.finetune_data import sequence_labels
from eegwb.train.finetune_report import TAG_FINETUNED, load_finetuned
from eegwb.train.labels import recording_labels
from eegwb.train.tracking import TAG_CHECKPOINT, TAG_CHECKPOINT_LAST, resolve_tracking_uri

log = logging.getLogger(__name__)

SECTIONS = ("predictions", "gradients", "activations", "attributions", "ablations", "failures")
CHEAP_SECTIONS = ("predictions", "gradients", "activations", "failures")  # seconds, not minutes


@dataclass
class AutopsyConfig:
    split: str | None = None  # None: "val" (pretrained) or "test" (fine-tuned); also train / all
    max_sequences: int = (
        32  # the probe set: every section scores these (IG costs ~ sequences x steps)
    )
    batch_size: int = 16  # sequences per forward pass
    seed: int = 0  # probe choice, masks and the noise baseline
    worst_k: int = 10
    device: str = "cpu"  # "cuda" speeds up IG; the reference path runs anywhere
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)

    def __post_init__(self) -> None:
        if self.split not in (None, "train", "val", "test", "all"):
            raise ValueError(f"AutopsyConfig.split: {self.split!r} is not train, val, test or all")
        for name in ("max_sequences", "batch_size", "worst_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"AutopsyConfig.{name}: must be >= 1, got {getattr(self, name)}")


def parse_sections(sections: str | Sequence[str]) -> tuple[str, ...]:
    """'predictions,ablations' or a list -> names in report order; unknown names are errors."""
    names = [
        s.strip()
        for s in (sections.split(",") if isinstance(sections, str) else sections)
        if s.strip()
    ]
    bad = [s for s in names if s not in SECTIONS]
    if bad or not names:
        raise ConfigError(f"sections: {bad or '(none)'} not in {', '.join(SECTIONS)}")
    return tuple(s for s in SECTIONS if s in names)


def choose_sequences(index: pl.DataFrame, n: int, seed: int, by: Sequence[str]) -> list[int]:
    """Up to n seq_index values, round-robin over the groups `by` (channel, label) in a
    seeded random order, so every channel and class is in the probe set when n allows."""
    rng = np.random.default_rng(seed)
    order = index.select("seq_index", *by).with_columns(r=pl.Series(rng.permutation(index.height)))
    ranked = order.with_columns(k=pl.col("r").rank("ordinal").over(list(by))).sort("k", "r")
    return sorted(ranked["seq_index"].head(n).to_list())


# ----------------------------------------------------------------------------- loading


def _load_finetuned(
    path: Path, ckpt: dict, data: str | Path | None, split: str, device: torch.device
) -> dict[str, Any]:

    clf, ckpt = load_finetuned(path, map_location=str(device))
    cfg = from_dict(FinetuneConfig, ckpt["config"])
    root = Path(data or cfg.data.root)
    same = Path(cfg.data.root).resolve() == root.resolve()
    people = (ckpt.get("participants") or {}).get(split) if split != "all" and same else None
    if split != "all" and same and not people:
        raise InputError(
            f"{path}: the checkpoint records no {split!r} participants; use split 'all'"
        )
    ds = EEGDataset.open(
        root,
        selection=participant_selection(root, people) if people else None,
        channels=cfg.data.channels,
        normalisation=cfg.data.normalisation,
        max_windows=cfg.data.max_windows,
        cache_dir=cfg.data.cache_dir if same else None,
    )
    labels = sequence_labels(
        ds.index, recording_labels(root, cfg.labels), f"{root} (label {cfg.labels.name!r})"
    )
    return {
        "subject": Subject(
            "classifier",
            clf.to(device).eval(),
            clf.model,
            float(ckpt.get("threshold", 0.5)),
            device,
        ),
        "dataset": ds,
        "labels": labels,
        "label_name": cfg.labels.name,
        "config": ckpt["config"],
        "model_config": ckpt["model_config"],
        "tracking": cfg.tracking,
        "run_tag": TAG_FINETUNED,
        "trained_on": str(ckpt.get("pretrained", "")),
    }


def _load_pretrained(
    path: Path, ckpt: dict, data: str | Path | None, split: str, device: torch.device
) -> dict[str, Any]:

    if split == "test":
        raise InputError(f"{path}: pretraining never reads a test split; use val, train or all")
    objective, cfg = load_objective(path, device)
    ds = open_split(cfg, split, data_root=data)
    describe = ckpt.get("describe", {})
    return {  # the floors of a val probe learn their group means on the train participants
        "train_dataset": open_split(cfg, "train", data_root=data) if split == "val" else None,
        "subject": Subject("reconstruction", objective.model, objective.model, device=device),
        "objective": objective,
        "dataset": ds,
        "labels": None,
        "label_name": None,
        "config": to_dict(cfg),
        "model_config": to_dict(cfg.model),
        "tracking": cfg.tracking,
        "run_tag": TAG_CHECKPOINT,
        "trained_on": str(describe.get("kernel_path", "unknown")),
    }


def build_probe(loaded: dict[str, Any], cfg: AutopsyConfig) -> ProbeSet:
    """The fixed probe set: chosen sequences, collated; masks and targets for reconstruction."""

    ds, labels = loaded["dataset"], loaded["labels"]
    index = ds.index
    by = ["channel"]
    if labels is not None:
        index = index.with_columns(_label=pl.Series(labels[index["seq_index"].to_numpy()]))
        by.append("_label")
    chosen = ds.subset(choose_sequences(index, cfg.max_sequences, cfg.seed, by))
    batch = collate([chosen[i] for i in range(len(chosen))])
    order = pl.DataFrame({"seq_index": batch.seq_index.numpy()})
    meta = order.join(
        ds.index.select("seq_index", "participant", "run", "channel", "row_start", "n_windows"),
        on="seq_index",
        how="left",
        maintain_order="left",
    )
    probe = ProbeSet(batch.x, batch.coords, batch.pad_mask, meta)
    if labels is not None:
        probe.label = torch.from_numpy(labels[batch.seq_index.numpy()].astype(np.float32))
    else:
        obj = loaded["objective"]
        gen = torch.Generator().manual_seed(cfg.seed)
        probe.mask = make_mask(batch.pad_mask, obj.masking.mask_ratio, generator=gen)
        probe.x = apply_mask(batch.x, probe.mask, obj.masking.style, generator=gen)
        if (
            obj.masking.style == "bert"
        ):  # 10% of masked windows stay as they were: the model sees them
            probe.kept = probe.mask & (probe.x == batch.x).all(-1) & batch.x.ne(0).any(-1)
        with torch.no_grad(), reference_path(obj.model):
            dev = loaded["subject"].device
            probe.target = (
                make_target(obj.target_kind, batch.x.to(dev), obj.model.token_encoder, obj.teacher)
                .float()
                .cpu()
            )
            train = loaded["train_dataset"]
            probe.floors = probe_floors(probe, obj.targets, train, cfg.batch_size, dev)
    return probe


# ----------------------------------------------------------------------------- the autopsy


class Autopsy:
    """One checkpoint, one split, one probe set; sections run on demand and are kept."""

    def __init__(
        self,
        checkpoint: str | Path,
        data: str | Path | None = None,
        config: AutopsyConfig | None = None,
    ):

        self.checkpoint = Path(checkpoint)
        self.cfg = config or AutopsyConfig()
        device = torch.device(self.cfg.device)
        ckpt = load_checkpoint(self.checkpoint)
        finetuned = ckpt.get("kind") == "finetuned"
        split = self.cfg.split or ("test" if finetuned else "val")
        load = _load_finetuned if finetuned else _load_pretrained
        self.loaded = load(self.checkpoint, ckpt, data, split, device)
        del ckpt
        self.subject: Subject = self.loaded["subject"]
        self.dataset = self.loaded["dataset"]
        self.split = split
        self.probe = build_probe(self.loaded, self.cfg)
        self.sections: dict[str, Section] = {}
        self._out: torch.Tensor | None = None

    @property
    def outputs(self) -> torch.Tensor:
        if self._out is None:
            with reference_path(self.subject.module):
                self._out = predict(self.subject, self.probe, self.cfg.batch_size)
        return self._out

    def sees_input(self) -> bool:
        return bool(self.probe.visible.any())

    def run(
        self,
        name: str,
        *,
        attributions: Section | None = None,
        progress: Callable[[str], None] | None = None,
        bar: bool = False,
    ) -> Section:
        """Run one section (again), keep it in `sections` and return it. Ablations are
        compared with `attributions` (default: the attributions section run before);
        `progress` hears each IG baseline as it starts."""
        t0 = time.perf_counter()
        s, p, c, sfreq = self.subject, self.probe, self.cfg, float(self.dataset.sfreq)
        if name in ("attributions", "ablations") and not self.sees_input():
            section = Section(
                name,
                name.capitalize(),
                {"visible_windows": 0},
                {},
                [
                    Finding(
                        "fail",
                        "Every window is masked: the model sees no signal, so there is nothing to "
                        "attribute or "
                        "ablate. Any loss decrease can only come from the position and channel "
                        "encodings.",
                        "This is the 100%-mask control: compare its loss with the position/channel "
                        "floors "
                        "(`eegwb control`) before reading any lower-mask result.",
                    )
                ],
            )
        elif name == "predictions":
            section = prediction_section(s, p, self.outputs, self.loaded["config"])
        elif name == "gradients":
            with reference_path(s.module):
                section = gradient_section(s, p, c.batch_size)
        elif name == "activations":
            section = activation_section(s, p, c.batch_size)
        elif name == "attributions":
            section = attribution_section(s, p, sfreq, c.attribution, progress=progress, bar=bar)
        elif name == "ablations":
            section = ablation_section(
                s, p, sfreq, c.ablation, attributions or self.sections.get("attributions"), bar=bar
            )
        elif name == "failures":
            section = failure_section(s, p, self.outputs, c.worst_k)
        else:
            raise InputError(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        section.elapsed_s = time.perf_counter() - t0
        self.sections[name] = section
        return section

    def run_all(
        self,
        sections: Sequence[str] = SECTIONS,
        progress: Callable[[str], None] | None = None,
        *,
        bar: bool = False,
    ) -> dict[str, Section]:
        """Run `sections` in report order (attributions before ablations, for their agreement)."""
        names = parse_sections(sections)
        for name in tqdm(names, desc="autopsy", disable=not bar):
            if progress is not None:
                progress(name)
            self.run(name, bar=bar)
        return self.sections

    def header(self) -> dict[str, Any]:
        mc = self.loaded["model_config"]
        return {
            "checkpoint": str(self.checkpoint),
            "kind": self.subject.kind,
            "model": f"{mc.get('backbone')} d_model={mc.get('d_model')} "
            f"n_layers={mc.get('n_layers')} target={mc.get('target')}",
            "data": str(self.dataset.root),
            "split": self.split,
            "sequences": f"{len(self.probe)} of {len(self.dataset)} (seed {self.cfg.seed})",
            "channels": ",".join(self.dataset.channels),
            "sfreq_hz": float(self.dataset.sfreq),
            "window_samples": int(self.dataset.window_samples),
            "time_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "trained_with": self.loaded["trained_on"],
            "autopsy_kernel_path": "reference (hookable)",
            "kernel_note": AUTOPSY_KERNEL_NOTE,
            "config": self.loaded["config"],
        }

    def report(self, sections: dict[str, Section] | None = None) -> AutopsyReport:
        """The report of `sections` (default: every section run so far), in report order."""
        given = self.sections if sections is None else sections
        sections = {n: given[n] for n in SECTIONS if n in given}
        planted = planted_effect_section(
            self.dataset.root, self.loaded.get("label_name"), sections, float(self.dataset.sfreq)
        )
        if planted is not None:
            sections["planted"] = planted
        positions = {
            ch: list(map(float, xyz))
            for ch, xyz in self.dataset.index.group_by("channel")
            .agg(pl.col("x", "y", "z").first())
            .select("channel", pl.concat_list("x", "y", "z"))
            .iter_rows()
        }
        return AutopsyReport(self.header(), sections, positions)

    def log(
        self, report: AutopsyReport, *, run_id: str | None = None, tracking_uri: str | None = None
    ) -> str | None:
        """Log `report` to MLflow under the checkpoint's run (`run_id`, else found by its
        checkpoint tag) in the checkpoint config's store; nothing when its tracking is off."""
        tc = self.loaded["tracking"]
        if not tc.enabled:
            return None
        uri = tracking_uri or tc.uri
        parent = run_id or find_checkpoint_run(
            self.checkpoint, uri, tc.experiment, self.loaded["run_tag"]
        )
        return log_report(report, run_id=parent, tracking_uri=uri, experiment=tc.experiment)


def planted_effect_section(
    root: Path, label_name: str | None, sections: dict[str, Section], sfreq: float
) -> Section | None:
    """Ranks of the manifest's planted channels and band in the IG and ablation rankings
    (None unless a classifier of the planted label is autopsied on a synthetic cohort)."""
    manifest_path = Path(root) / "manifest.json"
    if label_name is None or not manifest_path.is_file():
        return None
    effect = json.loads(manifest_path.read_text()).get("label", {})
    if effect.get("name") != label_name or not effect.get("effect_size"):
        return None
    planted, (lo, hi) = [str(c).upper() for c in effect["channels"]], effect["band_hz"]
    numbers: dict[str, Any] = {
        "planted_channels": ",".join(planted),
        "planted_band_hz": f"{lo}-{hi}",
    }
    overlap = {name: max(0.0, min(hi, b[1]) - max(lo, b[0])) for name, b in bands(sfreq).items()}
    band = max(overlap, key=overlap.get)
    numbers["planted_band"] = band
    findings = []
    for sec in ("attributions", "ablations"):
        t = sections.get(sec)
        if t is None or "per_channel" not in t.tables:
            continue
        ranked = t.tables["per_channel"].sort("importance", descending=True)["channel"].to_list()
        channel_numbers, channel_findings = _planted_channel_ranks(sec, ranked, planted)
        numbers |= channel_numbers
        findings += channel_findings
        if "per_band" in t.tables:
            ranked_bands = (
                t.tables["per_band"].sort("importance", descending=True)["band"].to_list()
            )
            numbers[f"{sec}_band_rank"] = (
                ranked_bands.index(band) + 1 if band in ranked_bands else -1
            )
    notes = [
        (
            "The synthetic cohort's manifest says where the label effect was planted: a model that "
            "learnt the "
            "label should rank those channels and that band near the top (rank 1 = most important)."
        )
    ]
    return Section("planted", "Planted effect (synthetic cohort)", numbers, {}, findings, notes)


def _planted_channel_ranks(
    sec: str, ranked: list[str], planted: list[str]
) -> tuple[dict[str, Any], list[Finding]]:
    """Ranks and recall@k of the planted channels in `ranked` (most important first). Only the
    planted channels the model has count (k = how many): one it never sees cannot rank, and
    counting it would blame the model for the montage."""
    probed = [c for c in planted if c in ranked]
    numbers: dict[str, Any] = {
        f"{sec}_channel_ranks": ",".join(str(ranked.index(c) + 1) for c in probed),
        f"{sec}_planted_channels_probed": ",".join(probed),
    }
    if not probed:
        return numbers, [
            Finding(
                "info",
                f"None of the planted channels ({', '.join(planted)}) is among the "
                f"{len(ranked)} channels the {sec} ranked: the planted-effect check cannot apply.",
                "Autopsy a model trained on the planted channels to test whether it "
                "found the effect.",
            )
        ]
    recall = len(set(ranked[: len(probed)]) & set(probed)) / len(probed)
    numbers[f"{sec}_channel_recall_at_k"] = recall
    if recall >= 0.5:
        return numbers, []
    return numbers, [
        Finding(
            "warn",
            f"The {sec} ranking misses the planted channels (ranks "
            f"{numbers[f'{sec}_channel_ranks']} of {len(ranked)} for {', '.join(probed)}).",
            "The model may use something else than the planted effect (a confound, or noise); "
            "check the baseline's AUROC and train longer or with more participants.",
        )
    ]


# ----------------------------------------------------------------------------- entry points


def default_out_dir(checkpoint: str | Path) -> Path:
    return Path("reports") / "autopsy" / Path(checkpoint).stem


def find_checkpoint_run(
    checkpoint: str | Path, tracking_uri: str | None, experiment: str, tag: str
) -> str | None:
    """The MLflow run whose checkpoint tag names this file (None when not found or unreachable)."""
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return None
        target = Path(checkpoint).resolve()
        for run in client.search_runs(
            [exp.experiment_id], order_by=["start_time DESC"], max_results=500
        ):
            for key in (tag, TAG_CHECKPOINT_LAST):
                value = run.data.tags.get(key)
                if value and Path(value).resolve() == target:
                    return run.info.run_id
    except Exception as err:  # noqa: BLE001 - tracking must never stop an autopsy
        log.warning("could not look up the MLflow run of %s: %s", checkpoint, err)
    return None


def run_autopsy(
    checkpoint: str | Path,
    data: str | Path | None = None,
    sections: str | Sequence[str] = SECTIONS,
    out_dir: str | Path | None = None,
    *,
    config: AutopsyConfig | None = None,
    overwrite: bool = False,
    track: bool = True,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
    bar: bool = False,
) -> AutopsyReport:
    """Autopsy `checkpoint` on `data` (default: its own split), write the report to `out_dir`
    (report.md, report.html, report.json, charts/) and log it to MLflow under the checkpoint's
    run (`run_id`, else found by its checkpoint tag) unless `track` is False."""
    if out_dir is not None:
        check_writable(out_dir, overwrite)  # before minutes of work, not after
    autopsy = Autopsy(checkpoint, data, config)
    autopsy.run_all(sections, progress, bar=bar)
    report = autopsy.report()
    if out_dir is not None:
        report.write(out_dir, overwrite=overwrite)
    if track:
        autopsy.log(report, run_id=run_id, tracking_uri=tracking_uri)
    return report


def marker_name(checkpoint: str | Path) -> str:
    """`autopsy.<key>.started.json`, key from the checkpoint's path, size and mtime: a checkpoint
    rewritten by a new training run is a new checkpoint, autopsied again."""
    import xxhash

    path = Path(checkpoint)
    try:
        st = path.stat()
        ident = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        ident = f"{path.resolve()}:missing"
    return f"autopsy.{xxhash.xxh3_64_hexdigest(ident.encode())}.started.json"


def autopsy_once(
    checkpoint: str | Path | None, *, out_dir: str | Path | None = None, **kwargs: Any
) -> AutopsyReport | None:
    """`run_autopsy` unless it already ran on this very checkpoint file (same path, size and
    mtime) into this folder; for training to call when it finishes and when it stops early.
    Never raises: a failure is logged and written to `autopsy.failed.txt`, and training's
    result stands. `kwargs` go to `run_autopsy` (data, sections, config, run_id, ...)."""

    if checkpoint is None:
        return None
    out = Path(out_dir) if out_dir is not None else default_out_dir(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / marker_name(checkpoint)
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        log.info("autopsy of %s already ran (%s exists)", checkpoint, marker)
        return None
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {"checkpoint": str(checkpoint), "started_utc": dt.datetime.now(dt.UTC).isoformat()}, fh
        )
    for stale in out.glob(
        "autopsy.*.started.json"
    ):  # markers of earlier versions of the checkpoint
        if stale != marker:
            stale.unlink(missing_ok=True)
    try:
        return run_autopsy(checkpoint, out_dir=out, overwrite=True, **kwargs)
    except Exception as err:  # noqa: BLE001 - the autopsy must never fail a training run
        log.warning("autopsy of %s failed (training is unaffected): %s", checkpoint, err)
        atomic_write_text(out / "autopsy.failed.txt", traceback.format_exc())
        return None
