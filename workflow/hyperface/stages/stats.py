"""Statistics stage: per-identity consistency, similarity distributions, pose per image."""

from __future__ import annotations

import logging
from pathlib import Path

from hyperface import manifests
from hyperface.containers import load_shards
from hyperface.face_statistics import head_pose, identity_table, similarity_table
from hyperface.lineage import lineage_meta

log = logging.getLogger(__name__)


def dataset_stats(aligned: list[str | Path], references: str | Path, out_identities: str | Path,
                  out_similarity: str | Path, out_images: str | Path) -> None:
    """Per-identity, similarity-histogram and per-image (pose) statistics of the aligned shards."""
    meta = lineage_meta("stats", [], {"aligned": aligned, "references": references})
    frame = load_shards(aligned, ["identity", "sample", "status", "face_prob", "reference_cos",
                                  "nearest_other_cos"])
    embeddings = manifests.read_vectors(aligned)
    identities, intra, means = identity_table(frame, embeddings)
    refs = manifests.read_embeddings(references)
    manifests.write_frame(out_identities, identities, manifests.identity_stats_schema(), meta)
    manifests.write_frame(out_similarity, similarity_table(intra, refs, means),
                          manifests.similarity_schema(), meta)
    pose = head_pose(manifests.read_vectors(aligned, "landmarks"))
    images = frame[["identity", "sample", "status", "face_prob", "reference_cos", "nearest_other_cos"]].copy()
    images["yaw"], images["pitch"], images["roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
    manifests.write_frame(out_images, images, manifests.image_stats_schema(), meta)
    log.info("%d identities: detection rate %.3f, intra-class cosine %.3f, reference cosine %.3f, "
             "nearest other reference %.3f", len(identities), identities["detection_rate"].mean(),
             identities["intra_cos_mean"].mean(), identities["reference_cos_mean"].mean(),
             identities["nearest_other_cos_mean"].mean())
