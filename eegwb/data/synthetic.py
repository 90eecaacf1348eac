"""A synthetic EEG cohort with known answers: planted label effect, planted defects, a manifest.

Each participant-run is a continuous recording (µV) built from parts real scalp EEG has:

    background   1/f^1.7 noise from one source per electrode
    alpha        narrow-band rhythm at a per-participant peak (8.5-11.5 Hz), posterior topography
    beta         broad 15-25 Hz rhythm, central topography
    state        alpha and beta amplitude drift over minutes (exp of a smooth process), so a
                 masked window is predictable from its neighbours
    blinks       100 µV bumps (~0.2 s) at random times, frontal sites only
    drift        slow electrode drifts (0.005-0.05 Hz), independent per channel
    line noise   50 or 60 Hz sinusoid, per-channel amplitude
    sensor noise white, 0.5 µV

Neural parts are mixed across channels through exp(-d / 0.4), d the chord distance between
electrodes on the unit sphere (volume conduction), so neighbours share signal and channel
identity matters. Label-1 participants get `effect_band_hz` power multiplied by
(1 + effect_size) in `effect_channels` (an exact spectral gain on the whole recording).
Samples are quantised to 1/32 µV, like an EDF's 16-bit integers, which also keeps files small.

Every random draw comes from a generator seeded by (seed, participant, run, stream), so a
config gives byte-identical samples and the effect can be switched off without changing
anything else. `manifest.json` records the config, each participant's label and rhythm
parameters, the label effect, and every planted defect with its file, rows and channel.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eegwb.atomic import OutputExistsError, atomic_write_text
from eegwb.data.layout import RecordingMeta, build_table, recording_filename, write_recording
from eegwb.data.montage import MONTAGES, electrode_positions

DEFECT_KINDS = (
    "flat_channel",  # one channel constant over a few consecutive windows
    "nan_stretch",  # NaN samples inside one window of one channel
    "inf_stretch",  # +inf samples inside one window of one channel
    "duplicated_windows",  # one window (all channels) copied exactly into another participant
    "near_duplicate",  # a copy plus 3% noise into another participant (cosine >= 0.995)
    "overlapping_windows",  # one run windowed with hop = window / 2
)
COPY_KINDS = ("duplicated_windows", "near_duplicate")
DEFAULT_EFFECT_CHANNELS = {
    "standard_1020": ("F3", "FZ", "F4"),
    "standard_1010_64": ("AF3", "AFZ", "AF4", "F1", "FZ", "F2"),
    "muse": ("AF7", "AF8"),
}
QUANTUM_UV = 1.0 / 32.0  # sample resolution; a power of two, so exact in float32
NEAR_DUPLICATE_NOISE = 0.03  # noise std relative to the window's RMS: cosine ~ 0.9996
MANIFEST_NAME = "manifest.json"
SYNTH_VERSION = 1  # bump when the signal model changes: it is part of every source_hash


@dataclass
class SynthConfig:
    """What to generate; see the module docstring for the signal model."""

    n_participants: int = 20  # 10 per label; ~60 MB on disk with the defaults below
    runs_per_participant: int = 2  # two recordings each, so splits must group by participant
    montage: str = "standard_1020"  # or "standard_1010_64" / "muse" (eegwb.data.montage.MONTAGES)
    sfreq: float = 256.0  # Muse's native rate; Nyquist 128 Hz keeps 50/60 Hz line noise
    window_samples: int = 2048  # 8 s at 256 Hz, the original pipeline's window
    n_windows: int = 24  # per run: 3.2 min at 8 s, long enough for minute-scale state drift
    line_noise_hz: float = 50.0  # mains: 50 Hz (Europe, Asia) or 60 Hz (Americas)
    label_name: str = "remission"  # the per-participant binary label written to metadata
    effect_channels: tuple[str, ...] | None = None  # None: frontal sites of the montage
    effect_band_hz: tuple[float, float] = (8.0, 12.0)  # alpha; (13, 30) for beta
    effect_size: float = 1.0  # band power x (1 + effect_size) for label 1; 0 = null effect.
    # 1.0 doubles it: per-participant band power separates the default cohort's labels.
    seed: int = 0
    defects: tuple[str, ...] = ()  # names from DEFECT_KINDS, each planted once

    def __post_init__(self) -> None:
        if self.montage not in MONTAGES:
            raise ValueError(f"SynthConfig.montage: {self.montage!r} not in {sorted(MONTAGES)}")
        channels = MONTAGES[self.montage]
        integers = ("n_participants", "runs_per_participant", "window_samples", "n_windows", "seed")
        for key in integers:
            value = getattr(self, key)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ValueError(f"SynthConfig.{key}: {value!r} must be an integer")
        if self.effect_channels is None:
            self.effect_channels = DEFAULT_EFFECT_CHANNELS[self.montage]
        if isinstance(self.effect_channels, str):  # one name, or "F3,F4" from a form or the CLI
            self.effect_channels = tuple(self.effect_channels.split(","))
        self.effect_channels = tuple(str(c).strip().upper() for c in self.effect_channels)
        self.effect_band_hz = tuple(map(float, self.effect_band_hz))  # type: ignore[assignment]
        if isinstance(self.defects, str):
            self.defects = tuple(d.strip() for d in self.defects.split(",") if d.strip())
        self.defects = tuple(self.defects)
        checks = [
            (self.n_participants >= 2, "n_participants", "must be >= 2 (both label values)"),
            (self.runs_per_participant >= 1, "runs_per_participant", "must be >= 1"),
            (self.sfreq >= 128.0, "sfreq", "must be >= 128 Hz (for 50/60 Hz line noise)"),
            (self.window_samples >= 32, "window_samples", "must be >= 32"),
            (self.n_windows >= 2, "n_windows", "must be >= 2"),
            (self.line_noise_hz in (50.0, 60.0), "line_noise_hz", "must be 50 or 60"),
            (self.line_noise_hz < self.sfreq / 2, "line_noise_hz", "must be below Nyquist"),
            (str(self.label_name).isidentifier(), "label_name", "must be an identifier"),
            (len(self.effect_band_hz) == 2, "effect_band_hz", "must be (low, high)"),
            (self.effect_size > -1.0, "effect_size", "must be > -1 (band power x (1 + size))"),
        ]
        for ok, key, problem in checks:
            if not ok:
                raise ValueError(f"SynthConfig.{key}: {getattr(self, key)!r} {problem}")
        low, high = self.effect_band_hz
        if not 0 < low < high < self.sfreq / 2:
            raise ValueError(
                f"SynthConfig.effect_band_hz: {self.effect_band_hz} needs 0 < low < high < sfreq/2"
            )
        bad = [c for c in self.effect_channels if c not in channels]
        if bad or not self.effect_channels:
            raise ValueError(
                f"SynthConfig.effect_channels: {bad or '()'} not in montage {self.montage!r}"
            )
        unknown = [d for d in self.defects if d not in DEFECT_KINDS]
        if unknown or len(set(self.defects)) != len(self.defects):
            raise ValueError(
                f"SynthConfig.defects: {list(self.defects)} must be distinct names from "
                f"{DEFECT_KINDS}"
            )
        n_rec = self.n_participants * self.runs_per_participant
        needed = len(self.defects) + sum(d in COPY_KINDS for d in self.defects)
        if needed > n_rec:
            raise ValueError(
                f"SynthConfig.defects: {list(self.defects)} need {needed} distinct recordings, "
                f"the cohort has {n_rec}; raise n_participants"
            )


@dataclass(frozen=True)
class Participant:
    """Per-participant draws (recorded in the manifest)."""

    participant: str
    label: int
    alpha_peak_hz: float
    alpha_uv: float
    beta_peak_hz: float
    beta_uv: float
    background_uv: float
    blink_rate_per_min: float
    blink_uv: float
    line_noise_uv: float


def _rng(cfg: SynthConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *keys])


def participant_ids(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"{i + 1:0{width}d}" for i in range(n)]


def run_ids(n: int) -> list[str]:
    return [str(r + 1) for r in range(n)]


def draw_participants(cfg: SynthConfig) -> list[Participant]:
    """Balanced labels (shuffled) and per-participant rhythm parameters."""
    labels = _rng(cfg, 0).permutation(np.arange(cfg.n_participants) % 2)
    out = []
    for i, pid in enumerate(participant_ids(cfg.n_participants)):
        rng = _rng(cfg, 1, i)
        out.append(
            Participant(
                participant=pid,
                label=int(labels[i]),
                alpha_peak_hz=float(rng.uniform(8.5, 11.5)),
                alpha_uv=float(12.0 * rng.lognormal(0.0, 0.3)),
                beta_peak_hz=float(rng.uniform(17.0, 23.0)),
                beta_uv=float(3.0 * rng.lognormal(0.0, 0.2)),
                background_uv=float(10.0 * rng.lognormal(0.0, 0.15)),
                blink_rate_per_min=float(rng.uniform(8.0, 20.0)),
                blink_uv=float(rng.uniform(70.0, 130.0)),
                line_noise_uv=float(rng.uniform(1.0, 4.0)),
            )
        )
    return out


def _topography(
    pos: np.ndarray, centre: tuple[float, float, float], width: float, floor: float
) -> np.ndarray:
    """(c,) weight falling as a Gaussian of chord distance from `centre` (unit sphere)."""
    c = np.asarray(centre) / np.linalg.norm(centre)
    d = np.linalg.norm(pos - c, axis=1)
    return floor + (1.0 - floor) * np.exp(-0.5 * (d / width) ** 2)


def _unit_amplitude(shape: np.ndarray, n: int) -> np.ndarray:
    """Scale an rfft amplitude shape so the real signal of length n has unit variance."""
    total = np.sum(shape**2)
    return shape * (n / (2.0 * np.sqrt(total))) if total > 0 else shape  # var = 4 sum S^2 / n^2


def _spectral_noise(rng: np.random.Generator, amplitude: np.ndarray, c: int) -> np.ndarray:
    """(c, n_bins) complex64 rfft coefficients: complex Gaussian times `amplitude` (n_bins,)."""
    z = rng.standard_normal((c, len(amplitude), 2), dtype=np.float32).view(np.complex64)[..., 0]
    return z * amplitude.astype(np.float32)


def _mixed(mix: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Real (c, c) mixing of complex64 (c, bins) coefficients: one real matmul on the re/im view."""
    return (mix @ coeffs.view(np.float32)).view(np.complex64)


def _smooth_process(
    rng: np.random.Generator, t: np.ndarray, period_s: tuple[float, float]
) -> np.ndarray:
    """(n,) sum of 4 slow sinusoids, unit variance: a state that wanders over minutes."""
    freqs = 1.0 / rng.uniform(*period_s, size=4)
    phases = rng.uniform(0, 2 * np.pi, size=4)
    return np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None]).sum(0) / np.sqrt(2.0)


def band_gain(
    freqs_hz: np.ndarray, band_hz: tuple[float, float], power_factor: float
) -> np.ndarray:
    """Amplitude gain sqrt(power_factor) inside the band, 0.5 Hz cosine tapers outside it."""
    low, high = band_hz
    taper = 0.5
    weight = np.clip(np.minimum(freqs_hz - (low - taper), (high + taper) - freqs_hz) / taper, 0, 1)
    weight = 0.5 - 0.5 * np.cos(np.pi * weight)
    return 1.0 + (np.sqrt(power_factor) - 1.0) * weight


def synth_recording(
    cfg: SynthConfig,
    person: Participant,
    p_index: int,
    r_index: int,
    pos: np.ndarray,
    hop_samples: int,
) -> np.ndarray:
    """(c, n_samples) float32 µV continuous recording, n = (n_windows - 1) * hop + window."""
    n = (cfg.n_windows - 1) * hop_samples + cfg.window_samples
    c = len(pos)
    t = np.arange(n, dtype=np.float64) / cfg.sfreq  # seconds
    freqs = np.fft.rfftfreq(n, 1.0 / cfg.sfreq)
    chord = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)  # (c, c)
    mix = np.exp(-chord / 0.4)
    mix = (mix / np.linalg.norm(mix, axis=1, keepdims=True)).astype(np.float32)  # unit variance
    rng = _rng(cfg, 2, p_index, r_index)
    pink = np.where(freqs > 0, (freqs + 1.0) ** -0.85, 0.0)  # power ~ 1/f^1.7
    alpha = np.exp(-0.5 * ((freqs - person.alpha_peak_hz) / 0.6) ** 2)
    beta = np.exp(-0.5 * ((freqs - person.beta_peak_hz) / 3.0) ** 2)
    # Unmixed per-electrode parts share the background's inverse FFT: white sensor noise
    # (0.5 µV) and slow drifts (0.005-0.05 Hz, ~8 µV), drawn together as one spectrum.
    drift = np.where((freqs >= 0.005) & (freqs <= 0.05), 1.0, 0.0)
    white_amp = 0.5 * np.sqrt(n / 2.0)  # flat rfft amplitude of 0.5 µV white noise
    unmixed = np.sqrt(white_amp**2 + (8.0 * _unit_amplitude(drift, n)) ** 2)
    spec = _mixed(mix, _spectral_noise(rng, person.background_uv * _unit_amplitude(pink, n), c))
    spec += _spectral_noise(rng, unmixed, c)
    x = np.fft.irfft(spec, n=n, axis=1)  # (c, n) float32
    state = _smooth_process(rng, t, (40.0, 300.0))
    alertness = _smooth_process(rng, t, (60.0, 400.0))
    posterior = _topography(pos, (0.0, -0.8, 0.55), 0.6, 0.15)
    central = _topography(pos, (0.0, 0.1, 1.0), 0.8, 0.4)
    for shape, amp_uv, topo, gain in (
        (alpha, person.alpha_uv, posterior, np.exp(0.4 * state)),
        (beta, person.beta_uv, central, np.exp(0.2 * alertness)),
    ):
        coeffs = _mixed(mix, _spectral_noise(rng, _unit_amplitude(shape, n), c))
        rhythm = np.fft.irfft(coeffs, n=n, axis=1)  # (c, n)
        x += (amp_uv * topo[:, None]).astype(np.float32) * rhythm * gain.astype(np.float32)
    # Blinks: Gaussian bumps (sd 80 ms) at Poisson times, frontal topography.
    n_blinks = rng.poisson(person.blink_rate_per_min * n / cfg.sfreq / 60.0)
    impulses = np.zeros(n)
    impulses[rng.integers(0, n, n_blinks)] = rng.uniform(0.7, 1.3, n_blinks) * person.blink_uv
    kernel_t = np.arange(-0.3, 0.3, 1.0 / cfg.sfreq)
    kernel = np.exp(-0.5 * (kernel_t / 0.08) ** 2)
    blinks = np.convolve(impulses, kernel)[(len(kernel) - 1) // 2 :][:n]  # centred, length n
    frontal = _topography(pos, (0.0, 0.95, -0.1), 0.35, 0.0)
    x += np.outer(frontal, blinks).astype(np.float32)
    # Line noise A sin(wt + phi) = A cos(phi) sin(wt) + A sin(phi) cos(wt): two outer products.
    line_amp = person.line_noise_uv * rng.uniform(0.5, 1.5, c)
    line_phase = rng.uniform(0, 2 * np.pi, c)
    wt = 2 * np.pi * cfg.line_noise_hz * t
    x += np.outer(line_amp * np.cos(line_phase), np.sin(wt)).astype(np.float32)
    x += np.outer(line_amp * np.sin(line_phase), np.cos(wt)).astype(np.float32)
    if person.label == 1 and cfg.effect_size != 0:
        rows = [MONTAGES[cfg.montage].index(ch) for ch in cfg.effect_channels]
        gain = band_gain(freqs, cfg.effect_band_hz, 1.0 + cfg.effect_size)
        x[rows] = np.fft.irfft(np.fft.rfft(x[rows], axis=1) * gain, n=n, axis=1)
    return (np.round(x / QUANTUM_UV) * QUANTUM_UV).astype(np.float32)


def windows_of(x: np.ndarray, window_samples: int, hop_samples: int) -> np.ndarray:
    """(c, n) recording -> (c, n_windows, window_samples) contiguous copy, starts at k * hop."""
    view = np.lib.stride_tricks.sliding_window_view(x, window_samples, axis=1)[:, ::hop_samples]
    return np.array(view, dtype=np.float32, order="C", copy=True)  # writable: defects go in


def plan_defects(cfg: SynthConfig) -> list[dict]:
    """Where each defect goes: distinct recordings; a copy's source: clean, another participant."""
    rng = _rng(cfg, 3)
    pids, rids = participant_ids(cfg.n_participants), run_ids(cfg.runs_per_participant)
    recs = [(p, r) for p in pids for r in rids]
    free = [recs[i] for i in rng.permutation(len(recs))]
    channels = MONTAGES[cfg.montage]
    w, nw = cfg.window_samples, cfg.n_windows
    plan = []
    for kind in sorted(cfg.defects, key=DEFECT_KINDS.index):  # same plan for any order given
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
            noise = _rng(cfg, 4).standard_normal(copy.shape) * NEAR_DUPLICATE_NOISE * rms
            copy = (np.round((copy + noise) / QUANTUM_UV) * QUANTUM_UV).astype(np.float32)
            a, b = copy.astype(np.float64), source[:, d["source"]["row"]].astype(np.float64)
            cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            d["min_cosine"] = float(cosine.min())
            d["noise_rel_std"] = NEAR_DUPLICATE_NOISE
        windows[:, d["rows"][0]] = copy


def _planted_windows(
    cfg: SynthConfig,
    people: list[Participant],
    p_index: int,
    r_index: int,
    pos: np.ndarray,
    defects: list[dict],
) -> tuple[np.ndarray, int]:
    """(c, n_windows, t) windows of one recording with its `defects` planted, and its hop."""
    w = cfg.window_samples
    hop = next((d["hop_samples"] for d in defects if d["kind"] == "overlapping_windows"), w)
    windows = windows_of(synth_recording(cfg, people[p_index], p_index, r_index, pos, hop), w, hop)
    for d in defects:
        source = None
        if d["kind"] in COPY_KINDS:  # regenerate the (clean) source recording
            src = d["source"]
            src_p = [q.participant for q in people].index(src["participant"])
            src_r = run_ids(cfg.runs_per_participant).index(src["run"])
            source = windows_of(synth_recording(cfg, people[src_p], src_p, src_r, pos, w), w, w)
        _apply_defect(d, windows, source, cfg)
    return windows, hop


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
        raise NotADirectoryError(f"{out}: exists and is not a directory")
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
            mine = [d for d in defects if (d["participant"], d["run"]) == (pid, rid)]
            windows, hop = _planted_windows(cfg, people, index[pid], ri, pos, mine)
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
        raise FileNotFoundError(
            f"{path}: no manifest (not a synthetic cohort, or its generation did not finish)"
        ) from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: manifest is not valid JSON ({err})") from err
