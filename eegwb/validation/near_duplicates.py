"""Content leakage (levels 4 and 5): identical and near-identical windows, found by search.

Every selected (window, channel) is a *vector* of t samples, z-scored per vector so that
scaled and offset copies look identical. Level 4 (identical content under another id):
equal xxh3 hashes of the z-scored float32 bytes, plus pairs whose cosine is 1 up to
float rounding (a copy scaled by 1.7 differs from the original in the last bit).
Level 5 (near duplicates): cosine >= threshold (default 0.995, e.g. a copy plus noise).

The search is exact and its memory is linear in the number of vectors:
- the z-scored vectors live in a memory-mapped scratch file, never all in RAM;
- a projection onto k orthonormal DCT-II basis vectors (the k with most energy in the
  first chunk seen) bounds distances from below, ||P(a - b)|| <= ||a - b||, so a pair
  whose projected distance is too large cannot reach the threshold and is skipped
  (cos >= c  <=>  ||a - b||^2 <= 2 t (1 - c) for z-scored vectors, ||a||^2 = t);
- the projected distances are computed block by block (block_size^2 floats at a time);
  surviving candidates are verified on the full vectors in float64. A block with too many
  candidates (very regular signals) is compared in full instead; results are the same,
  only slower. The basis choice affects speed, never the answer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
import xxhash

from eegwb.data.normalise import FLAT_SCALE_UV


@dataclass
class ContentConfig:
    threshold: float = 0.995  # cosine at/above which two windows are near duplicates (issue 5)
    # 1 - cos below this is "identical" (level 4): float32 rounding of a scaled copy gives
    # ~1e-14; copy + 0.1% noise gives ~5e-7, so it stays level 5.
    identical_tol: float = 1e-9
    # Projected dimensions: more prune better but cost 2k flops per pair. With 32, real and
    # synthetic EEG pairs sit 3-10x above the bound (eegmat, the default cohort).
    prefilter_dims: int = 32
    # Vectors per block: a block pair holds block_size^2 float32. 1024 (4 MB) stays in
    # cache; 4096 was 2x slower per pair on the 2-core target (benchmarks/bench_audit.py).
    block_size: int = 1024
    # A block pair with more candidates than this is compared in full (one matmul) rather
    # than candidate by candidate.
    dense_candidates: int = 4096
    min_std_uv: float = FLAT_SCALE_UV  # constant vectors have no z-score: skipped, counted

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold {self.threshold} must be in (0, 1]")
        if self.identical_tol < 0 or (
            self.threshold < 1 and self.identical_tol >= 1 - self.threshold
        ):
            raise ValueError(
                f"identical_tol {self.identical_tol} must be >= 0 and below 1 - threshold"
            )
        if self.prefilter_dims < 1 or self.block_size < 1 or self.dense_candidates < 1:
            raise ValueError("prefilter_dims, block_size and dense_candidates must be >= 1")


def zscore_rows(x: np.ndarray, min_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row z-score. x: (m, t) µV -> (z (m', t) float32 of the usable rows, usable (m,)).

    Rows with a NaN/Inf or a std below `min_std` are not usable (no z-score exists).
    Statistics accumulate in float64; the arithmetic is float32 and deterministic, so two
    identical rows give byte-identical z (what the level-4 hash relies on)."""
    x = np.asarray(x, dtype=np.float32)
    finite = np.isfinite(x).all(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        mu = x.mean(axis=1, dtype=np.float64)
        sd = x.std(axis=1, dtype=np.float64)
    usable = finite & (sd >= min_std)
    if not usable.all():
        x, mu, sd = x[usable], mu[usable], sd[usable]
    z = x - mu.astype(np.float32)[:, None]
    z *= (1.0 / sd).astype(np.float32)[:, None]
    return z, usable


class Projector:
    """The shared lower-bound projection: k DCT-II (orthonormal) coefficients, chosen from
    the first vectors seen as those with the most mean energy."""

    def __init__(self, k: int):
        self.k = k
        self.index: np.ndarray | None = None
        self.t: int | None = None

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """z: (m, t) float32 z-scored -> (m, k) float32."""
        coef = scipy.fft.dct(z, type=2, norm="ortho", axis=1)  # (m, t)
        if self.index is None:
            self.t = z.shape[1]
            energy = (coef.astype(np.float64) ** 2).mean(axis=0)
            self.index = np.sort(np.argsort(-energy, kind="stable")[: min(self.k, z.shape[1])])
        if z.shape[1] != self.t:
            raise ValueError(
                f"vectors of {z.shape[1]} samples cannot share a {self.t}-sample basis"
            )
        return np.ascontiguousarray(coef[:, self.index], dtype=np.float32)


@dataclass
class ContentIndex:
    """The usable vectors of one split: ids, hashes, projections, z-scores (memmap)."""

    name: str
    root: str
    window_samples: int
    files: list[str]
    channels: list[str]
    file_idx: np.ndarray  # (n,) int32 into files
    row: np.ndarray  # (n,) int64 window row in its file
    chan_idx: np.ndarray  # (n,) int32 into channels
    window_start: np.ndarray  # (n,) int64 samples
    hashes: np.ndarray  # (n,) uint64 xxh3 of the z-scored float32 bytes
    reduced: np.ndarray  # (n, k) float32 projection
    z: np.ndarray  # (n, t) float32 memmap of z-scored vectors
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> vectors not indexed
    other_lengths: dict[int, int] = field(default_factory=dict)  # samples -> vectors skipped
    file_rows: dict[str, int] = field(default_factory=dict)  # file -> windows offered
    skipped_rows: list[tuple[str, np.ndarray, str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row)

    def describe(self, i: int) -> dict[str, object]:
        return {
            "file": self.files[self.file_idx[i]],
            "channel": self.channels[self.chan_idx[i]],
            "row": int(self.row[i]),
            "window_start": int(self.window_start[i]),
        }


class IndexBuilder:
    """Accumulates vectors (file by file, channel by channel) into a ContentIndex."""

    def __init__(
        self, name: str, root: str, workdir: str | Path, projector: Projector, cfg: ContentConfig
    ):
        self.name, self.root, self.cfg, self.projector = name, root, cfg, projector
        fd, path = tempfile.mkstemp(prefix=f"{name}.", suffix=".f32", dir=workdir)
        self.path = Path(path)
        self._fh = os.fdopen(fd, "wb")  # closed in finish()
        self.files: list[str] = []
        self.channels: list[str] = []
        self.t: int | None = None
        self.parts: dict[str, list[np.ndarray]] = {
            k: [] for k in ("file_idx", "row", "chan_idx", "window_start", "hashes", "reduced")
        }
        self.skipped = {"non_finite": 0, "constant": 0, "other_length": 0}
        self.other_lengths: dict[int, int] = {}
        self.file_rows: dict[str, int] = {}  # windows offered per file (indexed or not)
        # (file, rows, reason, samples) of every vector not indexed, so that the counts can
        # be split up later by whichever split those windows belong to
        self.skipped_rows: list[tuple[str, np.ndarray, str, int]] = []

    def add(
        self, x: np.ndarray, file: str, rows: np.ndarray, channel: str, window_start: np.ndarray
    ) -> None:
        """x: (m, t) float32 µV windows of one channel; rows/window_start: (m,).

        Only vectors as long as the shared basis (the first length indexed) can be
        compared; others are counted in `skipped` and `other_lengths`, never indexed."""
        m, t = x.shape
        rows = np.asarray(rows, np.int64)
        self.file_rows[file] = max(self.file_rows.get(file, 0), m)
        if t != (self.projector.t or self.t or t):
            self.skipped["other_length"] += m
            self.other_lengths[t] = self.other_lengths.get(t, 0) + m
            self.skipped_rows.append((file, rows, "other_length", t))
            return
        self.t = t
        z, usable = zscore_rows(x, self.cfg.min_std_uv)
        finite = np.isfinite(x).all(axis=1)
        self.skipped["non_finite"] += int((~finite).sum())
        self.skipped["constant"] += int((finite & ~usable).sum())
        for reason, bad in (("non_finite", ~finite), ("constant", finite & ~usable)):
            if bad.any():
                self.skipped_rows.append((file, rows[bad], reason, t))
        if not len(z):
            return
        if not self.files or self.files[-1] != file:
            self.files.append(file)
        if channel not in self.channels:
            self.channels.append(channel)
        n = len(z)
        self.parts["file_idx"].append(np.full(n, len(self.files) - 1, np.int32))
        self.parts["chan_idx"].append(np.full(n, self.channels.index(channel), np.int32))
        self.parts["row"].append(rows[usable])
        self.parts["window_start"].append(np.asarray(window_start, np.int64)[usable])
        self.parts["hashes"].append(
            np.fromiter((xxhash.xxh3_64_intdigest(r.tobytes()) for r in z), np.uint64, n)
        )
        self.parts["reduced"].append(self.projector(z))
        self._fh.write(z.tobytes())

    def finish(self) -> ContentIndex:
        self._fh.close()
        t = self.t or self.projector.t or 1
        cat = {
            k: (
                np.concatenate(v) if v else np.zeros((0, self.projector.k) if k == "reduced" else 0)
            )
            for k, v in self.parts.items()
        }
        n = len(cat["row"])
        z = (
            np.memmap(self.path, np.float32, "r", shape=(n, t))
            if n
            else np.zeros((0, t), np.float32)
        )
        return ContentIndex(
            name=self.name,
            root=self.root,
            window_samples=t,
            files=self.files,
            channels=self.channels,
            file_idx=cat["file_idx"].astype(np.int32),
            row=cat["row"].astype(np.int64),
            chan_idx=cat["chan_idx"].astype(np.int32),
            window_start=cat["window_start"].astype(np.int64),
            hashes=cat["hashes"].astype(np.uint64),
            reduced=cat["reduced"].astype(np.float32),
            z=z,
            skipped=dict(self.skipped),
            other_lengths=dict(self.other_lengths),
            file_rows=dict(self.file_rows),
            skipped_rows=list(self.skipped_rows),
        )


def same_window(a: ContentIndex, ia: np.ndarray, b: ContentIndex, ib: np.ndarray) -> np.ndarray:
    """(p,) bool: the pair is one window of one file (a level-3 finding, not content)."""
    if a.root != b.root:
        return np.zeros(len(ia), bool)
    fa = np.asarray(a.files, dtype=object)[a.file_idx[ia]]
    fb = np.asarray(b.files, dtype=object)[b.file_idx[ib]]
    return (fa == fb) & (a.row[ia] == b.row[ib])


def hash_pairs(a: ContentIndex, b: ContentIndex) -> tuple[np.ndarray, np.ndarray]:
    """All (ia, ib) with equal hashes (sort-merge; memory linear in the matches). With
    `b is a`, the pairs within one index: ia < ib."""
    none = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not len(a) or not len(b):
        return none
    oa, ob = np.argsort(a.hashes, kind="stable"), np.argsort(b.hashes, kind="stable")
    ha, hb = a.hashes[oa], b.hashes[ob]
    if b is a:
        values, counts = np.unique(ha, return_counts=True)
        common = values[counts > 1]
    else:
        common = np.intersect1d(ha, hb)
    ia_list, ib_list = [], []
    for h in common:
        xa = oa[np.searchsorted(ha, h, "left") : np.searchsorted(ha, h, "right")]
        xb = ob[np.searchsorted(hb, h, "left") : np.searchsorted(hb, h, "right")]
        ia_list.append(np.repeat(xa, len(xb)))
        ib_list.append(np.tile(xb, len(xa)))
    if not ia_list:
        return none
    ia, ib = np.concatenate(ia_list), np.concatenate(ib_list)
    if b is a:
        keep = ia < ib
        ia, ib = ia[keep], ib[keep]
    return ia, ib


def _cosines(za: np.ndarray, zb: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    out = np.empty(len(ia), np.float64)
    for s in range(0, len(ia), 1024):
        va = np.asarray(za[ia[s : s + 1024]], np.float64)
        vb = np.asarray(zb[ib[s : s + 1024]], np.float64)
        # Divide by the actual norms: float32 storage moves ||z||^2 off t by ~1e-8.
        norms = np.sqrt(np.einsum("ij,ij->i", va, va) * np.einsum("ij,ij->i", vb, vb))
        out[s : s + 1024] = np.einsum("ij,ij->i", va, vb) / norms
    return out


def _augment(r: np.ndarray, left: bool) -> np.ndarray:
    """(n, k) -> (n, k + 2) float32: [r, |r|^2, 1] on the left, [-2r, 1, |r|^2] on the right."""
    sq = np.einsum("ij,ij->i", r, r)[:, None]
    ones = np.ones_like(sq)
    parts = [r, sq, ones] if left else [-2.0 * r, ones, sq]
    return np.ascontiguousarray(np.hstack(parts), dtype=np.float32)


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Thousands of thin matmuls: BLAS threads cost more than they save (3-10x more CPU on
    a busy 2-core machine), so the search runs on one."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def similar_pairs(
    a: ContentIndex, b: ContentIndex, cfg: ContentConfig
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (ia, ib, cos) per block pair for every cross pair with cos >= cfg.threshold.

    With `b is a`, the pairs within one index, each once (ia < ib): only the blocks on and
    above the diagonal are compared, half the work of a cross search of the same size."""
    if not len(a) or not len(b) or a.window_samples != b.window_samples:
        return
    t = a.window_samples
    # Squared-distance bound plus float32 slack for the |a|^2 + |b|^2 - 2ab expansion.
    bound = np.float32(2.0 * t * (1.0 - cfg.threshold) + 1e-4 * t + 1e-2)
    # Augmented rows [x, |x|^2, 1] . [-2y, 1, |y|^2] = |x - y|^2: one matmul per block pair
    # gives the projected squared distances, with no elementwise passes over the block.
    aug_a, aug_b = _augment(a.reduced, left=True), _augment(b.reduced, left=False)
    with _one_blas_thread():
        yield from _block_pairs(a, b, cfg, aug_a, aug_b, bound)


def _block_pairs(
    a: ContentIndex,
    b: ContentIndex,
    cfg: ContentConfig,
    aug_a: np.ndarray,
    aug_b: np.ndarray,
    bound: np.float32,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`similar_pairs`' loop over block pairs (see there)."""
    t = a.window_samples
    bs = cfg.block_size
    within = b is a
    for i0 in range(0, len(a), bs):
        ra = aug_a[i0 : i0 + bs]
        for j0 in range(i0 if within else 0, len(b), bs):
            near_mask = (ra @ aug_b[j0 : j0 + bs].T) <= bound  # (m, n) projected |a - b|^2
            if within and j0 == i0:
                near_mask = np.triu(near_mask, k=1)  # each pair once, never a vector with itself
            if not near_mask.any():
                continue
            ii, jj = np.nonzero(near_mask)
            del near_mask
            if len(ii) > cfg.dense_candidates:
                full = np.asarray(a.z[i0 : i0 + bs]) @ np.asarray(b.z[j0 : j0 + bs]).T / t
                if within and j0 == i0:
                    full[np.tril_indices_from(full)] = -1.0  # as the triu above
                ii, jj = np.nonzero(full >= cfg.threshold - 1e-4)
                del full
            ia, ib = ii.astype(np.int64) + i0, jj.astype(np.int64) + j0
            cos = _cosines(a.z, b.z, ia, ib)
            keep = cos >= cfg.threshold
            if keep.any():
                yield ia[keep], ib[keep], cos[keep]
