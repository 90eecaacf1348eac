"""The leakage audit finds every planted leak at its level, and nothing in clean splits.

Hand-planted cases (exact positions known) on a small dataset written with layout.py,
plus the synthetic cohort's planted defects scored against its manifest.
"""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from eegwb.data.layout import RecordingMeta, build_table, write_recording
from eegwb.data.splits import SplitData, participant_selection, resolve_selectors
from eegwb.validation.leakage import LeakageConfig, LeakageError, audit_leakage, leakage_gate
from eegwb.validation.near_duplicates import ContentConfig, IndexBuilder, Projector, similar_pairs

CHANNELS = ("FZ", "CZ", "PZ", "OZ")
T, N = 128, 12  # samples per window, windows per recording
# Planted: (kind, destination (p, r, row), source (p, r, row)).
PLANTS = {
    "exact": (("02", "2", 7), ("05", "1", 3)),
    "scaled": (("01", "1", 2), ("04", "1", 5)),
    "noisy": (("00", "2", 9), ("03", "2", 6)),
}


def _eeg(rng: np.random.Generator, n: int, hop: int = T) -> np.ndarray:
    """(n, T) windows (hop samples apart) of a random walk plus white noise, µV."""
    total = (n - 1) * hop + T
    x = np.cumsum(rng.standard_normal(total)) + 3 * rng.standard_normal(total)
    return np.stack([x[i * hop : i * hop + T] for i in range(n)]).astype(np.float32)


POSITIONS = {
    "FZ": [0.0, 0.72, 0.69],
    "CZ": [0.0, 0.0, 1.0],
    "PZ": [0.0, -0.72, 0.69],
    "OZ": [0.0, -1.0, 0.0],
}


def _table(p: str, r: str, signals: dict[str, np.ndarray], hop: int = T):
    meta = RecordingMeta(
        sfreq=64.0,
        window_samples=T,
        hop_samples=hop,
        channel_positions=POSITIONS,
        source_file=f"test/{p}_{r}",
        source_hash=f"{p}-{r}",
    )
    return build_table(p, r, signals, np.arange(len(signals["FZ"])) * hop, meta)


def _write(root, participants=("00", "01", "02", "03", "04", "05"), plants=PLANTS):
    rng = np.random.default_rng(7)
    data = {(p, r): {ch: _eeg(rng, N) for ch in CHANNELS} for p in participants for r in ("1", "2")}
    noise_rng = np.random.default_rng(1)
    for kind, ((dp, dr, drow), (sp, sr, srow)) in plants.items():
        for ch in CHANNELS:
            src = data[(sp, sr)][ch][srow].astype(np.float64)
            if kind == "scaled":
                src = src * 1.7 + 40.0
            elif kind == "noisy":
                src = src + noise_rng.standard_normal(T) * 0.03 * src.std()
            data[(dp, dr)][ch][drow] = src.astype(np.float32)
    for (p, r), signals in data.items():
        write_recording(root, _table(p, r, signals))
    # One recording windowed with hop = T/2: windows k and k+1 share half their samples.
    write_recording(
        root, _table("06", "1", {ch: _eeg(rng, N, hop=T // 2) for ch in CHANNELS}, hop=T // 2)
    )
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("leak") / "data")


def split(root, *selectors):
    return SplitData(root, resolve_selectors(root, list(selectors)))


def by_name(result):
    return {c.name: c for c in result.checks}


def test_copies_inside_one_split_warn_naming_it(planted):
    # Copies stay inside one split (05 -> 02, 04 -> 01, 03 -> 00 all in train): no leak under
    # this split, but one under another, so each is a warning that names the split.
    res = audit_leakage(
        {"train": split(planted, "00", "01", "02", "03", "04", "05"), "test": split(planted, "06")}
    )
    assert not res.leaky and {c.status for c in res.findings} == {"warn"}
    checks = by_name(res)
    assert [c.name for c in res.findings] == ["leakage/identical_content", "leakage/near_duplicate"]
    exact, noisy = checks["leakage/identical_content"], checks["leakage/near_duplicate"]
    assert exact.count == 2 * len(CHANNELS) and exact.numbers["inside"] == {"train": 8}
    assert noisy.count == len(CHANNELS) and noisy.numbers["crossing"] == 0
    assert "inside 'train'" in exact.summary and "k-fold" in exact.summary
    assert {(e["file"], e["row"], e["with_file"], e["with_row"]) for e in exact.examples} == {
        ("sub-01_run-1.parquet", 2, "sub-04_run-1.parquet", 5),
        ("sub-02_run-2.parquet", 7, "sub-05_run-1.parquet", 3),
    }
    assert {c.level for c in res.checks} == {1, 2, 3, 4, 5}
    assert res.splits["train"]["vectors"] == 6 * 2 * N * len(CHANNELS)


def test_clean_split_has_zero_findings(planted):
    res = audit_leakage({"train": split(planted, "01", "02", "03"), "test": split(planted, "06")})
    assert res.findings == [] and not res.leaky


def test_participant_and_run_in_two_splits(planted):
    res = by_name(
        audit_leakage(
            {"a": split(planted, "00/1", "01"), "b": split(planted, "00/2", "01/2/3:5")},
            LeakageConfig(content=False),
        )
    )
    assert res["leakage/participant"].status == "fail" and res["leakage/participant"].count == 2
    assert {e["participant"] for e in res["leakage/participant"].examples} == {"00", "01"}
    assert res["leakage/run"].count == 1 and res["leakage/run"].examples[0]["run"] == "01/2"
    assert res["leakage/window"].count == 2  # rows 3 and 4 of 01/2 in both
    rows = {e["a_row"] for e in res["leakage/window"].examples}
    assert rows == {3, 4}


def test_time_overlap_across_splits(planted):
    # hop = T/2: window 5 [5h, 7h) intersects window 6 [6h, 8h); window 4 only touches 6h.
    res = by_name(audit_leakage({"a": split(planted, "06/1/0:6"), "b": split(planted, "06/1/6:")}))
    assert res["leakage/time_overlap"].count == 1
    ex = res["leakage/time_overlap"].examples[0]
    assert (ex["a_row"], ex["b_row"]) == (5, 6)
    assert res["leakage/window"].count == 0
    # Same cut of a hop = T recording: windows only touch, nothing overlaps.
    clean = by_name(
        audit_leakage({"a": split(planted, "00/1/0:6"), "b": split(planted, "00/1/6:")})
    )
    assert clean["leakage/time_overlap"].count == 0 and clean["leakage/window"].count == 0


@pytest.mark.parametrize(("kind", "level"), [("exact", 4), ("scaled", 4), ("noisy", 5)])
def test_copied_windows_found_at_their_level(planted, kind, level):
    (dp, dr, drow), (sp, sr, srow) = PLANTS[kind]
    res = audit_leakage({"train": split(planted, sp), "test": split(planted, dp)})
    found = [c for c in res.findings]
    assert [c.level for c in found] == [level]  # nothing else leaks
    c = found[0]
    assert c.count == len(CHANNELS) and c.numbers["windows"] == 1 and c.status == "fail"
    for ex in c.examples:
        assert ex["train_file"] == f"sub-{sp}_run-{sr}.parquet" and ex["train_row"] == srow
        assert ex["test_file"] == f"sub-{dp}_run-{dr}.parquet" and ex["test_row"] == drow
        assert ex["channel"] == ex["test_channel"]
        assert (ex["cosine"] >= 0.995) and ((ex["cosine"] < 1 - 1e-9) == (level == 5))


def test_gate_raises_unless_allowed(planted):
    splits = {"train": split(planted, "05", "03"), "test": split(planted, "02", "00")}
    with pytest.raises(LeakageError, match="leakage/identical_content"):
        leakage_gate(splits, allow_leakage=False, cfg=LeakageConfig(near_duplicates=False))
    res = leakage_gate(splits, allow_leakage=True)
    assert res.leaky and {c.level for c in res.blocking} == {4, 5}
    # Level 5 alone, within the tolerated count: a warning, not a leak.
    only_noisy = {"train": split(planted, "03"), "test": split(planted, "00")}
    res = leakage_gate(only_noisy, allow_leakage=False, near_duplicate_max=len(CHANNELS))
    assert not res.leaky and by_name(res)["leakage/near_duplicate"].status == "warn"
    with pytest.raises(LeakageError, match="leakage/near_duplicate"):
        leakage_gate(only_noisy, allow_leakage=False, near_duplicate_max=len(CHANNELS) - 1)


def test_threshold_is_configurable(planted):
    only_noisy = {"train": split(planted, "03"), "test": split(planted, "00")}
    strict = by_name(audit_leakage(only_noisy, LeakageConfig(near_dup_threshold=0.99999)))
    assert strict["leakage/near_duplicate"].count == 0


def test_two_dataset_roots(planted, tmp_path):
    other = tmp_path / "reingested"
    shutil.copytree(planted, other)
    pretrain = SplitData(planted, participant_selection(planted, ["00", "01", "02"]))
    evaluate = SplitData(other, participant_selection(other, ["02", "03"]))
    res = by_name(audit_leakage({"pretrain": pretrain, "eval": evaluate}))
    assert res["leakage/participant"].count == 1  # 02, by id across roots
    assert res["leakage/window"].count == 2 * N  # both runs of 02, same spans
    assert res["leakage/identical_content"].count == 2 * N * len(CHANNELS)
    # Ids not shared across roots: the source hash and the content still find the copy.
    res = by_name(
        audit_leakage(
            {"pretrain": pretrain, "eval": evaluate}, LeakageConfig(cross_dataset_ids=False)
        )
    )
    assert res["leakage/participant"].count == 0
    assert res["leakage/source_recording"].count == 2
    assert res["leakage/identical_content"].count == 2 * N * len(CHANNELS)


def test_nan_and_flat_windows_are_skipped_not_fatal(tmp_path):
    rng = np.random.default_rng(3)
    signals = {ch: _eeg(rng, N) for ch in CHANNELS}
    signals["FZ"][2, 10:20] = np.nan
    signals["CZ"][4] = 5.0
    write_recording(tmp_path, _table("01", "1", signals))
    write_recording(tmp_path, _table("02", "1", {ch: _eeg(rng, N) for ch in CHANNELS}))
    res = audit_leakage({"a": split(tmp_path, "01"), "b": split(tmp_path, "02")})
    assert res.findings == []
    assert res.splits["a"]["skipped_vectors"] == {"non_finite": 1, "constant": 1, "other_length": 0}


def test_other_window_lengths_warn_instead_of_passing(tmp_path, recording_table):
    """Levels 4-5 compare one vector length; a split at another length must not pass."""
    rng = np.random.default_rng(4)
    pre, post = tmp_path / "pre", tmp_path / "post"
    for root, people, t in ((pre, ("01", "02"), 64), (post, ("03", "04"), 32)):
        for p in people:
            signals = {ch: _eeg(rng, N)[:, :t] for ch in CHANNELS}
            write_recording(root, recording_table(p, "1", signals))
    res = audit_leakage({"pre": SplitData(pre), "eval": SplitData(post)})
    assert res.splits["eval"]["skipped_vectors"]["other_length"] == 2 * N * len(CHANNELS)
    content = [c for c in res.checks if c.level in (4, 5)]
    assert [c.status for c in content] == ["warn", "warn"]
    for c in content:
        assert f"'eval': {2 * N * len(CHANNELS)} vectors of 32 samples" in c.summary
        assert c.numbers["compared_samples"] == [64]
        assert c.numbers["not_compared"] == {"eval": {32: 2 * N * len(CHANNELS)}}


def test_split_opening_with_another_length_still_compares_the_rest(tmp_path, recording_table):
    rng = np.random.default_rng(5)
    first = {ch: _eeg(rng, N)[:, :64] for ch in CHANNELS}
    copy = {ch: _eeg(rng, N)[:, :64] for ch in CHANNELS}
    copy["FZ"][3] = first["FZ"][7]
    write_recording(tmp_path, recording_table("01", "1", first))
    short = {ch: _eeg(rng, N)[:, :32] for ch in CHANNELS}
    write_recording(tmp_path, recording_table("02", "1", short))
    write_recording(tmp_path, recording_table("03", "1", copy))
    res = by_name(audit_leakage({"a": split(tmp_path, "01"), "b": split(tmp_path, "02", "03")}))
    identical = res["leakage/identical_content"]
    assert identical.status == "fail" and identical.count == 1  # 03 is compared after 02
    assert identical.examples[0]["b_file"] == "sub-03_run-1.parquet"
    assert "'b': 48 vectors of 32 samples" in identical.summary


@pytest.mark.parametrize("dense", [False, True])
def test_blocked_search_matches_brute_force(tmp_path, dense):
    rng = np.random.default_rng(0)
    a = _eeg(rng, 900)
    b = _eeg(rng, 700)
    b[[5, 40, 650]] = a[[7, 800, 3]] + rng.standard_normal((3, T)).astype(np.float32) * 0.5
    b[300] = a[10] * -1.0  # anti-correlated: not a duplicate
    cfg = ContentConfig(
        threshold=0.99, block_size=256, prefilter_dims=8, dense_candidates=1 if dense else 4096
    )
    proj = Projector(cfg.prefilter_dims)
    idx = []
    for name, x in (("a", a), ("b", b)):
        builder = IndexBuilder(name, "r", tmp_path, proj, cfg)
        builder.add(x, name, np.arange(len(x)), "CZ", np.arange(len(x)) * T)
        idx.append(builder.finish())
    got = {
        (int(i), int(j))
        for ia, ib, _ in similar_pairs(idx[0], idx[1], cfg)
        for i, j in zip(ia, ib, strict=True)
    }
    za, zb = (np.asarray(x.z, np.float64) for x in idx)
    truth = {tuple(map(int, p)) for p in np.argwhere(za @ zb.T / T >= 0.99)}
    assert got == truth and {(7, 5), (800, 40), (3, 650)} <= got
    # Within one index (what the audit runs): each pair once, i < j, none with itself.
    both = np.concatenate([za, zb])
    builder = IndexBuilder("ab", "r", tmp_path, proj, cfg)
    ab = np.concatenate([a, b])
    builder.add(ab, "ab", np.arange(len(ab)), "CZ", np.arange(len(ab)) * T)
    one = builder.finish()
    got = {
        (int(i), int(j))
        for ia, ib, _ in similar_pairs(one, one, cfg)
        for i, j in zip(ia, ib, strict=True)
    }
    truth = {(int(i), int(j)) for i, j in np.argwhere(np.triu(both @ both.T / T, 1) >= 0.99)}
    assert got == truth and {(7, 900 + 5), (800, 900 + 40), (3, 900 + 650)} <= got


# ---- known answers from the synthetic cohort's manifest and from real EEG -------------------
SYNTH = {
    "n_participants": 8,
    "runs_per_participant": 2,
    "sfreq": 128.0,
    "window_samples": 256,
    "n_windows": 8,
    "seed": 3,
}


def test_synthetic_cohort_planted_copies_scored_against_manifest(tmp_path):
    from eegwb.data.synthetic import SynthConfig, generate_cohort

    root = tmp_path / "synth"
    kinds = ("duplicated_windows", "near_duplicate", "overlapping_windows")
    manifest = generate_cohort(root, SynthConfig(**SYNTH, defects=kinds), progress=False)
    n_ch = len(manifest["channels"])
    copies = {d["kind"]: d for d in manifest["defects"] if d["kind"] in kinds[:2]}
    sources = sorted({d["source"]["participant"] for d in copies.values()})
    dests = sorted({d["participant"] for d in copies.values()})
    res = audit_leakage(
        {
            "train": SplitData(root, participant_selection(root, sources)),
            "test": SplitData(root, participant_selection(root, dests)),
        }
    )
    checks = by_name(res)
    assert [c.level for c in res.findings] == [4, 5]
    for name, kind in (
        ("leakage/identical_content", "duplicated_windows"),
        ("leakage/near_duplicate", "near_duplicate"),
    ):
        d, c = copies[kind], checks[name]
        assert c.count == n_ch and c.numbers["windows"] == 1
        for ex in c.examples:
            assert (ex["train_file"], ex["train_row"]) == (d["source"]["file"], d["source"]["row"])
            assert (ex["test_file"], ex["test_row"]) == (d["file"], d["rows"][0])
    # The reported cosine is Pearson's r of the two windows, computed here independently.
    d = copies["near_duplicate"]
    src = pq.read_table(root / d["source"]["file"]).slice(d["source"]["row"], 1)
    dst = pq.read_table(root / d["file"]).slice(d["rows"][0], 1)
    r = [
        np.corrcoef(np.asarray(src[ch][0].as_py()), np.asarray(dst[ch][0].as_py()))[0, 1]
        for ch in manifest["channels"]
    ]
    assert checks["leakage/near_duplicate"].numbers["min_cosine"] == pytest.approx(min(r), abs=1e-9)
    # The recording windowed with hop = window / 2, cut in two: one overlapping pair.
    ov = next(d for d in manifest["defects"] if d["kind"] == "overlapping_windows")
    p, r = ov["participant"], ov["run"]
    cut = by_name(
        audit_leakage(
            {"a": split(root, f"{p}/{r}/0:4"), "b": split(root, f"{p}/{r}/4:")},
            LeakageConfig(content=False),
        )
    )
    assert cut["leakage/time_overlap"].count == 1 and cut["leakage/window"].count == 0


def test_clean_synthetic_cohort_default_split_has_zero_findings(tmp_path):
    from eegwb.data.splits import default_splits
    from eegwb.data.synthetic import SynthConfig, generate_cohort

    root = tmp_path / "clean"
    generate_cohort(root, SynthConfig(**SYNTH), progress=False)
    res = audit_leakage(default_splits(root, fractions=(0.5, 0.25, 0.25)).split_data())
    assert res.findings == [] and sum(s["vectors"] for s in res.splits.values()) == 8 * 2 * 8 * 19


def test_eegmat_split_by_subject_has_zero_findings(eegmat_dir, tmp_path):
    from eegwb.data.ingest import ingest
    from eegwb.data.splits import split_by_participant

    sources = sorted(eegmat_dir.glob("Subject0[0-2]_*.edf"))
    root = tmp_path / "eegmat"
    ingest(
        sources,
        root,
        window_samples=512,
        sfreq=128.0,
        progress=False,
        participant_pattern=r"Subject(?P<participant>\d+)_(?P<run>\d)",
    )
    parts = split_by_participant(["00", "01", "02"], fractions=(0.5, 0.5))
    res = audit_leakage(
        {k: SplitData(root, participant_selection(root, v)) for k, v in parts.items()}
    )
    assert res.findings == []
    assert (
        min(s["vectors"] for s in res.splits.values()) > 1000
    )  # the content levels did look at the samples
