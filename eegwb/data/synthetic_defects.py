"""Planting known defects into a synthetic cohort: where each goes, and writing it into windows.

Each kind in `SynthConfig.defects` (names and meanings in `synthetic_config.DEFECT_KINDS`) is
planted once, in its own recording, except the cohort-wide kinds (`COHORT_KINDS`: a
nuisance planted in every recording of one label's participants). `plan_defects` decides
where from the config alone (file, rows, channel, samples; a copy's clean source recording
of another participant), so the plan is the manifest's `defects` list; `planted_windows`
builds one recording's windows with its defects written in and adds what was measured (a
flat channel's value, a near-duplicate's cosine) to the plan entries.
"""

from __future__ import annotations

import numpy as np

from eegwb.data.layout import recording_filename
from eegwb.data.montage import MONTAGES
from eegwb.data.synthetic_config import (
    COHORT_KINDS,
    COPY_KINDS,
    DEFECT_KINDS,
    SynthConfig,
    participant_ids,
    run_ids,
    synth_rng,
)
from eegwb.data.synthetic_signal import (
    QUANTUM_UV,
    Participant,
    draw_participants,
    synth_recording,
    windows_of,
)

NEAR_DUPLICATE_NOISE = 0.03  # noise std relative to the window's RMS: cosine ~ 0.9996
AMPLITUDE_CONFOUND_GAIN = 1.5  # ~2.5 between-participant SDs of log amplitude: a clear shortcut


def plan_defects(cfg: SynthConfig) -> list[dict]:
    """Where each defect goes: distinct recordings; a copy's source: clean, another participant."""
    rng = synth_rng(cfg, 3)
    pids, rids = participant_ids(cfg.n_participants), run_ids(cfg.runs_per_participant)
    recs = [(p, r) for p in pids for r in rids]
    free = [recs[i] for i in rng.permutation(len(recs))]
    channels = MONTAGES[cfg.montage]
    w, nw = cfg.window_samples, cfg.n_windows
    plan = []
    for kind in sorted(cfg.defects, key=DEFECT_KINDS.index):  # same plan for any order given
        if kind in COHORT_KINDS:  # draws from rng nothing: the other defects' plan is unchanged
            ones = [q.participant for q in draw_participants(cfg) if q.label == 1]
            d = {"kind": kind, "participants": ones, "label": cfg.label_name, "label_value": 1}
            if kind == "amplitude_confound":
                d["gain"] = AMPLITUDE_CONFOUND_GAIN
            else:  # one fixed unit topography over the montage, the same for everyone
                u = synth_rng(cfg, 5).standard_normal(len(channels))
                d["topography"] = (u / np.linalg.norm(u)).round(6).tolist()
            plan.append(d | {"files": "all their runs"})
            continue
        p, r = free.pop(0)
        d: dict = {"kind": kind, "file": recording_filename(p, r), "participant": p, "run": r}
        if kind == "flat_channel":
            length = min(3, nw - 1)
            start = int(rng.integers(0, nw - length + 1))
            d |= {"channel": str(rng.choice(channels)), "rows": list(range(start, start + length))}
        elif kind in ("nan_stretch", "inf_stretch"):
            length = max(1, min(w // 4, round(0.25 * cfg.sfreq)))
            s0 = int(rng.integers(0, w - length + 1))
            row = int(rng.integers(nw))
            d |= {"channel": str(rng.choice(channels)), "rows": [row], "samples": [s0, s0 + length]}
        elif kind == "overlapping_windows":
            d |= {"rows": list(range(nw)), "hop_samples": w // 2, "window_samples": w}
        else:  # a copy: take a clean recording of another participant as the source
            source = next((rec for rec in free if rec[0] != p), None)
            if source is None:
                raise ValueError(
                    f"SynthConfig.defects: no clean recording of another participant for {kind}; "
                    "raise n_participants"
                )
            free.remove(source)
            src_row, row = int(rng.integers(nw)), int(rng.integers(nw))
            src = {"file": recording_filename(*source), "participant": source[0], "run": source[1]}
            d |= {"channels": "all", "rows": [row], "source": src | {"row": src_row}}
        plan.append(d)
    return plan


def _apply_defect(
    d: dict, windows: np.ndarray, source: np.ndarray | None, cfg: SynthConfig
) -> None:
    """Plant `d` into `windows` (c, n_windows, t) in place; add measured values to `d`."""
    channels = MONTAGES[cfg.montage]
    kind = d["kind"]
    if kind == "flat_channel":
        c, rows = channels.index(d["channel"]), d["rows"]
        value = float(np.median(windows[c, rows]))  # a stuck amplifier holds a plausible level
        windows[c, rows] = np.float32(value)
        d["value"] = float(np.float32(value))
    elif kind in ("nan_stretch", "inf_stretch"):
        c, (s0, s1) = channels.index(d["channel"]), d["samples"]
        windows[c, d["rows"][0], s0:s1] = np.nan if kind == "nan_stretch" else np.inf
    elif kind in COPY_KINDS:
        assert source is not None
        copy = source[:, d["source"]["row"]].copy()  # (c, t)
        if kind == "near_duplicate":
            rms = np.sqrt(np.mean(copy.astype(np.float64) ** 2, axis=1, keepdims=True))
            noise = synth_rng(cfg, 4).standard_normal(copy.shape) * NEAR_DUPLICATE_NOISE * rms
            copy = (np.round((copy + noise) / QUANTUM_UV) * QUANTUM_UV).astype(np.float32)
            a, b = copy.astype(np.float64), source[:, d["source"]["row"]].astype(np.float64)
            cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            d["min_cosine"] = float(cosine.min())
            d["noise_rel_std"] = NEAR_DUPLICATE_NOISE
        windows[:, d["rows"][0]] = copy


def planted_windows(
    cfg: SynthConfig,
    people: list[Participant],
    p_index: int,
    r_index: int,
    pos: np.ndarray,
    defects: list[dict],
) -> tuple[np.ndarray, int]:
    """(c, n_windows, t) windows of one recording with its `defects` planted, and its hop.

    `defects`: the plan entries of this recording and every cohort-wide entry (each names
    its participants); a cohort-wide gain goes in first, so a copy planted later is exact."""
    w = cfg.window_samples
    hop = next((d["hop_samples"] for d in defects if d["kind"] == "overlapping_windows"), w)
    windows = windows_of(synth_recording(cfg, people[p_index], p_index, r_index, pos, hop), w, hop)
    cohort = [d for d in defects if d["kind"] in COHORT_KINDS]
    _apply_cohort(windows, people[p_index].participant, cohort)
    for d in defects:
        if d["kind"] in COHORT_KINDS:
            continue
        source = None
        if d["kind"] in COPY_KINDS:  # regenerate the source recording as it was written
            src = d["source"]
            src_p = [q.participant for q in people].index(src["participant"])
            src_r = run_ids(cfg.runs_per_participant).index(src["run"])
            source = windows_of(synth_recording(cfg, people[src_p], src_p, src_r, pos, w), w, w)
            _apply_cohort(source, src["participant"], cohort)
        _apply_defect(d, windows, source, cfg)
    return windows, hop


def _apply_cohort(windows: np.ndarray, participant: str, cohort: list[dict]) -> None:
    """Plant each cohort-wide entry naming `participant` into `windows` (c, n, t) in place: a
    gain, or a topography u projected out (x <- (I - u u^T) x, as removing one ICA component
    does); back on the sample grid (QUANTUM_UV)."""
    for d in cohort:
        if participant not in d["participants"]:
            continue
        if d["kind"] == "amplitude_confound":
            out = windows * d["gain"]
        else:
            u = np.asarray(d["topography"], dtype=np.float64)  # (c,)
            out = windows - np.einsum("c,d,dnt->cnt", u, u, windows.astype(np.float64))
        windows[:] = np.round(out / QUANTUM_UV) * QUANTUM_UV
