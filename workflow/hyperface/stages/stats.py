"""Statistics stage: per-identity consistency, similarity distributions, pose per image."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hyperface.quality.statistics import head_pose, identity_table, similarity_table
from hyperface.storage import manifests
from hyperface.storage.containers import load_shards
from hyperface.storage.lineage import lineage_meta

log = logging.getLogger(__name__)


def dataset_stats(
    aligned: list[str | Path],
    references: str | Path,
    out_identities: str | Path,
    out_similarity: str | Path,
    out_images: str | Path,
) -> None:
    """Per-identity, similarity-histogram and per-image (pose) statistics of the aligned shards,
    shard by shard (an identity never spans shards): memory is one shard's embeddings, not the
    dataset's (3.2M x 512 floats are 6.5 GB)."""
    meta = lineage_meta("stats", [], {"aligned": aligned, "references": references})
    columns = ["identity", "sample", "status", "face_prob", "reference_cos", "nearest_other_cos"]
    tables, intra, means, images = [], 0, [], []
    for shard in aligned:
        frame = load_shards([shard], columns)
        table, shard_intra, shard_means = identity_table(frame, manifests.read_embeddings(shard))
        tables.append(table)
        intra, means = intra + shard_intra, means + [shard_means]
        pose = head_pose(manifests.read_embeddings(shard, "landmarks"))
        frame["yaw"], frame["pitch"], frame["roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
        images.append(frame)
    identities = pd.concat(tables, ignore_index=True)
    refs = manifests.read_embeddings(references)
    manifests.write_frame(out_identities, identities, manifests.identity_stats_schema(), meta)
    manifests.write_frame(
        out_similarity,
        similarity_table(intra, refs, np.concatenate(means)),
        manifests.similarity_schema(),
        meta,
    )
    manifests.write_frame(
        out_images, pd.concat(images, ignore_index=True), manifests.image_stats_schema(), meta
    )
    log.info(
        "%d identities: detection rate %.3f, intra-class cosine %.3f, reference cosine %.3f, "
        "nearest other reference %.3f",
        len(identities),
        identities["detection_rate"].mean(),
        identities["intra_cos_mean"].mean(),
        identities["reference_cos_mean"].mean(),
        identities["nearest_other_cos_mean"].mean(),
    )
