"""Alignment stage: MTCNN to the ArcFace template, re-embedding, identity consistency per image.

Identity by identity, so that a killed job keeps the identities it finished
(:mod:`hyperface.storage.resume`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hyperface.recognition.alignment import Aligner
from hyperface.recognition.embedders import embedder_from_settings
from hyperface.runtime import Throughput, chunks, progress
from hyperface.settings import AlignmentSettings, EmbedderSettings, Encoding
from hyperface.storage import manifests
from hyperface.storage.containers import Container, image_cell
from hyperface.storage.lineage import lineage_meta
from hyperface.storage.resume import PartialShard, identity_folder

log = logging.getLogger(__name__)


def align_shard(
    generated: str | Path,
    references: str | Path,
    out_manifest: str | Path,
    root: str | Path,
    *,
    alignment: AlignmentSettings,
    embedder: EmbedderSettings,
    encoding: Encoding,
    device: str,
) -> None:
    """The shard's aligned manifest: each generated image's crop (in the manifest, see
    :mod:`hyperface.storage.containers`), detection, landmarks, embedding and identity consistency.

    Settings: the ``alignment`` section (size, min_face_prob, fallback, batch_size), the
    ``embedder`` section (the recogniser that re-embeds every crop) and the crops' ``encoding``.
    """
    frame = manifests.read_manifest(generated, columns=["identity", "sample", "redraws"])
    frame["row"] = range(len(frame))
    refs = manifests.read_embeddings(references)
    meta = {
        "backends": {"detector": "mtcnn", "embedder": embedder.backend},
        **lineage_meta(
            "align_shard",
            [alignment, embedder, encoding],
            {"generated": generated, "references": references, "embedder": embedder.weights},
        ),
    }
    embed = embedder_from_settings(embedder, device)
    partial = PartialShard(root, out_manifest, manifests.aligned_schema(embed.dim), meta, device)
    identities = sorted(frame["identity"].unique().tolist())
    done = set(partial.done(identities))
    todo = [i for i in identities if i not in done]
    log.info("kept %d identities already aligned, aligning %d", len(done), len(todo))
    aligner = (
        Aligner(
            size=alignment.size,
            min_face_prob=alignment.min_face_prob,
            fallback=alignment.fallback,
            device=device,
        )
        if todo
        else None
    )
    source = Container(generated)
    speed = Throughput("images")
    groups = {int(identity): group for identity, group in frame.groupby("identity", sort=True)}
    for identity in progress(todo, desc="identities"):
        group = groups[identity]
        columns = align_identity(group, source, aligner, embed, encoding, alignment.batch_size)
        own, other = identity_consistency(columns["embedding"], columns["identity"], refs)
        partial.commit(identity, {**columns, "reference_cos": own, "nearest_other_cos": other})
        speed.add(len(group))
    partial.finish(identities, out_manifest)
    speed.report()


def align_identity(
    group, source: Container, aligner: Aligner, embed, codec: Encoding, batch_size: int
) -> dict[str, object]:
    """Manifest columns for one identity's images (``group``: identity, sample and row in
    ``source``), the encoded crops included."""
    n = len(group)
    cols = {
        "identity": group["identity"].to_numpy(),
        "sample": group["sample"].to_numpy(),
        "redraws": group["redraws"].to_numpy(),
        "image": [None] * n,
        "status": [""] * n,
        "face_prob": np.zeros(n, np.float32),
        "box": np.full((n, 4), np.nan, np.float32),
        "landmarks": np.full((n, 10), np.nan, np.float32),
        "embedding": np.full((n, embed.dim), np.nan, np.float32),
    }
    for rows in chunks(range(n), batch_size):
        results = aligner.align(source.images(group["row"].to_numpy()[list(rows)]))
        crops, crop_rows = [], []
        for r, res in zip(rows, results, strict=True):
            cols["status"][r], cols["face_prob"][r] = res.status, res.prob
            cols["box"][r], cols["landmarks"][r] = res.box, res.landmarks
            if res.crop is not None:
                name = f"{identity_folder(int(cols['identity'][r]))}/{int(cols['sample'][r]):04d}"
                cols["image"][r] = image_cell(res.crop, name, codec)
                crops.append(res.crop)
                crop_rows.append(r)
        if crops:
            cols["embedding"][crop_rows] = embed.embed(crops)
    return cols


def identity_consistency(
    embeddings: np.ndarray, identity: np.ndarray, refs: np.ndarray, block: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each image to its own reference and to the nearest other one (NaN if no crop)."""
    n = len(embeddings)
    own = np.full(n, np.nan, np.float32)
    other = np.full(n, np.nan, np.float32)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        sims = np.nan_to_num(embeddings[rows]) @ refs.T
        own[rows] = sims[np.arange(len(rows)), identity[rows]]
        if refs.shape[0] > 1:
            sims[np.arange(len(rows)), identity[rows]] = -np.inf
            other[rows] = sims.max(axis=1)
    missing = np.isnan(embeddings[:, 0])
    own[missing], other[missing] = np.nan, np.nan
    return own, other
