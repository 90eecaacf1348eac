"""Fine-tuning's leakage gate judges every fold it evaluates: a window copied between two
participants is refused in the k-fold fold that puts them apart, naming that fold, even
where another fold holds both in one split (the content is searched once for all folds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eegwb.config import load_config
from eegwb.data.layout import recordings_index
from eegwb.data.synthetic import SynthConfig, generate_cohort
from eegwb.train.finetune import finetune
from eegwb.train.finetune_config import FinetuneConfig
from eegwb.train.finetune_data import check_folds, load_backbone, make_folds
from eegwb.train.labels import recording_labels
from eegwb.validation.leakage import LeakageError

REPO = Path(__file__).resolve().parents[2]


def _copy_window(root: Path, src: str, dst: str, row: int) -> None:
    """Window `row` of every channel of `src` written over the same row of `dst`."""
    a, b = pq.read_table(root / src), pq.read_table(root / dst)
    for ch in [c for c in b.column_names if c.isupper()]:
        values = b.column(ch).combine_chunks().flatten().to_numpy().reshape(len(b), -1).copy()
        values[row] = np.asarray(a.column(ch)[row].as_py(), np.float32)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        b = b.set_column(b.schema.get_field_index(ch), b.schema.field(ch), arr)
    pq.write_table(b, root / dst)


def test_kfold_gate_refuses_the_fold_that_splits_a_copy(tmp_path) -> None:
    root = tmp_path / "muse"
    cohort = SynthConfig(n_participants=9, runs_per_participant=1, montage="muse",
                         window_samples=128, n_windows=8, seed=4)  # fmt: skip
    generate_cohort(root, cohort, progress=False)
    files = sorted(p.name for p in root.glob("sub-*.parquet"))
    _copy_window(root, files[0], files[1], row=3)
    cfg = load_config(FinetuneConfig, REPO / "configs" / "finetune_tiny.yaml", [
        f"data.root={root}", "data.kfold=3", "train.strategies=[scratch]",
        f"pretrained.checkpoint_dir={tmp_path / 'none'}", f"train.checkpoint_dir={tmp_path}",
        "tracking.enabled=false", "baseline.enabled=false",
    ])  # fmt: skip
    with pytest.raises(LeakageError, match=r"^fold 'fold\d': splits leak:") as err:
        finetune(cfg)
    assert "leakage/identical_content" in str(err.value)
    assert files[0] in str(err.value) and files[1] in str(err.value)
    # Every fold judged: where the two are apart it fails, where together it warns.
    cfg.data.allow_leakage = True
    index = recordings_index(root)
    labels = recording_labels(root, cfg.labels, index)
    folds = make_folds(cfg, index, labels, load_backbone(cfg, 128))
    gate = check_folds(cfg, folds, load_backbone(cfg, 128))
    people = [f.removeprefix("sub-").split("_")[0] for f in files[:2]]
    for fold, text in zip(folds, gate["summary"].split("\nfold")[:3], strict=True):
        split_of = {p: s for s, ps in fold.participants.items() for p in ps}
        apart = split_of[people[0]] != split_of[people[1]]
        line = next(x for x in text.splitlines() if "leakage/identical_content" in x)
        assert line.startswith("FAIL" if apart else "WARN"), (fold.name, line)
    assert err.match(f"^fold '{next(f.name for f in folds if _apart(f, people))}'")


def _apart(fold, people: list[str]) -> bool:
    split_of = {p: s for s, ps in fold.participants.items() for p in ps}
    return split_of[people[0]] != split_of[people[1]]
