"""The leakage audit on real EEG (PhysioNet EEGMAT, ../shared/data/eegmat) with three leaks
planted by a script, as a careless pipeline would make them: one window copied into
another participant's recording; a near copy (the window plus 3% noise) in a third; a
whole recording saved again under a new participant id, without eegwb's provenance
metadata. Each is found and named whichever split it falls in (fail across the split,
warn inside one), and the clean recordings give no finding.

EEGMAT: Zyma et al. (2019), "Electroencephalograms during Mental Arithmetic Task
Performance", Data 4(1):14; PhysioNet. Six participants' arithmetic runs (60 s) here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eegwb.cli import main as cli_main
from eegwb.data.ingest import ingest
from eegwb.data.layout import RecordingMeta

PEOPLE = ("00", "01", "02", "03", "04", "05")
EXACT = (("00", 5), ("03", 10))  # (participant, window row): source, destination
NEAR = (("01", 7), ("04", 12))
RESAVED = ("02", "90")  # recording of 02 saved again as participant 90


def _file(p: str) -> str:
    return f"sub-{p}_run-2.parquet"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """Six real recordings, ingested as the README says (2 s windows at 128 Hz, the tapered
    last 3 s cropped)."""
    root = tmp_path_factory.mktemp("eegmat") / "clean"
    eegmat = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eegmat"
    if not eegmat.is_dir():
        pytest.skip(f"real EEG not found at {eegmat.resolve()}")
    sources = [eegmat / f"Subject{p}_2.edf" for p in PEOPLE]
    ingest(sources, root, window_samples=256, sfreq=128.0, crop_end_seconds=3, progress=False)
    return root


def _replace_window(path: Path, row: int, values: dict[str, np.ndarray]) -> None:
    table = pq.read_table(path)
    for ch, v in values.items():
        col = table.column(ch).combine_chunks()
        flat = col.flatten().to_numpy().reshape(len(table), -1).copy()
        flat[row] = v
        i = table.schema.get_field_index(ch)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
        table = table.set_column(i, table.schema.field(ch), arr)
    pq.write_table(table, path)


def _window(path: Path, row: int) -> dict[str, np.ndarray]:
    table = pq.read_table(path)
    channels = [c for c in table.column_names if c.isupper()]
    return {ch: np.asarray(table.column(ch)[row].as_py(), np.float32) for ch in channels}


@pytest.fixture(scope="module")
def planted(clean, tmp_path_factory) -> Path:
    """The clean dataset with the three leaks written in (a dataset put together by hand:
    no ingest record)."""
    root = tmp_path_factory.mktemp("eegmat") / "planted"
    shutil.copytree(clean, root, ignore=shutil.ignore_patterns(".cache", "dataset.json"))
    (src, src_row), (dst, dst_row) = EXACT
    _replace_window(root / _file(dst), dst_row, _window(root / _file(src), src_row))
    (src, src_row), (dst, dst_row) = NEAR
    rng = np.random.default_rng(0)
    noisy = {
        ch: v + rng.standard_normal(v.shape).astype(np.float32) * np.float32(0.03 * v.std())
        for ch, v in _window(root / _file(src), src_row).items()
    }
    _replace_window(root / _file(dst), dst_row, noisy)
    old, new = RESAVED
    table = pq.read_table(root / _file(old))
    meta = RecordingMeta.from_kv(table.schema.metadata, root / _file(old))
    meta.source_file, meta.source_hash = "", ""  # saved again outside eegwb
    table = table.set_column(0, "participant", pa.array([new] * len(table), pa.string()))
    pq.write_table(table.replace_schema_metadata(meta.to_kv()), root / _file(new))
    return root


def _validate(root: Path, tmp_path: Path, splits: dict[str, list[str]]) -> tuple[int, dict]:
    spec = tmp_path / "splits.json"
    spec.write_text(json.dumps({"dataset": str(root), "splits": splits}))
    out = tmp_path / "report.json"
    code = cli_main(["validate", "--splits", str(spec), "--json", str(out), "--overwrite"])
    report = json.loads(out.read_text())
    return code, {c["name"]: c for c in report["leakage"]["checks"]}


def _found(checks: dict) -> dict[str, tuple[str, set]]:
    """finding -> (status, the files its examples name)."""
    out = {}
    for name, c in checks.items():
        if c["status"] != "pass":
            files = {v for e in c["examples"] for k, v in e.items() if k.endswith("file")}
            out[name] = (c["status"], files)
    return out


@pytest.mark.parametrize(
    ("splits", "status", "code"),
    [
        # All three leaks inside the training split: no leak now, a leak under another split.
        ({"train": ["00", "01", "02", "03", "04", "90"], "test": ["05"]}, "warn", 0),
        # Each copy crosses train | test.
        ({"train": ["00", "01", "02", "05"], "test": ["03", "04", "90"]}, "fail", 1),
    ],
    ids=["inside-train", "across"],
)
def test_each_planted_leak_is_found_and_named(planted, tmp_path, splits, status, code):
    got, checks = _validate(planted, tmp_path, splits)
    assert got == code
    found = _found(checks)
    assert found == {
        "leakage/copied_recording": (status, {_file(RESAVED[0]), _file(RESAVED[1])}),
        "leakage/identical_content": (status, {_file(EXACT[0][0]), _file(EXACT[1][0])}),
        "leakage/near_duplicate": (status, {_file(NEAR[0][0]), _file(NEAR[1][0])}),
    }
    copied = checks["leakage/copied_recording"]
    assert copied["numbers"]["count"] == 1  # one finding, not a pair per window and channel
    n = pq.read_metadata(planted / _file(RESAVED[0])).num_rows
    assert copied["examples"][0]["windows"] == f"{n} of {n} | {n} of {n}"
    for name, (p, row) in (("leakage/identical_content", EXACT), ("leakage/near_duplicate", NEAR)):
        rows = {
            (e[k], e[k.removesuffix("file") + "row"])
            for e in checks[name]["examples"]
            for k in e
            if k.endswith("file")
        }
        assert {(_file(p[0]), p[1]), (_file(row[0]), row[1])} <= rows
        assert checks[name]["numbers"]["windows"] == 1  # one window, all its channels
    if status == "warn":
        assert "inside 'train'" in checks["leakage/identical_content"]["summary"]


def test_clean_recordings_give_no_finding(clean, tmp_path):
    for splits in (
        {"train": ["00", "01", "02", "03", "04"], "test": ["05"]},
        {"train": ["00", "01", "02"], "test": ["03", "04", "05"]},
    ):
        code, checks = _validate(clean, tmp_path, splits)
        assert code == 0 and _found(checks) == {}
