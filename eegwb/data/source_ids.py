"""Participant and run ids of each source file (`Source`), and the id cleaning labels share.

Ids come, in this order, from a user regex with named groups (`participant`, optional
`run`), the BIDS entities of a `sub-...` file name (`run-`, else `task-`; BIDS numbers runs
per task and session, so where that id repeats within a participant, session + task + run
is used: 'ses1rest2', see `assign_ids`), eeg-notebooks / muse-lsl subject and session
(`subject101_session1_recording_2017-...csv`, or the folders
`subject0001/session001/recording_...csv`: participant '101', run '1'; where one session
holds several recordings, the run is 'ses' + session + the rest of the name), the default
pattern `SubjectNN_R` / `sub01_run2` / `alice_rest`, or else the file stem (participant)
with run "1" when it is one word (several words would run together into a wrong id: such a
file is refused). Every id is cleaned the same way (`clean_id`), and label CSVs are matched
through it too, so `Subject00` in a labels file meets `Subject00_1.edf`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eegwb.data.layout import DatasetError
from eegwb.data.source_files import CSV_SUFFIXES, source_stem, source_suffix

_ID_PREFIX = re.compile(r"^(?:sub(?:ject)?|participant)(?:[-_ ]|(?=\d))", re.IGNORECASE)
_MNE_STEM_SUFFIX = re.compile(r"[-_](?:raw|eeg)$", re.IGNORECASE)  # MNE's 'x_raw.fif' convention
DEFAULT_PATTERN = re.compile(
    r"^(?:sub(?:ject)?|participant)?[-_ ]?(?P<participant>[A-Za-z0-9]+?)[-_ ]"
    r"(?:run[-_]?)?(?P<run>[A-Za-z0-9]+)$",
    re.IGNORECASE,
)

# eeg-notebooks and muse-lsl: 'subject101_session1_recording_2017-09-13-15.30.01'.
SUBJECT_SESSION = re.compile(
    r"(?:^|[-_ ])sub(?:ject)?[-_ ]?(?P<participant>[A-Za-z0-9]+?)[-_ ]+"
    r"ses(?:sion)?[-_ ]?(?P<run>[A-Za-z0-9]+?)(?=$|[-_ .])",
    re.IGNORECASE,
)
_SUBJECT_DIR = re.compile(r"^sub(?:ject)?[-_ ]?(?P<participant>[A-Za-z0-9]+)$", re.IGNORECASE)
_SESSION_DIR = re.compile(r"^ses(?:sion)?[-_ ]?(?P<run>[A-Za-z0-9]+)$", re.IGNORECASE)
_LONG_RUN_SOURCES = ("bids", "subject/session name", "subject/session folders")


@dataclass
class Source:
    """One recording to ingest, with the ids it will be stored under."""

    path: Path
    format: str  # "mne" or "csv"
    participant: str
    run: str
    # "pattern", "bids", "subject/session name", "subject/session folders", "default
    # pattern" or "file stem"
    id_source: str
    entities: dict[str, str] = field(default_factory=dict)  # BIDS session/task when present
    long_run: str = ""  # session + task + run (BIDS) or + the rest of the name, if run repeats


def clean_id(value: str) -> str:
    """'sub-01' -> '01', 'Subject00' -> '00', 'sub7' -> '7', 'p 7/a' -> 'p7a' (alphanumeric)."""
    value = str(value).strip()
    stripped = _ID_PREFIX.sub("", value)
    return re.sub(r"[^A-Za-z0-9]", "", stripped or value)


def bids_entities(stem: str) -> dict[str, str]:
    """'sub-01_task-rest_run-1_eeg' -> {'sub': '01', 'task': 'rest', 'run': '1'}"""
    out = {}
    for part in stem.split("_"):
        key, sep, value = part.partition("-")
        if sep and value:
            out[key] = value
    return out


def _subject_session(path: Path, stem: str) -> tuple[str, str, str, str] | None:
    """(participant, session, rest of the name, id_source) from eeg-notebooks names or
    folders; None when neither holds a subject and a session."""
    if (match := SUBJECT_SESSION.search(stem)) is not None:
        rest = stem[: match.start()] + stem[match.end() :]
        return match["participant"], match["run"], rest, "subject/session name"
    subject = _SUBJECT_DIR.match(path.parent.parent.name)
    session = _SESSION_DIR.match(path.parent.name)
    if subject and session:
        return subject["participant"], session["run"], stem, "subject/session folders"
    return None


def _stem_id(path: Path, stem: str) -> str:
    """The whole stem as a participant id, when it is one word: 'S001R01' -> 'S001R01'.

    A stem of several words (`Subject05 1 ✓é`) would run them together
    ('051': participant 05, run 1, or participant 051?), a wrong id nobody would notice; so
    it is refused, with the way out."""
    parts = re.findall(r"[A-Za-z0-9]+", _ID_PREFIX.sub("", stem) or stem)
    if len(parts) > 1:
        dropped = sorted({c for c in stem if not c.isascii() or not c.isalnum()})
        raise DatasetError(
            f"{path}: eegwb cannot read a participant and run from this file name: its parts "
            f"{parts} would run together into participant {''.join(parts)!r} (dropping "
            f"{dropped}); rename the file (e.g. '{parts[0]}_{parts[1]}{path.suffix}' for "
            f"participant {parts[0]!r}, run {parts[1]!r}) or set participant_pattern "
            "(--participant-pattern) with groups (?P<participant>...) and (?P<run>...)"
        )
    return clean_id(stem)


def source_ids(path: Path, pattern: re.Pattern[str] | None = None) -> Source:
    """Participant and run for one file (see the module docstring for the order of rules)."""
    stem = source_stem(path)
    fmt = "csv" if source_suffix(path) in CSV_SUFFIXES else "mne"
    if pattern is not None:
        match = pattern.search(path.name)
        if match is None:
            raise DatasetError(
                f"{path}: file name does not match participant pattern {pattern.pattern!r}"
            )
        groups = match.groupdict()
        participant, run = clean_id(groups["participant"] or ""), clean_id(groups.get("run") or "1")
        source = Source(path, fmt, participant, run, "pattern")
    elif stem.lower().startswith("sub-"):
        ent = bids_entities(stem)
        # BIDS EEG names always carry task-; ses- and run- are optional.
        run = clean_id(ent.get("run") or ent.get("task") or "1")
        parts = (
            f"ses{ent['ses']}" if "ses" in ent else "",
            ent.get("task", ""),
            ent.get("run", ""),
        )
        entities = {k: ent[v] for k, v in (("session", "ses"), ("task", "task")) if v in ent}
        participant = clean_id(ent.get("sub", ""))
        long_run = "".join(clean_id(p) for p in parts) or run
        source = Source(path, fmt, participant, run, "bids", entities, long_run)
    elif (session := _subject_session(path, stem)) is not None:
        participant, run, rest, how = session
        long_run = f"ses{run}{clean_id(rest)}"
        source = Source(path, fmt, clean_id(participant), clean_id(run), how, {}, long_run)
    elif (match := DEFAULT_PATTERN.match(stem := _MNE_STEM_SUFFIX.sub("", stem))) is not None:
        source = Source(
            path, fmt, clean_id(match["participant"]), clean_id(match["run"]), "default pattern"
        )
    else:
        source = Source(path, fmt, _stem_id(path, stem), "1", "file stem")
    if not source.participant or not source.run:
        raise DatasetError(
            f"{path}: empty participant or run id ({source.participant!r}, {source.run!r})"
        )
    return source


def assign_ids(
    paths: Sequence[Path], participant_pattern: str | None
) -> list[Source | DatasetError]:
    """`source_ids` for every path (an error in place of a file without ids); a BIDS or
    subject/session run id that repeats within a participant becomes its long form."""
    pattern = re.compile(participant_pattern) if participant_pattern else None
    out: list[Source | DatasetError] = []
    for path in paths:
        try:
            out.append(source_ids(path, pattern))
        except DatasetError as err:
            out.append(err)
    sources = [s for s in out if isinstance(s, Source)]
    counts = Counter((s.participant, s.run) for s in sources)
    for s in sources:
        if s.id_source in _LONG_RUN_SOURCES and counts[(s.participant, s.run)] > 1:
            s.run = s.long_run
    return out
