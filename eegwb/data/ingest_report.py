"""What an ingest run did: one `SourceResult` per source, gathered in an `IngestReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eegwb.data.sources import join_reasons


@dataclass
class SourceResult:
    """What happened to one source: written, skipped (unchanged) or failed (with the reason)."""

    source: str
    status: str
    participant: str | None = None
    run: str | None = None
    file: str | None = None
    n_windows: int = 0
    channels: list[str] = field(default_factory=list)
    sfreq: float | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    unwindowed_s: float = 0.0  # good signal in no window (segment tails, short segments)
    bad_s: float = 0.0  # signal inside BAD/EDGE annotations
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # repaired on the way (jittered timestamps)


@dataclass
class IngestReport:
    out: Path
    results: list[SourceResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # files removed: overwrite, temp leftovers

    def _with(self, status: str) -> list[SourceResult]:
        return [r for r in self.results if r.status == status]

    @property
    def written(self) -> list[SourceResult]:
        return self._with("written")

    @property
    def skipped(self) -> list[SourceResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[SourceResult]:
        return self._with("failed")

    def to_frame(self) -> pl.DataFrame:  # noqa: F821
        """One row per source: status, ids, file, windows, channels kept/dropped, reason."""
        import polars as pl

        first = ("status", "source", "participant", "run", "file", "n_windows")
        rows = [
            {c: getattr(r, c) for c in first}
            | {"n_channels": len(r.channels), "channels": ", ".join(r.channels)}
            | {"dropped": join_reasons(r.dropped)}
            | {"unwindowed_s": r.unwindowed_s, "bad_s": r.bad_s, "reason": r.reason}
            | {"warnings": "; ".join(r.warnings), "notes": "; ".join(r.notes)}
            for r in self.results
        ]
        strings = {"participant": pl.String, "run": pl.String, "file": pl.String}
        return pl.DataFrame(rows, schema_overrides=strings)

    def channel_decisions(self) -> list[str]:
        """One line per dropped channel name and reason, with how many sources it was in."""
        counts: dict[tuple[str, str], int] = {}
        for r in self.written:
            for name, why in r.dropped.items():
                counts[(name, why)] = counts.get((name, why), 0) + 1
        n = len(self.written)
        return [
            f"dropped {name!r} in {k} of {n} written sources: {why}"
            for (name, why), k in counts.items()
        ]

    def summary(self) -> str:
        return (
            f"{self.out}: {len(self.written)} written, {len(self.skipped)} skipped (unchanged), "
            f"{len(self.failed)} failed, {len(self.warnings)} warnings"
        )
