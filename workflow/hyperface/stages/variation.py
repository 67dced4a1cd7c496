"""Variation stage: what the MobileStyleGAN identities need from the gallery, measured on it.

The yaw direction (ridge regression of each gallery face's yaw, from its MTCNN landmarks, on its
w) turns an identity's head; the acceptance threshold (the embedder's cosine that a share
``accept_far`` of pairs of different gallery faces exceed) decides which variants are still the
identity. Both are fitted on the faces this run drew, so they follow its weights, truncation and
embedder; ``variation.json`` records them with how well they were measured.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from hyperface.generators.directions import fit_direction
from hyperface.generators.mobilestylegan import MobileStyleGANGallery
from hyperface.quality.statistics import head_pose
from hyperface.recognition.thresholds import impostor_threshold
from hyperface.settings import GallerySettings
from hyperface.storage import manifests
from hyperface.storage.lineage import lineage_meta

log = logging.getLogger(__name__)


def fit_variation(
    gallery_manifest: str | Path,
    out: str | Path,
    *,
    seed: int,
    gallery: GallerySettings,
    accept_far: float,
) -> dict:
    """Write ``variation.json``: the yaw direction and the acceptance threshold.

    Settings: ``seed`` and the ``gallery`` section (which w each gallery face has), and
    ``generation.variants.accept_far``.
    """
    table = manifests.read_table(gallery_manifest, ["index", "face_prob"])
    found = np.isfinite(table["face_prob"].to_numpy(zero_copy_only=False))
    index = table["index"].to_numpy()
    landmarks = manifests.read_embeddings(gallery_manifest, "landmarks")
    embeddings = manifests.read_embeddings(gallery_manifest)
    gen = MobileStyleGANGallery(gallery.weights, truncation_psi=gallery.truncation_psi)
    latents = gen.gallery_latents(index.tolist(), seed)
    yaw = head_pose(landmarks)[:, 0]
    yaw[~found] = np.nan
    direction = fit_direction(latents, yaw)
    threshold, pairs = impostor_threshold(embeddings[found], accept_far)
    log.info("yaw direction from %d faces: held-out r %.3f; threshold %.4f at FAR %g (%d pairs)",
             direction.faces, direction.heldout_r, threshold, accept_far, pairs)  # fmt: skip
    result = {
        "yaw": direction.as_dict(),
        "accept": {"threshold": threshold, "far": accept_far, "pairs": pairs},
        **lineage_meta(
            "variation",
            [seed, gallery, accept_far],
            {"gallery": gallery_manifest, "weights": gallery.weights},
        ),
    }
    Path(out).write_text(json.dumps(result, indent=1))
    return result
