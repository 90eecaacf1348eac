"""One result type for every data check and leakage finding: pass / warn / fail with numbers.

`eegwb validate`, notebook 02 and the training gate all read the same `Check` objects, so
a finding prints, serialises to JSON and renders in a notebook the same way everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["pass", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail")


@dataclass
class Check:
    """One check's outcome.

    name: stable id ("leakage/participant", "quality/flat_channels");
    summary: one line a person reads; numbers: the values the status was decided from;
    examples: a few concrete cases (file, channel, window row...); level: leakage level 1-5.
    """

    name: str
    status: Status
    summary: str
    numbers: dict[str, object] = field(default_factory=dict)
    examples: list[dict[str, object]] = field(default_factory=list)
    level: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.name!r}: status {self.status!r} not in {STATUSES}")

    @property
    def count(self) -> int:
        """How many cases the check found (0 for a clean check)."""
        return int(self.numbers.get("count", 0))  # type: ignore[arg-type]

    def line(self) -> str:
        tag = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}[self.status]
        lvl = f" [level {self.level}]" if self.level is not None else ""
        return f"{tag:4}  {self.name}{lvl}: {self.summary}"

    def to_dict(self) -> dict[str, object]:
        return jsonable(asdict(self))


def rows_check(name: str, bad, status: Status, what: str, cols: list[str], **numbers) -> Check:
    """A check over the rows of a Polars frame that failed a test: pass when `bad` is empty,
    else `status` with the count and the first five rows (columns `cols`) as examples."""
    n = bad.height
    summary = f"{n} {what}" if n else f"no {what}"
    examples = bad.select(cols).head(5).to_dicts()
    return Check(name, status if n else "pass", summary, {"count": n, **numbers}, examples)


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status ('pass' for none)."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    return max(statuses, key=rank.__getitem__, default="pass")


def format_checks(checks: Sequence[Check], max_examples: int = 3) -> str:
    """A plain-text summary: one line per check, then a few examples under warn/fail."""
    lines = []
    for c in checks:
        lines.append(c.line())
        if c.status != "pass":
            for ex in c.examples[:max_examples]:
                lines.append("        e.g. " + ", ".join(f"{k}={v}" for k, v in ex.items()))
    counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
    lines.append(f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed")
    return "\n".join(lines)


def checks_to_json(checks: Sequence[Check], **extra: object) -> str:
    payload = {"status": worst(c.status for c in checks), "checks": [c.to_dict() for c in checks]}
    payload.update(jsonable(extra))
    return json.dumps(payload, indent=2, allow_nan=False)


def jsonable(obj: object) -> object:
    """Builtins only, NaN/inf as None (strict JSON), numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)
