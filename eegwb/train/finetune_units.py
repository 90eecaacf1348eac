"""The units fine-tuning trains and tests on: length-matched, and audited for shortcuts.

A model must not score on how long a unit is.
On PhysioNet's EEGMAT, rest recordings give 22 windows of 8 s and arithmetic ones 7. With
the original `max_windows: 32`, a fine-tuned model that had learnt nothing reached
recording AUROC 0.88-0.91 from sequence length alone; with `max_windows: 7`, the 1-window
tail chunks that only rest recordings have gave a frozen model AUROC 0.986. So by default
(`data.length_match: crop`) every unit the model trains and is tested on is a crop of the
same number of windows, taken at the same offsets in every recording (0, L, 2L, ... as many
as the shortest labelled recording holds): neither a unit's length nor its position in
the recording can tell the classes apart. `crop_all` keeps every whole crop of every
recording (more training data; later crops exist only in longer recordings, so position
may still differ between classes: the shortcut gate says so). `none` is the original:
chunks of at most `max_windows`, tails kept.

L is `data.crop_windows`, else `max_windows` but never more than the shortest labelled
recording (or splits-file range) allows; `LengthMatch.describe()` says what was chosen.

`shortcut_gate` then audits exactly those units (`eegwb.validation.shortcuts`) before any
training: can length, position, recording order, amplitude, line noise or metadata give
the label on what the models will be scored on?
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import polars as pl

from eegwb.data.layout import DatasetError
from eegwb.data.sequences import chunk_rows
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.finetune_data import Fold
from eegwb.validation.shortcuts import ShortcutError, ShortcutReport, audit_units

log = logging.getLogger(__name__)
MODES = ("crop", "crop_all", "none")
SELECTION = ("file", "participant", "run", "row_start", "row_end")


@dataclass(frozen=True)
class LengthMatch:
    """How fine-tuning cuts the labelled recordings into units."""

    mode: str
    windows: int | None  # L: windows per unit (None: mode none without max_windows)
    shortest: int  # windows in the shortest labelled range
    offsets: tuple[int, ...] = ()  # crop: where each unit starts in every range
    dropped: list[str] = field(default_factory=list)  # ranges shorter than L (crop_all, set L)

    @property
    def max_windows(self) -> int | None:
        """What EEGDataset's max_windows must be so that each unit is one sequence."""
        return self.windows

    def units(self, selection: pl.DataFrame) -> pl.DataFrame:
        """The units (selection rows: file, participant, run, row_start, row_end) that
        fine-tuning forms from `selection`; each unit becomes one sequence per channel."""
        rows = []
        for file, participant, run, a, b in selection.select(SELECTION).iter_rows():
            if self.mode == "crop":
                spans = [
                    (a + o, a + o + self.windows) for o in self.offsets if a + o + self.windows <= b
                ]
            elif self.mode == "crop_all":
                spans = [
                    (s, s + self.windows) for s in range(a, b - self.windows + 1, self.windows)
                ]
            else:
                spans = [tuple(c) for c in chunk_rows([(a, b)], self.windows).tolist()]
            rows += [(file, participant, run, int(s), int(e)) for s, e in spans]
        schema = {"file": pl.String, "participant": pl.String, "run": pl.String,
                  "row_start": pl.Int64, "row_end": pl.Int64}  # fmt: skip
        return pl.DataFrame(rows, schema=schema, orient="row")

    def unit_name(self) -> str:
        """One unit in words, for tables: "crop of 7 windows", "chunk of <= 32 windows"."""
        if self.mode == "none":
            return "recording chunk" + (f" of <= {self.windows} windows" if self.windows else "")
        return f"crop of {self.windows} windows"

    def describe(self, selection: pl.DataFrame, window_seconds: float | None = None) -> str:
        """What was chosen and what it keeps, in one line."""
        units = self.units(selection)
        kept = int((units["row_end"] - units["row_start"]).sum())
        total = int((selection["row_end"] - selection["row_start"]).sum())
        secs = f" ({self.windows * window_seconds:g} s)" if window_seconds and self.windows else ""
        if self.mode == "none":
            return (
                f"length matching off (data.length_match=none): units are chunks of at most "
                f"{self.windows or 'all'} windows, tails kept, so their lengths may differ "
                f"between classes; {units.height} units"
            )
        where = (
            f"at offsets {list(self.offsets)} of every recording"
            if self.mode == "crop"
            else "every whole crop of each recording (positions may differ between classes)"
        )
        text = (
            f"length matching {self.mode}: every unit is {self.windows} windows{secs}, {where}; "
            f"the shortest labelled recording has {self.shortest}; {units.height} units keep "
            f"{kept} of {total} windows ({kept / max(total, 1):.0%})"
        )
        if self.dropped:
            text += f"; {len(self.dropped)} recordings shorter than {self.windows} windows left out"
        return text


def match_lengths(
    mode: str,
    selection: pl.DataFrame,
    max_windows: int | None,
    crop_windows: int | None,
    where: str,
) -> LengthMatch:
    """The LengthMatch for every labelled range in `selection` (all folds' units together,
    so every fold cuts the same way)."""
    if mode not in MODES:
        raise DatasetError(f"{where}: data.length_match {mode!r} is not one of {MODES}")
    lengths = (selection["row_end"] - selection["row_start"]).to_numpy()
    if not len(lengths):
        raise DatasetError(f"{where}: no labelled recordings to fine-tune on")
    shortest = int(lengths.min())
    if mode == "none":
        return LengthMatch(mode, max_windows, shortest)
    windows = crop_windows or min(max_windows or shortest, shortest)
    fits = lengths >= windows
    if not fits.any():
        raise DatasetError(
            f"{where}: every labelled recording is shorter than data.crop_windows="
            f"{windows} (the longest has {int(lengths.max())} windows)"
        )
    dropped = sorted(selection.filter(pl.Series(~fits))["file"].unique().to_list())
    if dropped:
        log.warning(
            "%s: %d labelled recordings are shorter than data.crop_windows=%d and are left out: %s",
            where,
            len(dropped),
            windows,
            dropped[:5],
        )
    shortest_kept = int(lengths[fits].min())  # offsets every kept recording holds
    offsets = tuple(range(0, shortest_kept - windows + 1, windows)) if mode == "crop" else ()
    return LengthMatch(mode, int(windows), shortest, offsets, dropped)


def crop_folds(folds: list[Fold], lm: LengthMatch) -> list[Fold]:
    """The folds with every selection cut into the units of `lm` (one row per unit)."""
    return [
        Fold(f.name, {s: lm.units(sel) for s, sel in f.selections.items()}, f.participants)
        for f in folds
    ]


def fold_units(folds: list[Fold]) -> pl.DataFrame:
    """Every unit of every fold's splits, once (k-fold tests each participant once)."""
    return pl.concat([sel for f in folds for sel in f.selections.values()]).unique(
        maintain_order=True
    )


def common_channels(index: pl.DataFrame, files: list[str]) -> list[str]:
    """The channels every one of `files` has, in the first file's order (the dataset's default)."""
    lists = index.filter(pl.col("file").is_in(files))["channels"].to_list()
    return [ch for ch in lists[0] if all(ch in other for other in lists[1:])]


def shortcut_gate(
    cfg: FinetuneConfig,
    units: pl.DataFrame,
    labels: pl.DataFrame,
    index: pl.DataFrame,
    lm: LengthMatch,
) -> ShortcutReport | None:
    """The shortcut audit of exactly the units fine-tuning trains and tests on (after
    length matching, on the channels it uses), before any training.

    `data.shortcut_gate`: refuse raises ShortcutError when a removable shortcut (length,
    position, channel set, sampling rate) fails; design confounds are logged and reported;
    warn logs everything and goes on; off skips the audit (None)."""
    mode = cfg.data.shortcut_gate
    if mode == "off":
        return None
    channels = cfg.data.channels or common_channels(index, units["file"].unique().to_list())
    report = audit_units(
        cfg.data.root,
        units,
        labels,
        label_name=cfg.labels.name,
        unit=lm.unit_name(),
        channels=channels,
    )
    for check in report.checks:
        if check.status != "pass":
            log.warning("shortcut gate: %s", check.line())
    removable = [c for c in report.checks if c.status == "fail" and c.numbers.get("removable")]
    if removable and mode == "refuse":
        lines = "\n".join(c.line() for c in removable)
        raise ShortcutError(
            f"{cfg.data.root}: fine-tuning refused (data.shortcut_gate=refuse), a nuisance the "
            f"pipeline can remove predicts {cfg.labels.name!r} on the units it would evaluate "
            f"({lm.unit_name()}):\n{lines}\nRemove it as said (data.length_match={lm.mode} now), "
            "or set data.shortcut_gate=warn to run anyway (the results then list it)"
        )
    return report
