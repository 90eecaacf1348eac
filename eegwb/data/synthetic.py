"""A synthetic EEG cohort with known answers: planted label effect, planted defects, a manifest.

`generate_cohort` writes one Parquet file per participant-run in the dataset layout
(`layout.py`), then `manifest.json`, which records the config, each participant's label and
rhythm parameters, the label effect, and every planted defect with its file, rows and channel.
The parts: the config and seeded draws (`synthetic_config.py`), the signal model
(`synthetic_signal.py`), the defects (`synthetic_defects.py`). Their public names are
re-exported here, the cohort's one import.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from eegwb.atomic import OutputExistsError, atomic_write_text
from eegwb.data.layout import DatasetError, RecordingMeta, build_table, write_recording
from eegwb.data.montage import MONTAGES, electrode_positions
from eegwb.data.synthetic_config import (
    COHORT_KINDS,
    COPY_KINDS,
    DEFAULT_EFFECT_CHANNELS,
    DEFECT_KINDS,
    SynthConfig,
    participant_ids,
    run_ids,
)
from eegwb.data.synthetic_defects import (
    AMPLITUDE_CONFOUND_GAIN,
    NEAR_DUPLICATE_NOISE,
    plan_defects,
    planted_windows,
)
from eegwb.data.synthetic_signal import (
    QUANTUM_UV,
    Participant,
    band_gain,
    draw_participants,
    synth_recording,
    windows_of,
)
from eegwb.errors import MissingInputError

__all__ = [
    "AMPLITUDE_CONFOUND_GAIN",
    "COHORT_KINDS",
    "COPY_KINDS",
    "DEFAULT_EFFECT_CHANNELS",
    "DEFECT_KINDS",
    "MANIFEST_NAME",
    "NEAR_DUPLICATE_NOISE",
    "QUANTUM_UV",
    "SYNTH_VERSION",
    "Participant",
    "SynthConfig",
    "band_gain",
    "draw_participants",
    "generate_cohort",
    "participant_ids",
    "plan_defects",
    "read_manifest",
    "run_ids",
    "synth_recording",
    "windows_of",
]

MANIFEST_NAME = "manifest.json"
SYNTH_VERSION = 1  # bump when the signal model changes: it is part of every source_hash


def _source_hash(cfg: SynthConfig, participant: str, run: str) -> str:
    import xxhash

    key = {"generator": SYNTH_VERSION, "config": asdict(cfg), "participant": participant}
    key["run"] = run
    return xxhash.xxh3_128_hexdigest(json.dumps(key, sort_keys=True).encode())


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Many small matmuls: BLAS threads cost more than they save, worst on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(
                f"{out}: output directory is not empty (use --overwrite to replace the cohort)"
            )
        (out / MANIFEST_NAME).unlink(missing_ok=True)  # first: a manifest means a complete cohort
        for old in out.glob("sub-*_run-*.parquet"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)


def generate_cohort(
    out: str | Path,
    config: SynthConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Write one Parquet file per participant-run, then manifest.json; return the manifest."""
    from tqdm.auto import tqdm

    cfg = config or SynthConfig()
    out = Path(out)
    _prepare_output(out, overwrite)
    channels = MONTAGES[cfg.montage]
    positions = electrode_positions(channels)
    pos = np.array([positions[ch] for ch in channels])  # (c, 3)
    people = draw_participants(cfg)
    index = {person.participant: i for i, person in enumerate(people)}
    defects = plan_defects(cfg)
    w, rids = cfg.window_samples, run_ids(cfg.runs_per_participant)
    files = []
    recs = [(person, ri) for person in people for ri in range(len(rids))]
    with _one_blas_thread():
        for person, ri in tqdm(recs, desc=f"synth {out.name}", unit="rec", disable=not progress):
            pid, rid = person.participant, rids[ri]
            mine = [
                d
                for d in defects
                if "participants" in d  # cohort-wide: names its people
                or (d["participant"], d["run"]) == (pid, rid)
            ]
            windows, hop = planted_windows(cfg, people, index[pid], ri, pos, mine)
            meta = RecordingMeta(
                sfreq=cfg.sfreq,
                window_samples=w,
                hop_samples=hop,
                channel_positions=positions,
                montage=cfg.montage,
                source_file="synthetic",
                source_hash=_source_hash(cfg, pid, rid),
                labels={cfg.label_name: person.label},
            )
            signals = {ch: windows[c] for c, ch in enumerate(channels)}
            table = build_table(pid, rid, signals, np.arange(cfg.n_windows) * hop, meta)
            path = write_recording(out, table, overwrite=overwrite)
            files.append(
                {"file": path.name, "participant": pid, "run": rid, "n_windows": cfg.n_windows}
                | {"hop_samples": hop, "label": person.label}
            )
    manifest = {
        "kind": "eegwb.synthetic_cohort",
        "generator_version": SYNTH_VERSION,
        "config": asdict(cfg),
        "montage": cfg.montage,
        "channels": channels,
        "sfreq": cfg.sfreq,
        "window_samples": w,
        "label": {
            "name": cfg.label_name,
            "channels": list(cfg.effect_channels),
            "band_hz": list(cfg.effect_band_hz),
            "effect_size": cfg.effect_size,
            "band_power_factor": 1.0 + cfg.effect_size,
            "applies_to_value": 1,
        },
        "participants": [asdict(person) for person in people],
        "files": files,
        "defects": defects,
    }
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    atomic_write_text(out / MANIFEST_NAME, text)
    return json.loads(text)  # exactly what is on disk (tuples as lists)


def read_manifest(root: str | Path) -> dict:
    """The manifest of a synthetic cohort (error naming the file if missing or unreadable)."""
    path = Path(root) / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise MissingInputError(
            f"{path}: no manifest (not a synthetic cohort, or its generation did not finish)"
        ) from err
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: manifest is not valid JSON ({err})") from err
