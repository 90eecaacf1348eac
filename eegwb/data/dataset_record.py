"""A dataset folder's record of how it was made, and what every reader checks against it.

Ingest (`eegwb/data/ingest.py`) keeps two records, each written atomically:

    dataset.json             the last ingest that finished ("complete": true): options
                             (fingerprint), config, sources, files {name: {source,
                             status}}, failed, warnings. Written only when a run ends
                             well, so a failed re-run leaves the previous record intact.
    dataset.incomplete.json  the same keys with "complete": false, for a run that has
                             changed the folder (written before its first recording is
                             written or removed) and not yet finished; removed when it
                             does. A re-run resumes from the options it holds.
    .eegwb-ingest.lock       held by the ingest writing the folder (eegwb.locks)

Readers call `check_dataset(root)`, which finds two kinds of problem:

- incomplete: an ingest did not finish (dataset.incomplete.json, or a dataset.json with
  "complete": false from eegwb before this rule), recordings dataset.json does not list,
  or listed recordings that are gone. Pretraining and fine-tuning refuse such a dataset
  (`require_complete`): what they would train on depends on where a run stopped.
  `eegwb validate` reports it as a failed check; `EEGDataset.open` warns, because a
  partial dataset is still worth looking at.
- ignored: `.parquet` files whose names are not recordings of the layout
  (`sub-<id>_run-<id>.parquet`, see layout.py); no reader reads them, every reader says so.

A folder with neither record (a synthetic cohort, a hand-written dataset) is checked for
ignored files only.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from eegwb.atomic import atomic_write_text
from eegwb.data.layout import RECORDING_NAME, DatasetError

log = logging.getLogger(__name__)

DATASET_JSON = "dataset.json"
INCOMPLETE_JSON = "dataset.incomplete.json"
LOCK_NAME = ".eegwb-ingest.lock"
_SHOWN = 5
_WARNED: set[str] = set()


def read_record(path: Path) -> dict | None:
    """The JSON record at `path`, None when absent; DatasetError when unreadable."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not valid JSON ({err})") from err
    return record if isinstance(record, dict) else None


def governing_record(root: Path) -> dict | None:
    """The record that describes the recordings now in `root`: an unfinished run's, else
    the last finished one's."""
    return read_record(root / INCOMPLETE_JSON) or read_record(root / DATASET_JSON)


def start_record(**fields: object) -> dict:
    """A new ingest run's record ("complete": false until `finish_record`)."""
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return {
        "kind": "eegwb.ingest",
        "complete": False,
        **fields,
        "started": started,
        "pid": os.getpid(),
    }


def save_progress(root: Path, record: dict) -> None:
    atomic_write_text(root / INCOMPLETE_JSON, json.dumps(record, indent=2))


def finish_record(root: Path, record: dict) -> None:
    """The run ended well: its record becomes dataset.json, the unfinished one goes."""
    record["complete"] = True
    atomic_write_text(root / DATASET_JSON, json.dumps(record, indent=2))
    (root / INCOMPLETE_JSON).unlink(missing_ok=True)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


@dataclass
class DatasetState:
    """What `check_dataset` found: each entry a sentence naming the files."""

    root: Path
    incomplete: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.incomplete + self.ignored

    def warn(self) -> None:
        """Log each problem once per process (a fine-tuning run opens a dataset per fold)."""
        for line in self.problems:
            if line not in _WARNED:
                _WARNED.add(line)
                log.warning("%s", line)


def check_dataset(root: str | Path) -> DatasetState:
    """Compare the folder with its ingest record (see the module docstring)."""
    root = Path(root)
    state = DatasetState(root)
    if not root.is_dir():
        return state
    parquet = sorted(p.name for p in root.glob("*.parquet") if not p.name.startswith("."))
    recordings = {n for n in parquet if RECORDING_NAME.match(n)}
    odd = [n for n in parquet if n not in recordings]
    if odd:
        state.ignored.append(
            f"{root}: {len(odd)} Parquet file(s) whose names are not recordings of the layout "
            f"(sub-<participant>_run-<run>.parquet, letters and digits only) are ignored: "
            f"{_names(odd)}"
        )
    unfinished = read_record(root / INCOMPLETE_JSON)
    record = read_record(root / DATASET_JSON)
    if unfinished is not None:
        state.incomplete.append(
            f"{root / INCOMPLETE_JSON}: an ingest started {unfinished.get('started', '?')} "
            f"(pid {unfinished.get('pid', '?')}) did not finish, so the recordings here may "
            "be a part of its sources; re-run that ingest to finish it (it resumes), or pass "
            "--overwrite to rebuild the folder"
        )
        return state
    if record is None or record.get("kind") != "eegwb.ingest":
        return state
    if record.get("complete") is not True:
        state.incomplete.append(
            f"{root / DATASET_JSON}: records an ingest that did not finish (complete: "
            f"{record.get('complete')!r}); re-run the ingest to finish it"
        )
        return state
    listed = set(record.get("files", {}))
    unlisted, missing = sorted(recordings - listed), sorted(listed - recordings)
    if unlisted:
        state.incomplete.append(
            f"{root}: {len(unlisted)} recording(s) that {DATASET_JSON} does not list (not "
            f"written by the ingest it records): {_names(unlisted)}; remove them or re-run "
            "the ingest with --overwrite"
        )
    if missing:
        state.incomplete.append(
            f"{root}: {len(missing)} recording(s) listed in {DATASET_JSON} are missing: "
            f"{_names(missing)}; re-run the ingest to write them again"
        )
    return state


def require_complete(root: str | Path, who: str) -> DatasetState:
    """`check_dataset`, raising DatasetError for an incomplete dataset (`who` reads it:
    "pretraining", "fine-tuning") and warning about ignored files."""
    state = check_dataset(root)
    if state.incomplete:
        raise DatasetError(f"{who} refuses an incomplete dataset: " + "; ".join(state.incomplete))
    state.warn()
    return state
