"""`eegwb synth`: write the synthetic cohort (the embedded default dataset) and its manifest."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from eegwb.data.montage import MONTAGES
    from eegwb.data.synthetic import DEFECT_KINDS, SynthConfig

    d = SynthConfig()
    parser.add_argument("--out", required=True, type=Path, help="output directory (must be empty)")
    parser.add_argument("--participants", type=int, default=d.n_participants, help="participants")
    parser.add_argument("--runs", type=int, default=d.runs_per_participant, help="runs each")
    parser.add_argument("--montage", choices=sorted(MONTAGES), default=d.montage)
    parser.add_argument("--sfreq", type=float, default=d.sfreq, help="sampling rate, Hz")
    parser.add_argument("--window-samples", type=int, default=d.window_samples)
    parser.add_argument("--n-windows", type=int, default=d.n_windows, help="windows per run")
    parser.add_argument(
        "--line-noise-hz", type=float, choices=(50.0, 60.0), default=d.line_noise_hz
    )
    parser.add_argument(
        "--effect-size",
        type=float,
        default=d.effect_size,
        help="label-1 band power x (1 + X) in the effect channels; 0 = no label effect",
    )
    parser.add_argument(
        "--effect-band-hz", type=float, nargs=2, metavar=("LOW", "HIGH"), default=d.effect_band_hz
    )
    parser.add_argument(
        "--effect-channels",
        default=None,
        help="comma-separated channels carrying the label effect (default: frontal sites)",
    )
    parser.add_argument(
        "--defects", default="", help=f"comma-separated defects to plant: {','.join(DEFECT_KINDS)}"
    )
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing cohort")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    from eegwb.config import from_dict
    from eegwb.data.synthetic import SynthConfig, generate_cohort
    from eegwb.errors import InputError

    try:
        cfg = from_dict(
            SynthConfig,
            {
                "n_participants": args.participants,
                "runs_per_participant": args.runs,
                "montage": args.montage,
                "sfreq": args.sfreq,
                "window_samples": args.window_samples,
                "n_windows": args.n_windows,
                "line_noise_hz": args.line_noise_hz,
                "effect_channels": _split(args.effect_channels),
                "effect_band_hz": tuple(args.effect_band_hz),
                "effect_size": args.effect_size,
                "seed": args.seed,
                "defects": _split(args.defects) or (),
            },
        )
        started = time.perf_counter()
        manifest = generate_cohort(
            args.out, cfg, overwrite=args.overwrite, progress=not args.no_progress
        )
    except InputError as err:
        print(f"eegwb synth: error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    size_mb = sum(f.stat().st_size for f in Path(args.out).glob("sub-*_run-*.parquet")) / 1e6
    labels = Counter(p["label"] for p in manifest["participants"])
    effect = manifest["label"]
    defects = (
        ", ".join(
            f"{d['kind']} in {d['file']}"
            if "file" in d
            else f"{d['kind']} in every run of {len(d['participants'])} participants "
            f"({d['label']}={d['label_value']})"
            for d in manifest["defects"]
        )
        or "none"
    )
    print(
        f"wrote {len(manifest['files'])} recordings of {cfg.n_participants} participants to "
        f"{args.out} ({size_mb:.1f} MB, {seconds:.1f} s)\n"
        f"  montage {cfg.montage}: {len(manifest['channels'])} channels, {cfg.sfreq:g} Hz, "
        f"{cfg.n_windows} windows of {cfg.window_samples} samples per run\n"
        f"  label {effect['name']!r}: {labels[1]} x 1, {labels[0]} x 0; band power "
        f"x{effect['band_power_factor']:g} in {effect['band_hz']} Hz at "
        f"{','.join(effect['channels'])}\n"
        f"  defects: {defects}\n"
        f"  manifest: {Path(args.out) / 'manifest.json'}"
    )
    return 0
