"""Leakage check (HyperFace appendix D): the synthetic images most similar to real faces.

The real faces are the generators' side of the story: a folder of images, an insightface .bin, or
the gallery itself (the faces the identities started from). The top-k synthetic-real pairs by
cosine similarity are reported with a side-by-side picture each, and can be excluded from the
dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperface.generators.gallery import list_images, read_rgb
from hyperface.recognition.alignment import Aligner
from hyperface.recognition.embedders import Embedder
from hyperface.recognition.evaluation import decode_images, read_bin
from hyperface.storage import manifests
from hyperface.storage.containers import Containers


@dataclass
class RealFaces:
    embeddings: np.ndarray  # (m, d) unit
    names: list[str]  # where each face came from
    crop: Callable[[int], np.ndarray]  # aligned RGB crop of face i, for the pair pictures


def top_pairs(
    synthetic: np.ndarray, real: np.ndarray, k: int, block: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(synthetic row, real row, cosine) of the k most similar pairs, best first; NaN rows
    skipped."""
    valid = np.flatnonzero(~np.isnan(synthetic[:, 0]))
    best_s, best_r, best_c = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    for start in range(0, len(valid), block):
        rows = valid[start : start + block]
        sims = synthetic[rows] @ real.T
        flat = sims.ravel()
        take = min(k, flat.size)
        top = np.argpartition(-flat, take - 1)[:take]
        best_s = np.concatenate([best_s, rows[top // real.shape[0]]])
        best_r = np.concatenate([best_r, top % real.shape[0]])
        best_c = np.concatenate([best_c, flat[top]])
        keep = np.argsort(-best_c, kind="stable")[:k]
        best_s, best_r, best_c = best_s[keep], best_r[keep], best_c[keep]
    return best_s, best_r, best_c


def load_real_faces(
    reference: str, *, embedder: Embedder, aligner: Aligner, gallery: str | Path, root: str | Path
) -> RealFaces:
    """Real faces from 'gallery', an insightface .bin, or a folder of images (aligned here)."""
    if reference == "gallery":
        frame = manifests.read_manifest(gallery, ["container", "row"])
        store = Containers(root)
        return RealFaces(
            manifests.read_embeddings(gallery),
            [f"{c}#{r}" for c, r in zip(frame["container"], frame["row"], strict=True)],
            lambda i: (
                aligner.align(store.images([frame["container"].iloc[i]], [frame["row"].iloc[i]]))[
                    0
                ].crop
            ),
        )
    if reference.endswith(".bin"):
        images = decode_images(read_bin(reference)[0])
        return RealFaces(
            embedder.embed(list(images)),
            [f"{reference}#{i}" for i in range(len(images))],
            lambda i: images[i],
        )
    files = list_images(reference)
    crops = [a.crop for a in aligner.align([read_rgb(f) for f in files])]
    return RealFaces(embedder.embed(crops), [str(f) for f in files], lambda i: crops[i])


def pair_picture(synthetic: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Synthetic crop (left) beside the real face (right), both resized to the synthetic's size."""
    import cv2

    h, w = synthetic.shape[:2]
    return np.concatenate(
        [synthetic, cv2.resize(real, (w, h), interpolation=cv2.INTER_AREA)], axis=1
    )
