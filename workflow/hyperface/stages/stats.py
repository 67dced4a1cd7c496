"""Statistics stage: per-identity consistency, similarity distributions, pose per image."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hyperface import manifests
from hyperface.stages.dataset import load_aligned
from hyperface.stats import head_pose, identity_table, similarity_table

log = logging.getLogger(__name__)


def dataset_stats(aligned: list[str | Path], references: str | Path, out_identities: str | Path,
                  out_similarity: str | Path, out_images: str | Path) -> None:
    frame = load_aligned(aligned)
    embeddings = np.stack(frame["embedding"].to_numpy()).astype(np.float32)
    identities, intra, means = identity_table(frame, embeddings)
    refs = manifests.read_embeddings(references)
    for path in (out_identities, out_similarity, out_images):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    identities.to_parquet(out_identities, index=False)
    similarity_table(intra, refs, means).to_parquet(out_similarity, index=False)
    pose = head_pose(np.stack(frame["landmarks"].to_numpy()))
    images = frame[["identity", "sample", "status", "face_prob", "reference_cos", "nearest_other_cos"]].copy()
    images["yaw"], images["pitch"], images["roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
    images.to_parquet(out_images, index=False)
    log.info("%d identities: detection rate %.3f, intra-class cosine %.3f, reference cosine %.3f, "
             "nearest other reference %.3f", len(identities), identities["detection_rate"].mean(),
             identities["intra_cos_mean"].mean(), identities["reference_cos_mean"].mean(),
             identities["nearest_other_cos_mean"].mean())
