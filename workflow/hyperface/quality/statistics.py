"""Dataset statistics: is each identity consistent, are identities separated, which poses occur.

- per identity: images, detection rate, intra-class similarity (mean pairwise cosine of its
  images), cosine to its own reference and to the nearest other one;
- similarity distributions as histograms: intra-class image pairs, reference pairs, pairs of
  per-identity mean embeddings (the closeness/diversity paper's Fig. A1 view);
- head pose (yaw, pitch, roll) estimated from the five MTCNN landmarks, per image - the
  landmark/pose attributes of the hyperspherical-GAN paper, used here as dataset statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hyperface.packing.vectors import unit_rows
from hyperface.storage.images import ARCFACE_TEMPLATE

BINS = np.linspace(-1.0, 1.0, 201)
# pose calibration: the ArcFace template is the frontal face; nose depth ~0.5 inter-ocular distance
_TEMPLATE_NOSE_RATIO = float(
    (ARCFACE_TEMPLATE[2, 1] - ARCFACE_TEMPLATE[:2, 1].mean())
    / (ARCFACE_TEMPLATE[3:, 1].mean() - ARCFACE_TEMPLATE[:2, 1].mean())
)
_NOSE_DEPTH = 0.5


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """(n, 3) yaw, pitch, roll in degrees from (n, 10) landmarks (eyes, nose, mouth corners).

    A geometric estimate, zero for the ArcFace template: roll is the eye line's angle; after
    de-rolling, yaw is the nose's sideways offset from the eye-mouth midline and pitch its
    vertical position between eyes and mouth, both relative to the frontal template. NaN rows
    (no face) give NaN.
    """
    pts = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    le, re = pts[:, 0], pts[:, 1]
    eye_vec = re - le
    roll = np.arctan2(eye_vec[:, 1], eye_vec[:, 0])
    c, s = np.cos(-roll), np.sin(-roll)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, 2, 2)
    centre = (le + re) / 2
    p = np.einsum("nij,nkj->nki", rot, pts - centre[:, None])
    iod = np.linalg.norm(eye_vec, axis=1)
    mouth = (p[:, 3] + p[:, 4]) / 2
    midline_x = mouth[:, 0] / 2  # eyes' centre is at x = 0 after de-rolling
    yaw = np.arcsin(np.clip((p[:, 2, 0] - midline_x) / (_NOSE_DEPTH * iod), -1, 1))
    ratio = p[:, 2, 1] / np.where(mouth[:, 1] == 0, np.nan, mouth[:, 1])
    pitch = np.arcsin(np.clip((_TEMPLATE_NOSE_RATIO - ratio) * 2.0, -1, 1))
    return np.degrees(np.stack([yaw, pitch, roll], axis=1))


def _histogram(values: np.ndarray) -> np.ndarray:
    return np.histogram(np.clip(values, -1, 1), bins=BINS)[0]


MAX_PAIRS = (
    20_000_000  # all pairs of 6,325 rows; past that, all pairs of 6,325 rows drawn at random
)


def pair_histogram(x: np.ndarray, block: int = 2048, max_pairs: int = MAX_PAIRS) -> np.ndarray:
    """Histogram of the cosines of the unordered pairs of rows of ``x`` (unit): all of them, in
    row blocks - or, when there are more than ``max_pairs`` (50k identities have 1.25 billion),
    all pairs among a random subset of rows (fixed seed) holding about ``max_pairs`` pairs: an
    unbiased sample of the same distribution at a fixed cost."""
    n = len(x)
    if n * (n - 1) // 2 > max_pairs:
        m = int((1 + np.sqrt(1 + 8 * max_pairs)) / 2)
        x = x[np.sort(np.random.default_rng(0).choice(n, m, replace=False))]
        n = m
    counts = np.zeros(len(BINS) - 1, np.int64)
    for start in range(0, n, block):
        sims = x[start : start + block] @ x.T
        rows = np.arange(len(sims))[:, None] + start
        counts += _histogram(sims[rows < np.arange(len(x))[None, :]])
    return counts


def identity_table(
    aligned: pd.DataFrame, embeddings: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-identity statistics, the histogram of intra-class pair cosines, and mean embeddings."""
    rows, intra, means = [], np.zeros(len(BINS) - 1, np.int64), []
    for ident, group in aligned.groupby("identity", sort=True):
        idx = group.index.to_numpy()
        emb = embeddings[idx]
        emb = emb[~np.isnan(emb[:, 0])]
        if len(emb) > 1:
            sims = emb @ emb.T
            pairs = sims[np.triu_indices(len(emb), 1)]
            intra += _histogram(pairs)
            intra_mean = float(pairs.mean())
        else:
            intra_mean = float("nan")
        means.append(
            unit_rows(emb.mean(axis=0, keepdims=True))[0]
            if len(emb)
            else np.full(embeddings.shape[1], np.nan)
        )
        rows.append(
            {
                "identity": int(ident),
                "images": len(idx),
                "detected": int((group["status"] == "ok").sum()),
                "detection_rate": float((group["status"] == "ok").mean()),
                "intra_cos_mean": intra_mean,
                "reference_cos_mean": float(group["reference_cos"].mean()),
                "nearest_other_cos_mean": float(group["nearest_other_cos"].mean()),
            }
        )
    return pd.DataFrame(rows), intra, np.asarray(means, np.float32)


def similarity_table(intra: np.ndarray, references: np.ndarray, means: np.ndarray) -> pd.DataFrame:
    """Long table: kind, bin_left, bin_right, count - intra-class vs the two inter-class views."""
    ok = ~np.isnan(means[:, 0])
    parts = {
        "intra_images": intra,
        "inter_references": pair_histogram(unit_rows(references)),
        "inter_identity_means": pair_histogram(means[ok]),
    }
    return pd.concat(
        [
            pd.DataFrame(
                {"kind": kind, "bin_left": BINS[:-1], "bin_right": BINS[1:], "count": counts}
            )
            for kind, counts in parts.items()
        ],
        ignore_index=True,
    )
